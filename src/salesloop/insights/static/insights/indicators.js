/* Sparklines of the indicator cards (SPEC C5/C9): the recent values, the healthy line (green) and
   the warning line (red). Static, no toolbar: they are read, not explored; they fit a phone. */
(function () {
  "use strict";
  var colours = { healthy: "#2e7d32", watch: "#e0a100", warning: "#c62828", no_data: "#9e9e9e" };
  document.querySelectorAll(".ind-card").forEach(function (card) {
    var name = card.getAttribute("data-indicator");
    var data = JSON.parse(document.getElementById(name).textContent);
    var target = document.getElementById("spark-" + name);
    var line = function (y, colour) {
      return { x: data.x, y: data.x.map(function () { return y; }), mode: "lines", hoverinfo: "skip",
               line: { color: colour, width: 1, dash: "dash" } };
    };
    var values = { x: data.x, y: data.y, mode: "lines+markers", connectgaps: false,
                   line: { color: "#37474f", width: 2 },
                   marker: { size: 7, color: data.status.map(function (s) { return colours[s]; }) } };
    Plotly.newPlot(target, [line(data.healthy, colours.healthy), line(data.warning, colours.warning), values], {
      margin: { l: 34, r: 6, t: 6, b: 24 }, showlegend: false, height: 130,
      xaxis: { fixedrange: true, tickfont: { size: 10 } },
      yaxis: { fixedrange: true, ticksuffix: data.unit === "%" ? "%" : "", tickfont: { size: 10 } },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)"
    }, { displayModeBar: false, responsive: true, staticPlot: true });
  });
})();
