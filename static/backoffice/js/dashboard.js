// Admin index: the chart of refunds per day (data rendered by the server).
(function () {
  "use strict";
  var data = document.getElementById("bo-refund-series");
  var canvas = document.getElementById("bo-refund-chart");
  if (!data || !canvas || typeof Chart === "undefined") { return; }
  var series = JSON.parse(data.textContent);
  var labels = series.labels.map(function (d) { return d.slice(5); });
  new Chart(canvas, {
    data: {
      labels: labels,
      datasets: [
        { type: "bar", label: "Refunds", data: series.counts, yAxisID: "count",
          backgroundColor: "rgba(65, 118, 144, 0.55)" },
        { type: "line", label: "Amount" + (series.currency ? " (" + series.currency + ")" : ""),
          data: series.amounts, yAxisID: "amount", borderColor: "#ba2121",
          backgroundColor: "#ba2121", tension: 0.25, pointRadius: 2 }
      ]
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: {
        count: { type: "linear", position: "left", beginAtZero: true, ticks: { precision: 0 } },
        amount: { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false } }
      },
      plugins: { legend: { position: "bottom" } }
    }
  });
  canvas.setAttribute("data-chart-ready", "yes");
})();
