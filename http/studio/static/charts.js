// Wharf studio, metric charts, drawn with uPlot (vendored in uplot/).
// Each <figure class="chart" data-src=URL> fetches its history from the
// server, already thinned for display (see the README's Studio section),
// and draws one line per run: x axis by step or time, exponential moving
// average smoothing, log scale, values under the pointer in the legend,
// drag to zoom and double-click to reset (uPlot's own).
(function () {
  "use strict";
  var COLORS = ["#0b5cad", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7d86", "#6e7781", "#e16f24", "#4d2d9c"];

  function smooth(values, alpha) {
    if (!alpha) { return values; }
    var out = new Array(values.length), last = null;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null) { out[i] = null; continue; }
      last = last === null ? v : alpha * last + (1 - alpha) * v;
      out[i] = last;
    }
    return out;
  }

  function draw(fig, data) {
    var plotEl = fig.querySelector(".chart-plot");
    var xSel = fig.querySelector("[data-x]");
    var smoothEl = fig.querySelector("[data-smooth]");
    var logEl = fig.querySelector("[data-log]");
    var note = fig.querySelector(".chart-note");
    var plot = null;
    var sampled = data.runs.some(function (r) { return r.sampled; });
    if (note) {
      note.textContent = sampled ? "Long history: first and last values exact, the rest sampled across its steps." : "";
    }

    function render() {
      var byTime = xSel.value === "time";
      var alpha = parseFloat(smoothEl.value) || 0;
      var tables = data.runs.map(function (r) {
        var xs = byTime ? r.times.map(function (t) { return t / 1000; }) : r.steps;
        var ys = smooth(r.values, alpha);
        if (logEl.checked) { ys = ys.map(function (v) { return v !== null && v > 0 ? v : null; }); }
        return [xs, ys];
      });
      var aligned = tables.length === 1 ? tables[0] : uPlot.join(tables);
      var series = [{ label: byTime ? "Time" : "Step" }];
      data.runs.forEach(function (r, i) {
        series.push({ label: r.name || r.run.slice(0, 8), stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: { show: false } });
      });
      var width = Math.max(280, plotEl.clientWidth || fig.clientWidth - 20);
      var opts = {
        width: width, height: 240, series: series,
        scales: { x: { time: byTime }, y: { distr: logEl.checked ? 3 : 1 } },
        axes: [{}, { size: 60 }],
        cursor: { drag: { x: true, y: false }, focus: { prox: 16 } },
        legend: { live: true }
      };
      if (plot) { plot.destroy(); }
      plotEl.textContent = "";
      plot = new uPlot(opts, aligned, plotEl);
    }
    [xSel, smoothEl, logEl].forEach(function (el) { el.addEventListener("input", render); el.addEventListener("change", render); });
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        if (plot) { plot.setSize({ width: Math.max(280, plotEl.clientWidth), height: 240 }); }
      }, 150);
    });
    render();
  }

  function load(fig) {
    fetch(fig.getAttribute("data-src"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (data) { draw(fig, data); })
      .catch(function (e) {
        var note = fig.querySelector(".chart-note");
        if (note) { note.textContent = "The chart could not be loaded (" + e.message + ")."; }
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var figs = document.querySelectorAll("figure.chart[data-src]");
    // Charts below the fold load when they come into view.
    if ("IntersectionObserver" in window) {
      var io = new IntersectionObserver(function (entries) {
        entries.forEach(function (e) {
          if (e.isIntersecting) { io.unobserve(e.target); load(e.target); }
        });
      }, { rootMargin: "200px" });
      figs.forEach(function (f) { io.observe(f); });
    } else {
      figs.forEach(load);
    }
  });
})();
