// Wharf studio, endpoint page: reveal an endpoint's keys in the page by
// calling the keys route with the session's CSRF token. Without scripts
// the form posts to the same route and the browser shows its JSON.
(function () {
  "use strict";
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.matches || !form.matches("form[data-reveal-keys]")) {
      return;
    }
    ev.preventDefault();
    var out = document.getElementById("keys");
    fetch(form.action, {method: "POST", credentials: "same-origin",
      headers: {"X-CSRF-Token": window.wharfCSRF(), "Content-Type": "application/json"}, body: "{}"})
      .then(function (r) { return r.json().then(function (j) { return {ok: r.ok, body: j}; }); })
      .then(function (res) {
        out.textContent = "";
        if (!res.ok) {
          out.textContent = (res.body.error && res.body.error.message) || "The keys could not be read.";
          return;
        }
        Object.keys(res.body).forEach(function (k) {
          var dt = document.createElement("dt"), dd = document.createElement("dd"), code = document.createElement("code");
          dt.textContent = k;
          code.textContent = String(res.body[k]);
          dd.appendChild(code);
          out.appendChild(dt);
          out.appendChild(dd);
        });
      })
      .catch(function () { out.textContent = "The keys could not be read."; });
  });
})();
