#include "gateway/status_page.hpp"

namespace phlow::gateway {

// Elements carry ids and data-* attributes so that tests (and scrapers) can read the
// numbers: #redis-state, #generation, #uptime, and per row data-route / data-limit with
// cells data-field="requests|rate|limited|limited-rate|allowed|shadow_limited|skipped|
// units_request|units_response|slots_held" (units: limits with a cost; slots:
// concurrency limits).
const std::string_view kStatusPageHtml = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>phlow-gateway status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.3em; margin: 0 0 .3em; } h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; background: #fff; min-width: 32em; }
th, td { padding: .25em .7em; border-bottom: 1px solid #e3e3e3; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.pill { display: inline-block; padding: .05em .6em; border-radius: 1em; color: #fff; }
.connected { background: #2a7d2e; } .fallback { background: #b5561b; } .disabled { background: #777; }
.muted { color: #777; } svg { vertical-align: middle; }
</style></head>
<body>
<h1>phlow-gateway</h1>
<div>Redis: <span id="redis-state" class="pill disabled">?</span>
  &nbsp; config generation <b id="generation">?</b>
  &nbsp; up <b id="uptime">?</b> s &nbsp; version <span id="version">?</span>
  &nbsp; <span class="muted" id="updated"></span></div>
<h2>Routes</h2>
<table id="routes"><thead><tr><th>route</th><th>requests</th><th>req/s</th>
  <th>429</th><th>429/s</th><th>last 5 min</th></tr></thead><tbody></tbody></table>
<h2>Limits</h2>
<table id="limits"><thead><tr><th>limit</th><th>allowed</th><th>limited</th><th>limited/s</th>
  <th>shadow limited</th><th>skipped</th><th>units (requests)</th><th>units (responses)</th>
  <th>slots held</th></tr>
  </thead><tbody></tbody></table>
<h2>Most limited identifiers (as stored: tokens and API keys hashed)</h2>
<table id="top"><thead><tr><th>limit:identifier</th><th>429s</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const history = [];          // {t, data}, newest last, 5 minutes
const keepMs = 5 * 60 * 1000;
function text(el, v) { el.textContent = String(v); }
function cell(row, field, v) {
  const td = document.createElement("td"); td.dataset.field = field; text(td, v); row.appendChild(td);
  return td;
}
function rate(now, then, pick) {
  if (!then) return 0;
  const dt = (now.t - then.t) / 1000;
  return dt > 0 ? Math.max(0, (pick(now.data) - pick(then.data)) / dt) : 0;
}
function sparkline(points) {
  const w = 120, h = 18, max = Math.max(1, ...points);
  const step = points.length > 1 ? w / (points.length - 1) : w;
  const d = points.map((p, i) => (i ? "L" : "M") + (i * step).toFixed(1) + " " +
                       (h - (p / max) * h).toFixed(1)).join(" ");
  return '<svg width="' + w + '" height="' + h + '"><path d="' + d +
         '" fill="none" stroke="#3566a8" stroke-width="1.5"/></svg>';
}
function route429(r) { return (r && r.rate_limited) || 0; }
function render() {
  const now = history[history.length - 1], prev = history[history.length - 2];
  const d = now.data;
  const state = d.redis ? d.redis.state : "disabled";
  const pill = document.getElementById("redis-state");
  text(pill, state); pill.className = "pill " + state;
  text(document.getElementById("generation"), d.config_generation);
  text(document.getElementById("uptime"), Math.floor(d.uptime_seconds));
  text(document.getElementById("version"), d.version);
  text(document.getElementById("updated"), "updated " + new Date(now.t).toLocaleTimeString());
  const routes = document.querySelector("#routes tbody"); routes.innerHTML = "";
  for (const [name, r] of Object.entries(d.routes || {})) {
    const row = document.createElement("tr"); row.dataset.route = name;
    cell(row, "name", name); cell(row, "requests", r.requests);
    cell(row, "rate", rate(now, prev, x => (x.routes[name] || {}).requests || 0).toFixed(1));
    cell(row, "limited", route429(r));
    cell(row, "limited-rate", rate(now, prev, x => route429(x.routes[name])).toFixed(1));
    const points = [];
    for (let i = 1; i < history.length; i++) {
      points.push(rate(history[i], history[i - 1], x => (x.routes[name] || {}).requests || 0));
    }
    cell(row, "history", "").innerHTML = sparkline(points);
    routes.appendChild(row);
  }
  const limits = document.querySelector("#limits tbody"); limits.innerHTML = "";
  for (const [name, l] of Object.entries(d.limits || {})) {
    const row = document.createElement("tr"); row.dataset.limit = name;
    cell(row, "name", name); cell(row, "allowed", l.allowed); cell(row, "limited", l.limited);
    cell(row, "limited-rate", rate(now, prev, x => (x.limits[name] || {}).limited || 0).toFixed(1));
    cell(row, "shadow_limited", l.shadow_limited); cell(row, "skipped", l.skipped);
    cell(row, "units_request", l.units_request); cell(row, "units_response", l.units_response);
    cell(row, "slots_held", l.slots_held);
    limits.appendChild(row);
  }
  const top = document.querySelector("#top tbody"); top.innerHTML = "";
  for (const t of d.top_limited || []) {
    const row = document.createElement("tr");
    cell(row, "identifier", t.identifier); cell(row, "count", t.count);
    top.appendChild(row);
  }
}
async function poll() {
  try {
    const response = await fetch("status.json", {cache: "no-store"});
    if (response.ok) {
      const t = Date.now();
      history.push({t, data: await response.json()});
      while (history.length > 2 && t - history[0].t > keepMs) history.shift();
      render();
    }
  } catch (e) { text(document.getElementById("updated"), "unreachable: " + e); }
  setTimeout(poll, 2000);
}
poll();
</script>
</body></html>
)html";

}  // namespace phlow::gateway
