// Draws the statistics pages' charts with ECharts (served beside this file, installed by ./dev).
// Each chart's data is in its element's data-chart attribute, made from the same rows as the table
// beside it; without ECharts the elements stay hidden and the tables say it all.
(function () {
  "use strict";

  var PALETTE = ["#1f5fa8", "#d4822a", "#3a9a5b", "#b8453a", "#7a5aa6", "#4a9fb5", "#9a8a3a", "#777777"];

  function money(v) {
    return v === null || v === undefined ? "—" : Number(v).toLocaleString("zh-CN");
  }

  function option(spec) {
    var base = { color: PALETTE, animation: false, tooltip: {}, grid: { left: 64, right: 24, top: 36, bottom: 56, containLabel: true } };
    var unit = spec.unit || "";
    if (spec.type === "pie") {
      base.tooltip = { trigger: "item", valueFormatter: function (v) { return money(v) + " " + unit; } };
      base.legend = { type: "scroll", bottom: 0 };
      base.series = [{
        type: "pie",
        radius: ["35%", "65%"],
        name: spec.series[0].name,
        data: spec.categories.map(function (c, i) { return { name: c, value: spec.series[0].data[i] }; }),
        label: { formatter: "{b}\n{d}%" }
      }];
      return base;
    }
    base.tooltip = { trigger: "axis" };
    base.legend = { top: 0 };
    base.xAxis = { type: "category", data: spec.categories, axisLabel: { interval: 0, rotate: spec.categories.length > 6 ? 30 : 0 } };
    if (spec.type === "bar_line") {
      // amounts as bars on the left axis, the number of deals as a line on the right
      base.yAxis = [{ type: "value", name: unit }, { type: "value", name: "笔", minInterval: 1 }];
      base.series = [
        { type: "bar", name: spec.series[0].name, data: spec.series[0].data },
        { type: "line", name: spec.series[1].name, data: spec.series[1].data, yAxisIndex: 1 }
      ];
      return base;
    }
    base.yAxis = { type: "value", name: unit, minInterval: unit === "件" || unit === "条" ? 1 : 0 };
    base.series = spec.series.map(function (s) {
      return {
        type: spec.type === "line" ? "line" : "bar",
        name: s.name,
        data: s.data,
        stack: spec.type === "stack" ? "total" : undefined,
        connectNulls: false
      };
    });
    return base;
  }

  function draw() {
    if (!window.echarts) { return; }
    var charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var spec;
      try { spec = JSON.parse(el.getAttribute("data-chart")); } catch (e) { return; }
      el.hidden = false;
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(option(spec));
      el.setAttribute("data-drawn", "1");
      charts.push(chart);
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
