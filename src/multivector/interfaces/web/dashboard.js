// The dashboard: sliders -> POST /api/scenarios/{name}/run -> the run document (what `multivector run
// --json` prints) plus plotly figures built by the server. The cards read the document's own keys: the
// headline index under the key `doc.index` names, `focus_overland_share`, `corridors.<name>.tonnes`.
// Plain JavaScript, no build step and nothing fetched from outside the server (works offline).
// A server started with a token (GET /api/server says token_required) needs it to run the model: the
// user pastes it into the token field; it is kept in this tab's sessionStorage and sent as
// `Authorization: Bearer <token>` with each run. Reading (parameters, explorations) needs no token.
"use strict";

const state = { scenario: null, scenarios: {}, params: {}, values: {}, seq: 0, shown: 0, timer: null,
                tokenRequired: false };
const $ = (id) => document.getElementById(id);
const PLOT_CONFIG = { displaylogo: false, responsive: true };
const TOKEN_KEY = "multivector-token";

async function getJSON(url, options) {
  const r = await fetch(url, options);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = new Error(body.detail || r.statusText);
    err.status = r.status;
    throw err;
  }
  return body;
}

const token = () => sessionStorage.getItem(TOKEN_KEY) || "";
const authorization = () => (token() ? { Authorization: "Bearer " + token() } : {});

function askForToken(message) {
  $("token-box").hidden = false;
  $("status").textContent = message;
  $("token").focus();
}

const last = (series) => (Array.isArray(series) && series.length ? series[series.length - 1] : null);
const label = (name) => (name || "index").replace(/_/g, " ");

function fmt(v) {
  if (Math.abs(v) >= 1000) return v.toLocaleString("en", { maximumFractionDigits: 0 });
  return Number(v.toPrecision(3)).toString();
}

function slider(p) {
  const div = document.createElement("div");
  div.className = "slider";
  const id = "p-" + p.name;
  const step = (p.max - p.min) / 100 || 1;
  div.innerHTML = `<label for="${id}" title="${(p.description || "").replace(/"/g, "&quot;")}">${p.name.replace(/_/g, " ")}
      <span class="val" id="${id}-val">${fmt(p.value)}</span></label>
    <input type="range" id="${id}" data-testid="slider-${p.name}" min="${p.min}" max="${p.max}" step="${step}" value="${p.value}">
    <span class="unit">${p.unit} · ${p.min}–${p.max} · ${p.source}</span>`;
  const input = div.querySelector("input");
  input.addEventListener("input", () => {
    state.values[p.name] = Number(input.value);
    $(id + "-val").textContent = fmt(Number(input.value));
    schedule();
  });
  return div;
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(runModel, 120);
}

async function loadScenario(name) {
  state.scenario = name;
  const info = state.scenarios[name] || {};
  $("subtitle").textContent = (info.title || name) + ": move a slider, the model runs again";
  $("focus-name").textContent = info.focus || "focus";
  const hint = $("explore-hint"); // gone once the store's explorations are listed
  if (hint) hint.textContent = `multivector explore ${name} --n 1000`;
  const doc = await getJSON(`/api/scenarios/${encodeURIComponent(name)}/parameters`);
  state.params = {};
  state.values = {};
  $("featured").innerHTML = "";
  $("levers").innerHTML = "";
  for (const p of doc.parameters) {
    state.params[p.name] = p;
    if (p.featured) $("featured").appendChild(slider(p));
    else if (p.kind === "lever") $("levers").appendChild(slider(p));
  }
  await runModel();
}

async function runModel() {
  if (state.tokenRequired && !token()) return askForToken("needs this server's token (on the left)");
  const seq = ++state.seq;
  $("status").textContent = "running";
  const overrides = {};
  for (const [k, v] of Object.entries(state.values)) if (v !== state.params[k].value) overrides[k] = v;
  try {
    const doc = await getJSON(`/api/scenarios/${encodeURIComponent(state.scenario)}/run`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authorization() },
      body: JSON.stringify({ overrides, seed: Number($("seed").value) || 0 }),
    });
    if (seq < state.shown) return; // a later answer is already on screen
    state.shown = seq;
    showDocument(doc);
    await Plotly.react("series", doc.figures.series.data, doc.figures.series.layout, PLOT_CONFIG);
    await Plotly.react("map", doc.figures.map.data, doc.figures.map.layout, PLOT_CONFIG);
    $("status").textContent = "up to date";
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  } catch (err) {
    if (err.status === 401) askForToken("token refused: " + err.message);
    else $("status").textContent = "error: " + err.message;
  }
}

// The cards and the corridor line, from the run document's keys.
function showDocument(doc) {
  const year = last(doc.years);
  const index = doc.index ? last(doc[doc.index]) : null;
  const share = last(doc.focus_overland_share);
  $("index-name").textContent = label(doc.index);
  for (const el of document.querySelectorAll(".final-year")) el.textContent = year;
  $("index").textContent = index === null ? "–" : index.toFixed(3);
  $("share").textContent = share === null ? "–" : (100 * share).toFixed(1) + "%";
  $("consolidated").textContent = doc.consolidated === undefined ? "–" : (doc.consolidated ? "yes" : "no");
  $("seconds").textContent = doc.seconds.toFixed(2) + " s";
  const volumes = Object.entries(doc.corridors)
    .filter(([name]) => name !== "other")
    .map(([name, c]) => ({ name, mt: last(c.tonnes) }))
    .filter((c) => c.mt)
    .sort((a, b) => b.mt - a.mt)
    .map((c) => `${c.name} ${fmt(c.mt / 1e6)} Mt`);
  $("corridors").textContent = `Corridor volumes, ${year}: ${volumes.join(" · ")}`;
}

async function loadRuns() {
  let runs = [];
  try { runs = await getJSON("/api/runs"); } catch (err) { return; }
  const sel = $("run");
  for (const r of runs) {
    const o = document.createElement("option");
    o.value = r.run_id;
    o.textContent = `${r.run_id} (${r.sampler}, ${r.done}/${r.n}, ${r.status})`;
    sel.appendChild(o);
  }
  if (runs.length) $("ensemble-note").textContent = `${runs.length} exploration(s) in the store.`;
}

async function showRun(runId) {
  $("prim").innerHTML = "";
  $("report-link").hidden = !runId;
  if (!runId) return;
  $("report-link").href = `/api/runs/${encodeURIComponent(runId)}/report`;
  try {
    const ens = await getJSON(`/api/runs/${encodeURIComponent(runId)}/ensemble`);
    $("ensemble-note").textContent = `${ens.runs.toLocaleString()} runs; consolidated in ${(100 * ens.consolidated).toFixed(1)}%.`;
    await Plotly.react("ensemble-series", ens.figures.series.data, ens.figures.series.layout, PLOT_CONFIG);
    await Plotly.react("ensemble-hist", ens.figures.histogram.data, ens.figures.histogram.layout, PLOT_CONFIG);
  } catch (err) {
    $("ensemble-note").textContent = "No ensemble view: " + err.message;
    return;
  }
  try {
    const prim = await getJSON(`/api/runs/${encodeURIComponent(runId)}/discover`);
    const rows = prim.box.map((b) =>
      `<tr><td>${b.parameter}</td><td>${fmt(b.min)}</td><td>${fmt(b.max)}</td><td>${fmt(b.range_min)}–${fmt(b.range_max)}</td><td>${b.unit}</td></tr>`).join("");
    $("prim").innerHTML = `<h3>Where the shift consolidates (PRIM)</h3>
      <p class="note">coverage ${(100 * prim.stats.coverage).toFixed(0)}%, density ${(100 * prim.stats.density).toFixed(0)}%, mass ${(100 * prim.stats.mass).toFixed(0)}%</p>
      <table><thead><tr><th>parameter</th><th>from</th><th>to</th><th>sampled range</th><th>unit</th></tr></thead><tbody>${rows}</tbody></table>`;
  } catch (err) {
    $("prim").innerHTML = `<p class="note">No scenario boxes: ${err.message}</p>`;
  }
}

async function main() {
  const server = await getJSON("/api/server");
  state.tokenRequired = server.token_required;
  $("token-box").hidden = !state.tokenRequired;
  $("token").value = token();
  $("token").addEventListener("change", () => {
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    schedule();
  });
  const scenarios = await getJSON("/api/scenarios");
  for (const s of scenarios.filter((x) => x.coupled)) {
    state.scenarios[s.name] = s;
    const o = document.createElement("option");
    o.value = s.name;
    o.textContent = s.title;
    $("scenario").appendChild(o);
  }
  $("scenario").addEventListener("change", (e) => loadScenario(e.target.value));
  $("seed").addEventListener("change", schedule);
  $("run").addEventListener("change", (e) => showRun(e.target.value));
  $("reset").addEventListener("click", () => loadScenario(state.scenario));
  await Promise.all([loadScenario($("scenario").value), loadRuns()]);
}

main().catch((err) => { $("status").textContent = "error: " + err.message; });
