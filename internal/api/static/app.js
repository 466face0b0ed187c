"use strict";
// Tributary's dashboard: plain DOM and SVG, no build step. It reads the JSON API and
// listens to /api/events for windows as they close.

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

// lineChart draws named series over the same labels; a gap (null) breaks a line.
function lineChart(container, labels, series) {
  const all = series.flatMap((s) => s.values.filter((v) => v !== null));
  if (all.length === 0) return emptyChart(container, "no speeds measured in this range yet");
  const svg = el("svg", { role: "img" });
  const g = frame(svg, labels, niceMax(Math.max(...all)));
  for (const s of series) {
    let d = "";
    let pen = false;
    const dots = [];
    s.values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      const x = (g.x0 + g.step * (i + 0.5)).toFixed(1), y = g.y(v).toFixed(1);
      d += `${pen ? "L" : "M"}${x},${y}`;
      pen = true;
      const dot = el("circle", { class: s.name, cx: x, cy: y, r: 2.2, "data-value": v });
      dot.append(el("title", {}, `${labels[i]} ${s.name} ${fmt(v)} m/s`));
      dots.push(dot);
    });
    svg.append(el("path", { class: s.name, d, "data-series": s.name }), ...dots);
  }
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
  const q = new URLSearchParams({ from: "-" + f.get("range"), to: "0s", step: f.get("step") });
  for (const k of ["sensor", "type", "window"]) if (f.get(k)) q.set(k, f.get(k));
  const errBox = $("#metrics-error");
  try {
    const m = await getJSON("/api/sensors/metrics?" + q);
    errBox.hidden = true;
    const labels = m.points.map((p) => fmtTime(p.start));
    barChart($("#chart-travelers"), m.points, {
      label: (p) => fmtTime(p.start), value: (p) => p.travelers,
      title: (p) => `${fmtTime(p.start)}–${fmtTime(p.end)}: ${p.travelers} travelers`,
    });
    const speeds = (k) => m.points.map((p) => (p.measured > 0 ? p[k] : null));
    lineChart($("#chart-speed"), labels, [
      { name: "min", values: speeds("min_speed") }, { name: "avg", values: speeds("avg_speed") }, { name: "max", values: speeds("max_speed") },
    ]);
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

// Live feed -------------------------------------------------------------------------------

let received = 0;
let sensorsRefresh = null;

function connect() {
  const feed = $("#feed");
  const es = new EventSource("/api/events");
  es.onopen = () => { feed.dataset.state = "live"; feed.textContent = "live"; };
  es.onerror = () => { feed.dataset.state = "down"; feed.textContent = "reconnecting…"; };
  es.addEventListener("window", (ev) => {
    const w = JSON.parse(ev.data);
    received++;
    $("#feed-count").textContent = `${received} windows closed since this page opened`;
    if (w.pipeline === "likes") {
      addLikeWindow(w);
      showLikeWindows();
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
loadSensors().then(loadMetrics);
loadVisits();
loadLikes();
connect();
