"use strict";
// Tributary's dashboard: plain DOM, SVG and uPlot (vendored, served from the binary), no
// build step. It reads the JSON API and listens to /api/events for windows as they close
// and acks as they are made.

const $ = (sel) => document.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function getJSON(url, options) {
  const res = await fetch(url, options);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

const fmtTime = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const fmt = (x) => (Math.round(x * 100) / 100).toString();

// niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// frame draws the axes of a chart and returns the plot's geometry.
function frame(svg, labels, top) {
  const W = 600, H = 220, L = 40, R = 10, T = 10, B = 24;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const g = { x0: L, x1: W - R, y0: H - B, y1: T, top };
  g.y = (v) => g.y0 - (v / top) * (g.y0 - g.y1);
  svg.append(el("line", { class: "axis", x1: L, x2: W - R, y1: g.y0, y2: g.y0 }));
  for (const f of [0, 0.5, 1]) {
    const y = g.y(top * f);
    svg.append(el("line", { class: "axis", x1: L, x2: W - R, y1: y, y2: y }));
    svg.append(el("text", { x: L - 4, y: y + 3, "text-anchor": "end" }, fmt(top * f)));
  }
  const every = Math.max(1, Math.ceil(labels.length / 8));
  g.step = (g.x1 - g.x0) / Math.max(1, labels.length);
  labels.forEach((label, i) => {
    if (i % every === 0) svg.append(el("text", { x: g.x0 + g.step * (i + 0.5), y: H - 8, "text-anchor": "middle" }, label));
  });
  return g;
}

function emptyChart(container, message) {
  const svg = el("svg", { viewBox: "0 0 600 60" });
  svg.append(el("text", { class: "empty", x: 300, y: 34, "text-anchor": "middle" }, message));
  container.replaceChildren(svg);
}

// barChart draws one bar per item; each bar carries its label and value as data attributes.
function barChart(container, items, { label, value, title }) {
  if (items.length === 0) return emptyChart(container, "no data yet");
  const svg = el("svg", { role: "img" });
  const g = frame(svg, items.map(label), niceMax(Math.max(...items.map(value))));
  items.forEach((it, i) => {
    const v = value(it);
    const rect = el("rect", {
      class: "bar", x: g.x0 + g.step * i + g.step * 0.1, width: g.step * 0.8,
      y: g.y(v), height: g.y0 - g.y(v), "data-label": label(it), "data-value": v,
    });
    rect.append(el("title", {}, title(it)));
    svg.append(rect);
  });
  container.replaceChildren(svg);
}

// Sensors ---------------------------------------------------------------------------------

async function loadSensors() {
  const { sensors, types } = await getJSON("/api/sensors");
  const sel = $("#sensor");
  const current = sel.value;
  sel.replaceChildren(new Option("all", ""), ...sensors.map((s) => new Option(s, s)));
  sel.value = current;
  const tsel = $("#type");
  if (tsel.options.length === 1) tsel.append(...types.map((t) => new Option(t, t)));
}

async function loadMetrics() {
  const f = new FormData($("#metrics-form"));
  // live=1: the minutes still open count too, so the charts fill while traffic flows.
  const q = new URLSearchParams({ from: "-" + f.get("range"), to: "0s", step: f.get("step"), live: "1" });
  for (const k of ["sensor", "type", "window"]) if (f.get(k)) q.set(k, f.get(k));
  const errBox = $("#metrics-error");
  try {
    const m = await getJSON("/api/sensors/metrics?" + q);
    errBox.hidden = true;
    // Time series in uPlot: travelers per step as bars, speeds as lines with gaps where
    // nothing was measured. The data attributes carry the drawn values for tests.
    const xs = m.points.map((p) => new Date(p.start).getTime() / 1000);
    const travelers = m.points.map((p) => p.travelers);
    const trav = $("#chart-travelers");
    uChart(trav, [{ label: "travelers", stroke: "#2563eb", fill: "rgba(37,99,235,.3)", paths: uPlot.paths.bars({ size: [0.8] }), points: { show: false } }],
      [xs, travelers]);
    trav.dataset.values = JSON.stringify(travelers);
    const speeds = (k) => m.points.map((p) => (p.measured > 0 ? p[k] : null));
    const sp = $("#chart-speed");
    uChart(sp, [
      // Points shown always: a minute measured between empty ones is a lone point, no line.
      { label: "min m/s", stroke: "#10b981", points: { show: true, size: 5 } },
      { label: "avg m/s", stroke: "#2563eb", width: 2, points: { show: true, size: 6 } },
      { label: "max m/s", stroke: "#ef4444", points: { show: true, size: 5 } },
    ], [xs, speeds("min_speed"), speeds("avg_speed"), speeds("max_speed")]);
    sp.dataset.measured = m.points.filter((p) => p.measured > 0).length;
    sp.dataset.open = m.points.filter((p) => p.open).length;
    const total = m.points.reduce((a, p) => a + p.measured, 0);
    $("#metrics-summary").textContent = `${m.points.length} points from ${m.from} to ${m.to}, step ${m.step}, window ${m.window}; ${total} traveler-minutes measured`;
  } catch (e) {
    errBox.textContent = e.message;
    errBox.hidden = false;
  }
}

async function loadVisits() {
  const { visits } = await getJSON("/api/visits?limit=15");
  $("#visits tbody").replaceChildren(...visits.map((v) => row([
    v.traveler_id, v.sensor_id, v.type, fmtTime(v.entered),
    fmt((new Date(v.left) - new Date(v.entered)) / 1000), v.readings, fmt(v.min_speed), fmt(v.avg_speed), fmt(v.max_speed),
  ])));
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    td.textContent = c;
    tr.append(td);
  }
  return tr;
}

async function lookUpTraveler(ev) {
  ev.preventDefault();
  const id = $("#traveler").value.trim();
  const box = $("#traveler-result");
  try {
    const cur = await getJSON(`/api/travelers/${encodeURIComponent(id)}/current`);
    const { visits } = await getJSON(`/api/visits?traveler=${encodeURIComponent(id)}&limit=10`);
    const live = cur.live
      ? cur.open.map((v) => `in view of ${v.sensor_id} since ${fmtTime(v.entered)}, ${v.readings} readings, avg ${fmt(v.avg_speed)} m/s`).join("; ") || "followed, no open visit"
      : "not followed right now";
    box.textContent = `${id}: ${live}. ${visits.length} stored visits` +
      (visits.length ? ` (last at ${visits[0].sensor_id}, avg ${fmt(visits[0].avg_speed)} m/s)` : "");
  } catch (e) {
    box.textContent = e.message;
  }
}

// Likes -----------------------------------------------------------------------------------

const likeWindows = new Map(); // "video|size|start" -> window

function showLikeWindows() {
  const ws = [...likeWindows.values()].sort((a, b) => b.start.localeCompare(a.start) || b.count - a.count).slice(0, 20);
  $("#like-windows tbody").replaceChildren(...ws.map((w) => {
    const tr = row([w.key, w.size_seconds / 60 + " min", fmtTime(w.start), w.count]);
    tr.dataset.key = w.key;
    tr.dataset.count = w.count;
    return tr;
  }));
  const minutes = [...likeWindows.values()].filter((w) => w.size_seconds === 60);
  const latest = minutes.reduce((a, w) => (w.start > a ? w.start : a), "");
  const top = minutes.filter((w) => w.start === latest).sort((a, b) => b.count - a.count).slice(0, 10);
  barChart($("#chart-likes"), top, { label: (w) => w.key, value: (w) => w.count, title: (w) => `${w.key}: ${w.count} likes` });
}

function addLikeWindow(w) {
  likeWindows.set(`${w.key}|${w.size_seconds}|${w.start}`, w);
  if (likeWindows.size > 2000) likeWindows.delete(likeWindows.keys().next().value);
}

async function loadLikes() {
  const { windows } = await getJSON("/api/windows?pipeline=likes&limit=200");
  windows.forEach(addLikeWindow);
  showLikeWindows();
}

async function like(ev) {
  ev.preventDefault();
  const video = $("#video").value.trim();
  const count = Number($("#like-count").value || 1);
  const status = $("#like-status");
  try {
    const res = await getJSON(`/videos/${encodeURIComponent(video)}/likes`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ count }),
    });
    status.textContent = `sent ${res.accepted} like${res.accepted === 1 ? "" : "s"} to ${res.video_id}; its window closes a minute after it opened`;
    status.className = "muted";
  } catch (e) {
    status.textContent = e.message;
    status.className = "error";
  }
}


// Views -----------------------------------------------------------------------------------

// A view shown again reloads what the live feed does not bring back.
const viewLoaders = {
  join: () => Promise.all([loadJoin(), loadAcks()]),
  transactions: () => Promise.all([loadTx(), loadTxOpen()]),
  likes: () => loadLikes().then(loadOpenLikes),
  sensors: () => loadSensors().then(loadMetrics),
};

function showView() {
  const name = (location.hash || "#join").slice(1);
  for (const v of document.querySelectorAll("section.view")) v.hidden = v.id !== name;
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.getAttribute("href") === "#" + name);
  if (viewLoaders[name]) viewLoaders[name]().catch(() => {});
}

// uChart draws (or redraws) a uPlot time series chart in container.
const uCharts = new Map();
function uChart(container, series, data, opts = {}) {
  const width = Math.max(280, container.clientWidth || 600);
  let u = uCharts.get(container);
  if (!u) {
    u = new uPlot({
      width, height: 220, series: [{}, ...series], scales: opts.scales || { x: { time: opts.time !== false } },
      axes: opts.axes, cursor: { drag: { x: true, y: false } }, legend: { live: true },
    }, data, container);
    uCharts.set(container, u);
    new ResizeObserver(() => u.setSize({ width: Math.max(280, container.clientWidth), height: 220 })).observe(container);
  } else {
    u.setData(data);
  }
  container.dataset.points = data[0].length;
  return u;
}

// Join ------------------------------------------------------------------------------------

async function loadJoin() {
  const s = await getJSON(`/api/join/summary?minutes=${$("#join-minutes").value}`);
  for (const n of document.querySelectorAll("#join-counters .n")) n.textContent = s[n.dataset.k];
  const d = s.delay;
  $("#join-quantiles").textContent = d.count ? `p50 ${fmt(d.p50_ms)} ms, p90 ${fmt(d.p90_ms)} ms, p99 ${fmt(d.p99_ms)} ms over ${d.count} acks` : "no acks in this interval";
  const labels = d.buckets.map((b, i) => i);
  uChart($("#chart-delay"), [{ label: "acks", stroke: "#2563eb", fill: "rgba(37,99,235,.25)", paths: uPlot.paths.bars({ size: [0.8] }) }],
    [labels, d.buckets.map((b) => b.count)], {
      time: false, scales: { x: { time: false } },
      axes: [{ values: (u, ticks) => ticks.map((i) => { const b = d.buckets[i]; return b ? (b.le_ms ? "≤" + b.le_ms + "ms" : "more") : ""; }) }, {}],
    });
  $("#chart-delay").dataset.count = d.count;
}

async function loadAcks() {
  const { acks } = await getJSON("/api/join/acks?limit=15");
  $("#acks tbody").replaceChildren(...acks.map(ackRow));
}

function ackRow(a) {
  const tr = row([a.event_id, a.status, a.topics.join(", "), fmtTime(a.acked_at), fmt(a.delay_ms) + " ms"]);
  tr.dataset.event = a.event_id;
  return tr;
}

function addAck(a) {
  const body = $("#acks tbody");
  body.prepend(ackRow(a));
  while (body.children.length > 15) body.lastChild.remove();
}

async function lookUpEvent(ev) {
  ev.preventDefault();
  const id = $("#event-id").value.trim();
  const box = $("#event-result");
  try {
    const e = await getJSON(`/api/join/events/${encodeURIComponent(id)}`);
    const arrivals = e.arrivals.map((a) => `${a.topic} at ${new Date(a.created_at).toLocaleTimeString()} (partition ${a.partition}, offset ${a.offset})`).join("; ") || "no rows stored";
    box.replaceChildren(document.createTextNode(`${e.event_id}: ${e.status}. ${arrivals}.` +
      (e.ack ? ` Acked at ${new Date(e.ack.acked_at).toLocaleTimeString()}, ${fmt(e.ack.delay_ms)} ms after its last row.` : "") +
      (e.late ? ` ${e.late} late rows.` : "") + " "));
    if (e.temporal_ui) {
      const a = document.createElement("a");
      a.href = e.temporal_ui;
      a.textContent = "its workflow in the Temporal UI";
      a.id = "event-workflow";
      box.append(a);
    }
    box.dataset.status = e.status;
  } catch (err) {
    box.textContent = err.message;
    box.dataset.status = "error";
  }
}

// Transactions ----------------------------------------------------------------------------

const txWindows = new Map(); // start -> window

function showTx() {
  const ws = [...txWindows.values()].sort((a, b) => a.start.localeCompare(b.start)).slice(-200);
  const xs = ws.map((w) => new Date(w.start).getTime() / 1000);
  uChart($("#chart-tx"), [
    { label: "sum", stroke: "#2563eb", scale: "sum" },
    { label: "count", stroke: "#10b981", scale: "count" },
    // The average has a scale of its own, unlabelled: its value shows under the cursor.
    { label: "average", stroke: "#f59e0b", scale: "avg", dash: [4, 4] },
  ], [xs, ws.map((w) => w.sum), ws.map((w) => w.count), ws.map((w) => w.avg)], {
    axes: [{}, { scale: "sum" }, { scale: "count", side: 1, grid: { show: false } }, { scale: "avg", show: false }],
  });
  if (ws.length) $("#chart-tx").dataset.last = JSON.stringify({ start: ws[ws.length - 1].start, sum: ws[ws.length - 1].sum, count: ws[ws.length - 1].count });
}

async function loadTx() {
  const { windows } = await getJSON("/api/windows?pipeline=transactions&limit=200");
  for (const w of windows) txWindows.set(w.start, w);
  showTx();
}

async function loadTxOpen() {
  const box = $("#tx-open");
  try {
    const { windows } = await getJSON("/api/windows/open?pipeline=transactions");
    const w = windows[windows.length - 1];
    for (const n of box.querySelectorAll(".n")) n.textContent = w ? fmt(w[n.dataset.k]) : "0";
    box.dataset.state = "live";
  } catch (err) {
    box.dataset.state = "unavailable";
    box.title = err.message;
  }
}

async function verifyTx(ev) {
  ev.preventDefault();
  const out = $("#verify-result");
  out.textContent = "reading the topic…";
  try {
    const v = await getJSON("/api/transactions/verify");
    out.textContent = v.equal
      ? `every closed window equals the recomputation: ${v.records} records, ${v.paid} paid, ${v.windows} windows, ${v.open} still open, ${v.late} late`
      : `${v.differences.length} windows differ: ${v.differences.slice(0, 3).join("; ")}`;
    out.dataset.equal = v.equal;
  } catch (err) {
    out.textContent = err.message;
  }
}

// Likes leaderboards and control ------------------------------------------------------------

let openLikes = []; // open windows of the videos on the boards

function showBoards() {
  const now = Date.now();
  for (const size of [60, 300, 600]) {
    const latestClosed = [...likeWindows.values()].filter((w) => w.size_seconds === size)
      .reduce((a, w) => (w.start > a ? w.start : a), "");
    const closed = [...likeWindows.values()].filter((w) => w.size_seconds === size && w.start === latestClosed).map((w) => ({ ...w, open: false }));
    const open = openLikes.filter((w) => w.size_seconds === size && new Date(w.end).getTime() > now - 60000);
    const top = [...open, ...closed].sort((a, b) => b.count - a.count).slice(0, 10);
    $(`#board-${size} tbody`).replaceChildren(...top.map((w) => {
      const tr = row([w.key, w.count, w.open ? "open" : "closed " + fmtTime(w.start)]);
      tr.dataset.key = w.key;
      tr.dataset.count = w.count;
      tr.dataset.open = w.open;
      if (w.open) tr.lastChild.className = "open-mark";
      return tr;
    }));
  }
}

async function loadOpenLikes() {
  const keys = new Set([...likeWindows.values()].sort((a, b) => b.count - a.count).slice(0, 10).map((w) => w.key));
  const st = simStatus;
  if (st && st.running) for (let i = 0; i < Math.min(10, st.setting.videos); i++) keys.add("video-" + i);
  const all = [];
  for (const key of [...keys].slice(0, 20)) {
    try {
      const { windows } = await getJSON(`/api/windows/open?pipeline=likes&key=${encodeURIComponent(key)}`);
      all.push(...windows);
    } catch (err) {
      break; // no Temporal: closed windows only
    }
  }
  openLikes = all;
  showBoards();
}

let simStatus = null;

function showSim(st) {
  simStatus = st;
  $("#sim-status").textContent = st.running
    ? `running: ${st.setting.likes_per_minute} likes per minute to each of ${st.setting.videos} videos; ${st.sent} sent`
    : (st.error ? "stopped: " + st.error : `no simulation running${st.sent ? ` (${st.sent} sent by the last)` : ""}`);
  $("#sim-status").dataset.running = st.running;
}

async function startSim(ev) {
  ev.preventDefault();
  try {
    showSim(await getJSON("/api/simulations/likes", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ likes_per_minute: Number($("#sim-rate").value), videos: Number($("#sim-videos").value) }),
    }));
  } catch (err) {
    $("#sim-status").textContent = err.message;
  }
}

async function stopSim() {
  showSim(await getJSON("/api/simulations/likes", { method: "DELETE" }));
}

// Live feed -------------------------------------------------------------------------------

let received = 0;
let sensorsRefresh = null;

function connect() {
  const feed = $("#feed");
  const es = new EventSource("/api/events");
  es.onopen = () => { feed.dataset.state = "live"; feed.textContent = "live"; };
  es.onerror = () => { feed.dataset.state = "down"; feed.textContent = "reconnecting…"; };
  es.addEventListener("ack", (ev) => addAck(JSON.parse(ev.data)));
  es.addEventListener("window", (ev) => {
    const w = JSON.parse(ev.data);
    received++;
    $("#feed-count").textContent = `${received} windows closed since this page opened`;
    if (w.pipeline === "likes") {
      addLikeWindow(w);
      showLikeWindows();
      showBoards();
    } else if (w.pipeline === "transactions") {
      txWindows.set(w.start, w);
      showTx();
    } else if (w.pipeline === "sensors") {
      // Many sensor minutes close together: refresh once they stop arriving.
      clearTimeout(sensorsRefresh);
      sensorsRefresh = setTimeout(() => { loadMetrics(); loadVisits(); loadSensors(); }, 500);
    }
  });
}

$("#metrics-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadMetrics(); });
$("#traveler-form").addEventListener("submit", lookUpTraveler);
$("#like-form").addEventListener("submit", like);
$("#event-form").addEventListener("submit", lookUpEvent);
$("#join-minutes").addEventListener("change", loadJoin);
$("#verify-form").addEventListener("submit", verifyTx);
$("#likes-sim-form").addEventListener("submit", startSim);
$("#sim-stop").addEventListener("click", stopSim);
window.addEventListener("hashchange", showView);
showView();
loadSensors().then(loadMetrics);
loadVisits();
loadLikes().then(loadOpenLikes);
loadJoin();
loadAcks();
loadTx();
loadTxOpen();
getJSON("/api/simulations/likes").then(showSim).catch(() => {});
// What the feed does not push is refreshed every few seconds: the join's counts, the open
// windows, the simulation's progress.
setInterval(() => {
  if (location.hash === "#sensors") loadMetrics();
  loadJoin().catch(() => {});
  loadTxOpen();
  loadOpenLikes();
  getJSON("/api/simulations/likes").then(showSim).catch(() => {});
}, 2000);
connect();
