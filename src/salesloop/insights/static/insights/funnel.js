// The cycle-time trend (SPEC C5.3): one Plotly line per series, redrawn after htmx swaps the body
// and resized with the window so it stays readable on a phone.
(function () {
  "use strict";

  function draw() {
    var data = document.getElementById("cycle-chart-data");
    var target = document.getElementById("cycle-chart");
    if (!data || !target || !window.Plotly) return;
    var chart = JSON.parse(data.textContent);
    var traces = chart.series.map(function (series, i) {
      return {
        x: chart.weeks,
        y: series.days,
        name: series.label,
        type: "scatter",
        mode: "lines+markers",
        connectgaps: true,
        line: { width: i === 0 ? 3 : 1.5 },
        customdata: series.counts,
        hovertemplate: "%{x}: %{y:.1f} (n=%{customdata})<extra>" + series.label + "</extra>",
      };
    });
    window.Plotly.react(
      target,
      traces,
      {
        margin: { l: 44, r: 8, t: 8, b: 40 },
        yaxis: { title: { text: chart.y_title }, rangemode: "tozero" },
        xaxis: { type: "date" },
        legend: { orientation: "h", y: -0.2 },
        autosize: true,
      },
      { responsive: true, displayModeBar: false }
    );
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "funnel-body") draw();
  });
  // An outerHTML swap replaces the target itself: listen for the settled new body as well.
  document.body.addEventListener("htmx:afterSettle", function () {
    var target = document.getElementById("cycle-chart");
    if (target && !target.classList.contains("js-plotly-plot")) draw();
  });
})();
