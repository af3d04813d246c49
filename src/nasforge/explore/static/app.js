// nasforge explore: the page. Vanilla JS + Plotly (served from the plotly Python package).
// Every label from the server (arch strings, run names, algorithm names) is inserted as
// text (textContent / createTextNode), never as HTML; strings handed to Plotly, which reads
// a few HTML-like tags in its text, are entity-escaped first (esc).
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_SELECTED = 4;
const MAX_SVG_POINTS = 4000;
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
  "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
const state = {
  sources: null, tid: null, table: null, ds: null, hp: null, x: null, y: null,
  sort: null, ranges: {}, allowed: {}, has: [], selected: [], curve: null, seq: 0,
};

function esc(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

// el("div", {class: "x"}, "text", child) -- children: nodes or strings (as text)
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") e.addEventListener("click", v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.appendChild(typeof c === "string" || typeof c === "number"
      ? document.createTextNode(String(c)) : c);
  }
  return e;
}

function fmt(v, digits = 2) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.01 || a >= 1e5)) return v.toPrecision(3);
  return v.toFixed(digits);
}

function colorOf(name) {
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

async function api(path) {
  const r = await fetch(path, { headers: { accept: "application/json" } });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}

function showError(err) {
  const box = $("error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.textContent = String(err.message || err);
}

function setReady(name) { document.body.dataset.state = name; }

const PLOT_CONFIG = { displaylogo: false, responsive: true };
const SMALL_PLOT = { displayModeBar: false, responsive: true };

let glBroken = false;
function webglOk() {
  // a software fallback (no GPU) reports a major performance caveat: SVG is faster there
  try {
    return !!document.createElement("canvas").getContext("webgl", { failIfMajorPerformanceCaveat: true });
  } catch (e) { return false; }
}

// ---------------------------------------------------------------------------------------
// sources
// ---------------------------------------------------------------------------------------
async function loadSources() {
  state.sources = await api("/api/sources");
  const nav = $("sources");
  nav.replaceChildren();
  for (const t of state.sources.tables) {
    nav.appendChild(el("button", { type: "button", "data-id": t.id, class: "src table",
      onclick: () => { location.hash = t.id; } }, `table: ${t.label}`));
  }
  for (const r of state.sources.runs) {
    nav.appendChild(el("button", { type: "button", "data-id": r.id, class: "src run",
      onclick: () => { location.hash = r.id; } }, `${r.kind}: ${r.label}`));
  }
  window.addEventListener("hashchange", route);
  await route();
}

async function route() {
  showError(null);
  const all = [...state.sources.tables, ...state.sources.runs];
  let id = location.hash.replace(/^#/, "");
  if (!all.some((s) => s.id === id)) id = all.length ? all[0].id : null;
  for (const b of document.querySelectorAll("#sources button")) {
    b.classList.toggle("active", b.dataset.id === id);
  }
  if (!id) return;
  try {
    if (id.startsWith("t")) await openTable(id);
    else await openRun(id);
  } catch (err) { showError(err); }
}

// ---------------------------------------------------------------------------------------
// table view
// ---------------------------------------------------------------------------------------
function groupOf() {
  return state.table.groups.find((g) => g.dataset === state.ds && g.hp === state.hp);
}

function fillSelect(sel, values, current, labels) {
  sel.replaceChildren();
  values.forEach((v, i) => sel.appendChild(el("option", { value: v }, labels ? labels[i] : v)));
  if (current !== null && values.includes(current)) sel.value = current;
  return sel.value;
}

async function openTable(tid) {
  $("run-view").hidden = true;
  $("table-view").hidden = false;
  if (state.tid !== tid) {
    state.tid = tid;
    state.table = state.sources.tables.find((t) => t.id === tid);
    state.selected = [];
    state.ranges = {}; state.allowed = {}; state.has = [];
    state.ds = state.table.groups[0].dataset;
    state.hp = null;
    $("table-title").textContent = state.table.label;
    const t = state.table;
    $("table-note").textContent = `${t.space}: ${t.archs} of ${t.space_size} archs` +
      (t.synthetic ? " — synthetic table (made-up figures)" : "");
    buildGroupControls();
    buildOpControls();
  }
  await refresh();
}

function buildGroupControls() {
  const t = state.table;
  const datasets = [...new Set(t.groups.map((g) => g.dataset))];
  state.ds = fillSelect($("f-ds"), datasets, state.ds);
  const hps = t.groups.filter((g) => g.dataset === state.ds).map((g) => g.hp);
  const hpLabels = t.groups.filter((g) => g.dataset === state.ds)
    .map((g) => `${g.hp}${g.epochs ? ` (${g.epochs} ep.)` : ""}`);
  state.hp = fillSelect($("f-hp"), hps, state.hp ?? hps[hps.length - 1], hpLabels);
  const g = groupOf();
  const metrics = g.metrics;
  const pick = (prefs) => prefs.find((m) => metrics.includes(m)) || metrics[0];
  state.x = fillSelect($("ax-x"), metrics,
    metrics.includes(state.x) ? state.x : pick(["params_m", "flops_m", "latency_s", "train_time"]));
  state.y = fillSelect($("ax-y"), metrics,
    metrics.includes(state.y) ? state.y : pick(["test_acc", "valid_acc", "train_acc"]));
  if (!metrics.includes(state.sort)) state.sort = state.y;
  state.curve = fillSelect($("curve-metric"), g.curves,
    g.curves.includes(state.curve) ? state.curve : (g.curves.includes("valid_acc") ? "valid_acc" : g.curves[0]));
  for (const m of Object.keys(state.ranges)) if (!metrics.includes(m)) delete state.ranges[m];
  const box = $("f-ranges");
  box.replaceChildren();
  for (const m of metrics) {
    const lo = el("input", { type: "number", step: "any", "data-metric": m, "data-side": "lo",
      "aria-label": `${m} at least` });
    const hi = el("input", { type: "number", step: "any", "data-metric": m, "data-side": "hi",
      "aria-label": `${m} at most` });
    const r = state.ranges[m] || {};
    if (r.lo !== undefined) lo.value = r.lo;
    if (r.hi !== undefined) hi.value = r.hi;
    for (const inp of [lo, hi]) inp.addEventListener("input", onRangeInput);
    box.appendChild(el("div", { class: "range" }, el("span", { class: "metric" }, m), lo, "–", hi));
  }
}

function onRangeInput(ev) {
  const { metric, side } = ev.target.dataset;
  const r = state.ranges[metric] || (state.ranges[metric] = {});
  if (ev.target.value === "") delete r[side]; else r[side] = ev.target.value;
  scheduleRefresh();
}

function buildOpControls() {
  const box = $("f-ops");
  box.replaceChildren();
  const positions = state.table.positions;
  if (!positions.length) { box.appendChild(el("p", { class: "note" }, "none")); return; }
  const options = [...new Set(positions.flatMap((p) => p.options))];
  const table = el("table", { class: "ops" });
  table.appendChild(el("tr", {}, el("th", {}, ""), ...options.map((o) => el("th", { title: o }, shortOp(o)))));
  positions.forEach((p, i) => {
    const row = el("tr", {}, el("th", {}, p.name));
    for (const o of options) {
      const cell = el("td");
      if (p.options.includes(o)) {
        const cb = el("input", { type: "checkbox", "data-pos": i, "data-op": o,
          "aria-label": `${p.name} ${o}` });
        cb.checked = !(state.allowed[i] && !state.allowed[i].includes(o));
        cb.addEventListener("change", onOpChange);
        cell.appendChild(cb);
      }
      row.appendChild(cell);
    }
    table.appendChild(row);
  });
  box.appendChild(table);
  const has = $("f-has");
  has.replaceChildren();
  for (const o of options) has.appendChild(el("option", { value: o }, o));
  has.onchange = () => {
    state.has = [...has.selectedOptions].map((o) => o.value);
    scheduleRefresh();
  };
}

function shortOp(o) {
  return o.replace("nor_conv_", "c").replace("avg_pool_", "p").replace("skip_connect", "skip");
}

function onOpChange() {
  const positions = state.table.positions;
  state.allowed = {};
  positions.forEach((p, i) => {
    const on = [...document.querySelectorAll(`#f-ops input[data-pos="${i}"]`)]
      .filter((c) => c.checked).map((c) => c.dataset.op);
    if (on.length !== p.options.length) state.allowed[i] = on;
  });
  scheduleRefresh();
}

function query(extra) {
  const p = new URLSearchParams({ ds: state.ds, hp: state.hp });
  for (const [m, r] of Object.entries(state.ranges)) {
    if (r.lo !== undefined) p.set(`lo.${m}`, r.lo);
    if (r.hi !== undefined) p.set(`hi.${m}`, r.hi);
  }
  for (const [i, ops] of Object.entries(state.allowed)) p.set(`pos.${i}`, ops.join(","));
  if (state.has.length) p.set("has", state.has.join(","));
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p.toString();
}

const escapedNames = new Map();
let refreshTimer = null;
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refresh().catch(showError), 120);
}

async function refresh() {
  const seq = ++state.seq;
  setReady("loading");
  const base = `/api/tables/${state.tid}`;
  const [list, pts] = await Promise.all([
    api(`${base}/list?${query({ sort: state.sort, limit: 100 })}`),
    api(`${base}/scatter?${query({ x: state.x, y: state.y })}`),
  ]);
  if (!escapedNames.has(state.tid)) {
    // every arch string of the space, fetched once per table for the hover labels
    escapedNames.set(state.tid, (await api(`${base}/names`)).map(esc));
  }
  if (seq !== state.seq) return; // a newer request is on its way
  showError(null);
  renderCount(list);
  renderList(list);
  renderScatter(pts);
  await renderCards();
  setReady("table");
}

function renderCount(list) {
  const c = $("count");
  c.dataset.matched = list.matched;
  c.textContent = `${list.matched} of ${list.total} archs match`;
  for (const inp of document.querySelectorAll("#f-ranges input")) {
    const b = list.bounds[inp.dataset.metric];
    if (b) inp.placeholder = fmt(inp.dataset.side === "lo" ? b[0] : b[1]);
  }
}

function renderList(list) {
  const thead = $("arch-list").querySelector("thead");
  const tbody = $("arch-list").querySelector("tbody");
  const shown = listColumns(list.columns);
  const headRow = el("tr", {}, el("th", {}, "#"), el("th", {}, "index"));
  for (const c of shown) {
    headRow.appendChild(el("th", { class: c === list.sort ? "sorted" : "clickable", title: "sort by " + c,
      onclick: () => { state.sort = c; scheduleRefresh(); } }, c));
  }
  headRow.appendChild(el("th", {}, "arch"));
  thead.replaceChildren(headRow);
  tbody.replaceChildren();
  list.rows.forEach((row, k) => {
    const tr = el("tr", { "data-index": row.index, class: state.selected.includes(row.index) ? "selected" : "",
      onclick: () => toggleSelect(row.index) },
    el("td", {}, k + 1), el("td", {}, row.index));
    for (const c of shown) tr.appendChild(el("td", { class: "num" }, fmt(row.values[list.columns.indexOf(c)])));
    tr.appendChild(el("td", { class: "arch" }, row.arch));
    tbody.appendChild(tr);
  });
}

// the list shows the axes, the sort key, accuracies and costs (every metric filters)
function listColumns(columns) {
  const want = [state.sort, state.y, state.x, "valid_acc", "test_acc", "train_time",
    "params_m", "flops_m", "latency_s"];
  return [...new Set(want)].filter((c) => columns.includes(c));
}

function renderScatter(pts) {
  const n = pts.index.length;
  const type = n > 3000 && !glBroken && webglOk() ? "scattergl" : "scatter";
  const names = escapedNames.get(state.tid) || [];
  const text = pts.index.map((i) => names[i]);
  const hover = `%{text}<br>index %{customdata}<br>${esc(pts.x)} %{x}<br>${esc(pts.y)} %{y}<extra></extra>`;
  const front = pts.front;
  const sel = new Set(state.selected);
  const selIdx = [];
  pts.index.forEach((ix, k) => { if (sel.has(ix)) selIdx.push(k); });
  // Without WebGL, SVG draws every point as an element: past MAX_SVG_POINTS the cloud is
  // thinned to every k-th arch (the front and the selection are always drawn whole).
  let cloud = null;
  if (type === "scatter" && n > MAX_SVG_POINTS) {
    const stride = Math.ceil(n / MAX_SVG_POINTS);
    cloud = [];
    for (let k = 0; k < n; k += stride) cloud.push(k);
  }
  const pick = (arr) => (cloud ? cloud.map((k) => arr[k]) : arr);
  const cloudName = cloud ? `archs (1 in ${Math.ceil(n / MAX_SVG_POINTS)} of ${n} drawn: no WebGL)` : `archs (${n})`;
  const traces = [
    { type, mode: "markers", name: cloudName, x: pick(pts.xs), y: pick(pts.ys),
      customdata: pick(pts.index), text: pick(text), hovertemplate: hover,
      marker: { size: 5, color: "rgba(31,119,180,0.45)" } },
    { type: "scatter", mode: "lines+markers", name: `Pareto front (${front.length})`,
      x: front.map((k) => pts.xs[k]), y: front.map((k) => pts.ys[k]),
      customdata: front.map((k) => pts.index[k]), text: front.map((k) => text[k]),
      hovertemplate: hover, line: { color: "#d62728", width: 2, shape: "hv" },
      marker: { size: 8, color: "#d62728" } },
    { type: "scatter", mode: "markers", name: "selected", x: selIdx.map((k) => pts.xs[k]),
      y: selIdx.map((k) => pts.ys[k]), customdata: selIdx.map((k) => pts.index[k]),
      text: selIdx.map((k) => text[k]), hovertemplate: hover,
      marker: { size: 14, color: "rgba(0,0,0,0)", line: { color: "#ff7f0e", width: 3 } } },
  ];
  const dir = (m, up) => `${esc(m)} (${up ? "higher" : "lower"} is better)`;
  const layout = {
    margin: { l: 60, r: 10, t: 30, b: 50 }, height: 420,
    title: { text: `${esc(state.ds)} / recipe ${esc(state.hp)}`, font: { size: 13 }, x: 0.01, xanchor: "left" },
    xaxis: { title: { text: dir(pts.x, pts.maximize.x) } },
    yaxis: { title: { text: dir(pts.y, pts.maximize.y) } },
    legend: { orientation: "h", y: -0.18 }, hovermode: "closest",
  };
  const div = $("scatter");
  Plotly.react(div, traces, layout, PLOT_CONFIG);
  if (type === "scattergl" && div.querySelector(".no-webgl")) {
    // WebGL refused after all (e.g. a browser without GPU): draw SVG from now on
    glBroken = true;
    Plotly.purge(div);
    delete div.dataset.bound;
    renderScatter(pts);
    return;
  }
  if (!div.dataset.bound) {
    div.dataset.bound = "1";
    div.on("plotly_click", (ev) => {
      const p = ev.points && ev.points[0];
      if (p && p.customdata !== undefined) toggleSelect(Number(p.customdata));
    });
  }
}

function toggleSelect(index) {
  const at = state.selected.indexOf(index);
  if (at >= 0) state.selected.splice(at, 1);
  else {
    state.selected.unshift(index);
    state.selected.length = Math.min(state.selected.length, MAX_SELECTED);
  }
  refresh().catch(showError);
}

const archCache = new Map();
async function archData(index) {
  const key = `${state.tid}|${state.ds}|${state.hp}|${index}`;
  if (!archCache.has(key)) {
    archCache.set(key, await api(`/api/tables/${state.tid}/arch?${new URLSearchParams({ a: index, ds: state.ds, hp: state.hp })}`));
  }
  return archCache.get(key);
}

async function renderCards() {
  const box = $("cards");
  const datas = await Promise.all(state.selected.map(archData));
  box.replaceChildren();
  for (const d of datas) box.appendChild(archCard(d));
  datas.forEach((d, k) => drawCurves(box.children[k].querySelector(".curves"), d));
}

function archCard(d) {
  const cost = Object.entries(d.cost).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(", ");
  const finals = el("table", { class: "finals" },
    el("tr", {}, el("th", {}, "dataset"), el("th", {}, "recipe"), el("th", {}, "valid"), el("th", {}, "test")),
    ...d.finals.map((f) => el("tr", {}, el("td", {}, f.dataset), el("td", {}, f.hp),
      el("td", { class: "num" }, fmt(f.valid_acc)), el("td", { class: "num" }, fmt(f.test_acc)))));
  return el("div", { class: "card", "data-index": d.index },
    el("div", { class: "card-head" },
      el("strong", {}, `#${d.index}`),
      el("button", { type: "button", class: "close", title: "remove",
        onclick: () => toggleSelect(d.index) }, "×")),
    el("div", { class: "arch" }, d.arch),
    drawCell(d.cell),
    el("div", { class: "note" }, cost || "no costs in the table"),
    el("div", { class: "curves plot" }),
    finals);
}

function drawCurves(div, d) {
  const m = state.curve;
  const traces = d.seeds.map((s, k) => ({
    type: "scatter", mode: "lines", name: `seed ${s.seed}`,
    x: (s.curves[m] || []).map((_, e) => e + 1), y: s.curves[m] || [],
    line: { color: PALETTE[k % PALETTE.length], width: 1.5 },
  }));
  Plotly.react(div, traces, {
    height: 230, margin: { l: 45, r: 10, t: 25, b: 35 },
    title: { text: `${esc(m)} per seed (${esc(d.dataset)}/${esc(d.hp)})`, font: { size: 12 } },
    xaxis: { title: { text: "epoch" }, tickformat: "d" },
    legend: { x: 1, xanchor: "right", y: 0.05, yanchor: "bottom", bgcolor: "rgba(255,255,255,0.7)" },
  }, SMALL_PLOT);
}

// ---------------------------------------------------------------------------------------
// cells: DAGs and bars as SVG (labels as text nodes)
// ---------------------------------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function drawCell(cell) {
  const wrap = el("div", { class: "cell" });
  if (!cell) return wrap;
  if (cell.kind === "error") { wrap.appendChild(el("p", { class: "note" }, cell.message)); return wrap; }
  if (cell.kind === "bars") { wrap.appendChild(drawBars(cell)); return wrap; }
  for (const g of cell.graphs) wrap.appendChild(drawDag(g));
  return wrap;
}

function drawDag(g) {
  const n = g.nodes.length;
  const gap = n > 5 ? 62 : 95;
  const W = 40 + gap * (n - 1) + 40;
  const maxSpan = Math.max(1, ...g.edges.map((e) => Math.abs(e.dst - e.src)));
  const H = 70 + 30 * maxSpan;
  const cy = H / 2 + 8;
  const svg = svgEl("svg", { width: W, height: H + 10, viewBox: `0 0 ${W} ${H + 10}`, class: "dag" });
  svg.appendChild(svgEl("text", { x: 4, y: 12, class: "cell-title" }, g.title));
  const px = (i) => 40 + gap * i;
  const above = {};
  g.edges.forEach((e, k) => {
    const x1 = px(e.src), x2 = px(e.dst);
    const span = Math.abs(e.dst - e.src);
    // edges of the same span alternate above and below the node row
    const key = `${span}`;
    above[key] = (above[key] || 0) + 1;
    const sign = span === 1 ? 0 : (above[key] % 2 ? -1 : 1);
    const bend = sign * (18 + 24 * (span - 1));
    const mx = (x1 + x2) / 2, my = cy + bend;
    const none = e.op === "none";
    const color = e.op ? colorOf(e.op) : "#999";
    svg.appendChild(svgEl("path", {
      d: `M ${x1} ${cy} Q ${mx} ${cy + 2 * bend} ${x2} ${cy}`, fill: "none", stroke: none ? "#bbb" : color,
      "stroke-width": none ? 1 : 2, "stroke-dasharray": none ? "4 3" : "", "marker-end": "",
      "data-op": e.op,
    }));
    if (e.op) {
      const ty = sign === 0 ? cy - 6 : my + (sign < 0 ? -3 : 11);
      svg.appendChild(svgEl("text", { x: mx, y: ty, "text-anchor": "middle", class: "op",
        fill: none ? "#999" : color }, e.op));
    }
  });
  g.nodes.forEach((label, i) => {
    svg.appendChild(svgEl("circle", { cx: px(i), cy, r: 13, class: "node" }));
    svg.appendChild(svgEl("text", { x: px(i), y: cy + 4, "text-anchor": "middle", class: "node-label" },
      label.length > 4 ? label.replace(/[^0-9k\-{}]/g, "").slice(0, 5) || label.slice(0, 4) : label));
    const t = svgEl("title", {}, label);
    svg.lastChild.appendChild(t);
  });
  return svg;
}

function drawBars(cell) {
  const n = cell.values.length;
  const W = 40 + 46 * n, H = 150;
  const svg = svgEl("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "bars" });
  cell.values.forEach((v, i) => {
    const h = (v / cell.max) * (H - 50);
    const x = 30 + 46 * i;
    svg.appendChild(svgEl("rect", { x, y: H - 25 - h, width: 34, height: h, fill: "#1f77b4" }));
    svg.appendChild(svgEl("text", { x: x + 17, y: H - 30 - h, "text-anchor": "middle", class: "op" }, fmt(v, 0)));
    svg.appendChild(svgEl("text", { x: x + 17, y: H - 10, "text-anchor": "middle", class: "op" }, cell.labels[i]));
  });
  return svg;
}

// ---------------------------------------------------------------------------------------
// run view
// ---------------------------------------------------------------------------------------
async function openRun(rid) {
  $("table-view").hidden = true;
  $("run-view").hidden = false;
  setReady("loading");
  const run = await api(`/api/runs/${rid}`);
  $("run-title").textContent = `${run.kind}: ${run.label}`;
  const body = $("run-body");
  body.replaceChildren();
  $("run-meta").replaceChildren();
  const draw = { search: drawSearch, compare: drawSearch, oneshot: drawOneShot, ranking: drawRanking }[run.kind];
  draw(run, body);
  setReady(`run-${run.kind}`);
}

function tableOfSpace(space) {
  return state.sources.tables.find((t) => t.space === space);
}

async function jumpToArch(space, arch) {
  const t = tableOfSpace(space);
  if (!t) return;
  location.hash = t.id;
  await openTable(t.id);
  const d = await api(`/api/tables/${t.id}/arch?${new URLSearchParams({ a: arch, ds: state.ds, hp: state.hp })}`);
  if (!state.selected.includes(d.index)) toggleSelect(d.index);
}

function drawSearch(run, body) {
  const ev = run.evaluator || {};
  const bits = [];
  if (ev.dataset) bits.push(`searched on ${ev.dataset} (recipe ${ev.hp}), reported ${ev.report_dataset || ev.dataset} (recipe ${ev.report_hp})`);
  if (ev.synthetic) bits.push("synthetic table (made-up figures)");
  if (run.optimum && run.optimum.value === null && run.optimum.note) bits.push(run.optimum.note);
  $("run-meta").textContent = bits.join(" · ");
  const pick = el("select", { id: "run-metric" }, el("option", { value: "test" }, "test"), el("option", { value: "valid" }, "valid (search)"));
  const plot = el("div", { class: "plot", id: "trajectory" });
  body.appendChild(el("label", {}, "metric ", pick));
  body.appendChild(plot);
  const render = () => {
    const m = pick.value;
    const traces = [];
    run.algos.forEach((a, k) => {
      const c = a.curves[m];
      const col = PALETTE[k % PALETTE.length];
      const name = esc(a.algo);
      traces.push({ x: run.grid, y: c.lo, mode: "lines", line: { width: 0 }, showlegend: false,
        hoverinfo: "skip", legendgroup: name });
      traces.push({ x: run.grid, y: c.hi, mode: "lines", line: { width: 0 }, fill: "tonexty",
        fillcolor: hexAlpha(col, 0.2), showlegend: false, hoverinfo: "skip", legendgroup: name });
      traces.push({ x: run.grid, y: c.mean, mode: "lines", name: `${name} (${a.runs.length} runs)`,
        line: { color: col, width: 2 }, legendgroup: name });
    });
    const opt = run.optimum && run.optimum.value;
    if (opt !== null && opt !== undefined && m === "test") {
      traces.push({ x: [run.grid[0], run.grid[run.grid.length - 1]], y: [opt, opt], mode: "lines",
        name: `table optimum ${fmt(opt)}%`, line: { color: "black", dash: "dash", width: 1 } });
    }
    Plotly.react(plot, traces, {
      height: 430, margin: { l: 60, r: 10, t: 30, b: 50 },
      title: { text: `mean best-so-far ${m} accuracy; band: 95% CI of the mean`, font: { size: 13 } },
      xaxis: { title: { text: esc(run.x_label) } }, yaxis: { title: { text: `${m} accuracy (%)` } },
    }, PLOT_CONFIG);
  };
  pick.addEventListener("change", render);
  render();
  const table = el("table", { class: "runs" }, el("tr", {}, ...["algorithm", "seed", "evaluations",
    "returned arch", "valid", "test"].map((h) => el("th", {}, h))));
  const canJump = !!tableOfSpace(run.space);
  for (const a of run.algos) {
    for (const r of a.runs) {
      const archCell = el("td", { class: "arch" + (canJump && r.final_arch ? " clickable" : "") }, r.final_arch || "–");
      if (canJump && r.final_arch) archCell.addEventListener("click", () => jumpToArch(run.space, r.final_arch).catch(showError));
      table.appendChild(el("tr", {}, el("td", {}, a.algo), el("td", {}, r.seed), el("td", { class: "num" }, r.evals),
        archCell, el("td", { class: "num" }, fmt(r.final_valid)), el("td", { class: "num" }, fmt(r.final_test))));
    }
  }
  body.appendChild(el("div", { class: "list-wrap" }, table));
}

function hexAlpha(hex, a) {
  const v = parseInt(hex.slice(1), 16);
  return `rgba(${(v >> 16) & 255},${(v >> 8) & 255},${v & 255},${a})`;
}

function drawOneShot(run, body) {
  $("run-meta").textContent = `${run.algo} on ${run.dataset}, seed ${run.seed}, space ${run.space}, ` +
    `${run.epochs.length} epoch(s), status ${run.status}`;
  body.appendChild(el("div", { class: "arch" }, `derived arch: ${run.final_arch || "–"}`));
  body.appendChild(drawCell(run.cell));
  const acc = el("div", { class: "plot", id: "oneshot-acc" });
  body.appendChild(acc);
  const names = { train_acc: "supernet train", valid_acc: "supernet valid", derived_valid_acc: "derived arch (one-shot)", table_acc: "derived arch (table)" };
  const traces = Object.entries(names).filter(([k]) => run.metrics[k].some((v) => v !== null))
    .map(([k, label]) => ({ x: run.epochs, y: run.metrics[k], mode: "lines+markers", name: label }));
  Plotly.react(acc, traces, { height: 300, margin: { l: 50, r: 10, t: 30, b: 40 },
    title: { text: "accuracy per epoch", font: { size: 13 } }, xaxis: { title: { text: "epoch" }, tickformat: "d" },
    shapes: run.warmup_epochs ? [{ type: "rect", xref: "x", yref: "paper", x0: 0.5, x1: run.warmup_epochs + 0.5,
      y0: 0, y1: 1, fillcolor: "#999", opacity: 0.15, line: { width: 0 } }] : [] }, PLOT_CONFIG);
  const grid = el("div", { class: "edge-grid", id: "edge-grid" });
  body.appendChild(el("h3", {}, "architecture weights per edge (op probabilities per epoch)"));
  body.appendChild(grid);
  run.edges.forEach((e, k) => {
    const div = el("div", { class: "plot edge", "data-edge": e.edge });
    grid.appendChild(div);
    Plotly.react(div, e.ops.map((o) => ({ x: run.epochs, y: o.values, mode: "lines", name: esc(o.op),
      line: { color: colorOf(o.op) }, showlegend: k === 0 })), {
      height: 210, margin: { l: 35, r: 5, t: 25, b: 25 }, title: { text: esc(e.edge), font: { size: 12 } },
      yaxis: { range: [0, 1] }, xaxis: { tickformat: "d" }, legend: { font: { size: 9 } },
    }, SMALL_PLOT);
  });
}

function drawRanking(run, body) {
  const t = run.table || {};
  $("run-meta").textContent = `${run.variant} · supernet on ${run.dataset}; truth ${t.truth} of ${t.dataset}/${t.hp}; ` +
    `${run.archs.length} archs`;
  const taus = el("div", { class: "plot", id: "ranking-tau" });
  const sc = el("div", { class: "plot", id: "ranking-scatter" });
  body.appendChild(taus);
  body.appendChild(sc);
  const labels = run.labels.map(esc); // category ticks: Plotly reads tags in them
  Plotly.react(taus, [
    { x: labels, y: run.tau, mode: "lines+markers", name: "Kendall tau vs table" },
    { x: labels, y: run.rho, mode: "lines+markers", name: "Spearman rho vs table" },
    { x: labels, y: run.tau_prev, mode: "lines+markers", name: "tau vs previous snapshot", line: { dash: "dot" } },
  ], { height: 320, margin: { l: 50, r: 10, t: 30, b: 60 }, title: { text: "ranking over training", font: { size: 13 } },
    yaxis: { range: [-1, 1] } }, PLOT_CONFIG);
  Plotly.react(sc, [{ x: run.truth, y: run.final_oneshot, mode: "markers", text: run.archs.map(esc),
    customdata: run.parts, hovertemplate: "%{text}<br>truth %{x}<br>one-shot %{y}<br>part %{customdata}<extra></extra>",
    marker: { color: run.parts, colorscale: "Viridis", size: 8 } }], {
    height: 320, margin: { l: 50, r: 10, t: 30, b: 45 }, title: { text: "final snapshot: one-shot vs table", font: { size: 13 } },
    xaxis: { title: { text: `table ${esc(t.truth)}` } }, yaxis: { title: { text: "one-shot accuracy (%)" } },
  }, PLOT_CONFIG);
  if (run.topk_true_ranks) {
    body.appendChild(el("p", {}, `true ranks of the supernet's top ${run.topk_true_ranks.length}: ${run.topk_true_ranks.join(", ")}`));
  }
}

// ---------------------------------------------------------------------------------------
function bindControls() {
  $("f-ds").addEventListener("change", (e) => { state.ds = e.target.value; state.hp = null; buildGroupControls(); scheduleRefresh(); });
  $("f-hp").addEventListener("change", (e) => { state.hp = e.target.value; buildGroupControls(); scheduleRefresh(); });
  $("ax-x").addEventListener("change", (e) => { state.x = e.target.value; scheduleRefresh(); });
  $("ax-y").addEventListener("change", (e) => { state.y = e.target.value; state.sort = e.target.value; scheduleRefresh(); });
  $("curve-metric").addEventListener("change", (e) => { state.curve = e.target.value; renderCards().catch(showError); });
  $("f-reset").addEventListener("click", () => {
    state.ranges = {}; state.allowed = {}; state.has = [];
    buildGroupControls(); buildOpControls(); scheduleRefresh();
  });
}

window.addEventListener("DOMContentLoaded", () => {
  bindControls();
  loadSources().catch((err) => { showError(err); setReady("error"); });
});
