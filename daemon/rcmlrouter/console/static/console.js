// rcmlrouter console: plain JavaScript, no dependencies. Pages work without it; it adds the
// live pattern check, live updates (server-sent events) and the Health charts (inline SVG).
"use strict";

(function () {
  function debounce(fn, ms) {
    let timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  // Numbers > Add: the API's own SIP-number check, as you type.
  function patternCheck(input) {
    const hint = document.getElementById("phone-check");
    const initial = hint.innerHTML;
    const check = debounce(async function () {
      const value = input.value.trim();
      if (!value) {
        hint.innerHTML = initial;
        hint.className = "hint";
        input.removeAttribute("aria-invalid");
        return;
      }
      const url = new URL(input.dataset.check, window.location.href);
      url.searchParams.set("PhoneNumber", value);
      try {
        const response = await fetch(url, { credentials: "same-origin" });
        const result = await response.json();
        hint.textContent = result.ok ? result.message : "Error " + result.code + ": " + result.message;
        hint.className = result.ok ? "hint ok" : "hint bad";
        input.setAttribute("aria-invalid", result.ok ? "false" : "true");
      } catch (error) {
        hint.textContent = "Could not check the pattern: " + error;
        hint.className = "hint bad";
      }
    }, 250);
    input.addEventListener("input", check);
  }

  // Live calls: the table body replaced by the server's rows every second.
  function liveTable(table) {
    const body = document.getElementById("live-rows");
    const state = document.getElementById("live-state");
    const source = new EventSource(table.dataset.live);
    source.addEventListener("calls", function (event) {
      body.innerHTML = event.data;
      state.textContent = "Live, updated " + new Date().toLocaleTimeString() + ".";
    });
    source.onerror = function () {
      state.textContent = "Disconnected; reconnecting…";
    };
  }

  // Health: counters become rates; one polyline per node in each chart.
  const HISTORY = 60;
  const SVG = "http://www.w3.org/2000/svg";

  function seriesValue(chart, previous, current, seconds) {
    if (!current) return null;
    if (chart === "outbox") return current.outbox;
    if (!previous || seconds <= 0) return null;
    if (chart === "lag") {
      const count = current.lag_count - previous.lag_count;
      return count > 0 ? (1000 * (current.lag_sum - previous.lag_sum)) / count : 0;
    }
    return Math.max(0, (current[chart] - previous[chart]) / seconds);
  }

  function drawChart(figure, samples) {
    const chart = figure.dataset.chart;
    const svg = figure.querySelector("svg");
    svg.querySelectorAll("polyline").forEach(function (line) { line.remove(); });
    const nodes = Object.keys(samples[samples.length - 1].nodes);
    const lines = nodes.map(function (node) {
      const points = [];
      for (let i = 1; i < samples.length; i++) {
        const seconds = samples[i].t - samples[i - 1].t;
        const value = seriesValue(chart, samples[i - 1].nodes[node], samples[i].nodes[node], seconds);
        if (value !== null) points.push([i, value]);
      }
      return points;
    });
    const top = Math.max(1, ...lines.flat().map(function (p) { return p[1]; }));
    lines.forEach(function (points, index) {
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("class", "series-" + (index % 4));
      line.setAttribute("points", points.map(function (p) {
        return ((p[0] / (HISTORY - 1)) * 300).toFixed(1) + "," + (78 - (p[1] / top) * 74).toFixed(1);
      }).join(" "));
      svg.appendChild(line);
    });
    const latest = lines.map(function (p) { return p.length ? p[p.length - 1][1] : 0; });
    const total = chart === "lag" ? Math.max(0, ...latest) : latest.reduce(function (a, b) { return a + b; }, 0);
    figure.querySelector(".value").textContent = total.toFixed(chart === "outbox" ? 0 : 1) + " " + figure.dataset.unit;
  }

  function healthCharts(container) {
    const samples = [];
    const source = new EventSource(container.dataset.health);
    source.addEventListener("sample", function (event) {
      samples.push(JSON.parse(event.data));
      if (samples.length > HISTORY) samples.shift();
      container.querySelectorAll("figure[data-chart]").forEach(function (figure) {
        drawChart(figure, samples);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-check]").forEach(patternCheck);
    document.querySelectorAll("table[data-live]").forEach(liveTable);
    document.querySelectorAll("[data-health]").forEach(healthCharts);
  });
})();
