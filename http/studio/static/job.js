// Wharf studio, job page: while the job runs, the pipeline graph and the
// status follow the server's state (polling the page's graph route), and
// each open attempt log follows its file (the jobs API's log route, from
// the offset already shown).
(function () {
  "use strict";
  var root = document.getElementById("job");
  if (!root) { return; }
  var POLL_MS = 2000;

  // classList, not className: a graph node is an SVG element, whose
  // className is an SVGAnimatedString, not a string.
  function setStatus(el, status) {
    Array.prototype.slice.call(el.classList).forEach(function (c) {
      if (/^st-[a-z]+$/.test(c)) { el.classList.remove(c); }
    });
    el.classList.add("st-" + status.toLowerCase());
  }

  function pollGraph() {
    fetch(root.getAttribute("data-graph"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (g) {
        if (!g) { return; }
        var badge = document.getElementById("job-status");
        if (badge && badge.textContent !== g.status) {
          badge.textContent = g.status;
          setStatus(badge, g.status);
        }
        (g.steps || []).forEach(function (st) {
          var node = document.querySelector('#dag [data-step="' + CSS.escape(st.step) + '"]');
          if (node) {
            setStatus(node, st.status);
            node.setAttribute("aria-label", st.label + ": " + st.status);
            var title = node.querySelector("title");
            if (title) { title.textContent = st.label + ": " + st.status + (st.reused_from ? " (reused)" : ""); }
            var sub = node.querySelector("text.sub");
            if (sub) {
              sub.textContent = st.status + (st.reused_from ? " · reused" : "") + (st.attempts > 1 ? " · " + st.attempts + " attempts" : "");
            }
          }
          var row = document.querySelector('[data-step-row="' + CSS.escape(st.step) + '"] .status');
          if (row && row.textContent !== st.status) {
            row.textContent = st.status;
            setStatus(row, st.status);
          }
        });
        if (g.terminal) {
          // Outputs, metrics and the buttons change at the end: show them.
          window.location.reload();
          return;
        }
        setTimeout(pollGraph, POLL_MS);
      })
      .catch(function () { setTimeout(pollGraph, POLL_MS * 2); });
  }
  if (root.getAttribute("data-terminal") !== "true") {
    setTimeout(pollGraph, POLL_MS);
  }

  function follow(pre) {
    var offset = 0;
    var src = pre.getAttribute("data-log");
    function step() {
      fetch(src + "&offset=" + offset, { credentials: "same-origin" })
        .then(function (r) {
          if (!r.ok) { throw new Error(r.status); }
          var next = parseInt(r.headers.get("X-Wharf-Log-Offset") || "0", 10);
          var done = r.headers.get("X-Wharf-Log-Complete") === "true";
          return r.text().then(function (t) {
            if (t) {
              var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
              pre.appendChild(document.createTextNode(t));
              if (atEnd) { pre.scrollTop = pre.scrollHeight; }
            }
            offset = next;
            if (!done) { setTimeout(step, t ? 300 : 1500); }
          });
        })
        .catch(function () { setTimeout(step, 5000); });
    }
    step();
  }
  // A log starts following when its attempt is opened.
  document.querySelectorAll("pre.log[data-log]").forEach(function (pre) {
    var details = pre.closest("details");
    var started = false;
    function start() { if (!started && (!details || details.open)) { started = true; follow(pre); } }
    if (details) { details.addEventListener("toggle", start); }
    start();
  });
})();
