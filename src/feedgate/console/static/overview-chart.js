// The overview's chart: positive rate per day for each model, with its 95% interval as a band, over the
// number of requests per day. The data is the page's <script type="application/json" id="chart-data">,
// computed by the same statistics as GET /v1/feedback/stats?group_by=day; this file only draws it (uPlot).
"use strict";

(function () {
  const holder = document.getElementById("chart");
  const source = document.getElementById("chart-data");
  if (!holder || !source || typeof uPlot === "undefined") {
    return;
  }
  const data = JSON.parse(source.textContent);
  if (!data.days.length) {
    return;
  }
  const colours = ["#2454c5", "#1a7f37", "#b42318", "#8a4fd8", "#b7791f", "#0f766e"];
  const percent = (value) => (value === null ? null : value * 100);
  const columns = [data.days.map((day) => Date.parse(day + "T00:00:00Z") / 1000), data.volume];
  const series = [
    {},
    {
      label: "requests",
      scale: "requests",
      stroke: "#9aa3b2",
      fill: "rgba(154, 163, 178, 0.3)",
      paths: uPlot.paths.bars({ size: [0.6, 48] }),
      points: { show: false },
    },
  ];
  const bands = [];
  data.series.forEach((line, index) => {
    const colour = colours[index % colours.length];
    const first = columns.length;
    columns.push(line.rate.map(percent), line.high.map(percent), line.low.map(percent));
    series.push({ label: line.model, scale: "%", stroke: colour, width: 2 });
    series.push({ label: "95% high", scale: "%", stroke: "transparent", points: { show: false } });
    series.push({ label: "95% low", scale: "%", stroke: "transparent", points: { show: false } });
    bands.push({ series: [first + 1, first + 2], fill: colour + "26" });
  });
  // The legend is drawn here, one entry per line: uPlot's own would list each band's edges too.
  const legend = document.createElement("ul");
  legend.className = "chart-legend";
  const entry = (label, colour) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.backgroundColor = colour;
    item.append(swatch, document.createTextNode(label));
    legend.append(item);
  };
  entry("requests per day", "#9aa3b2");
  data.series.forEach((line, index) => entry(line.model, colours[index % colours.length]));
  const options = {
    legend: { show: false },
    width: Math.max(holder.clientWidth, 320),
    height: 320,
    series: series,
    bands: bands,
    scales: { "%": { range: [0, 100] }, requests: { range: (u, low, high) => [0, Math.max(high, 1)] } },
    axes: [
      {},
      { scale: "%", label: "positive rate (%)" },
      { scale: "requests", side: 1, label: "requests", grid: { show: false } },
    ],
  };
  new uPlot(options, columns, holder);
  holder.append(legend);
  holder.dataset.drawn = "true";
})();
