// The device page: device.html?id=ID[&range=6h | &from=UNIX&to=UNIX][&live=0]
//
// Draws the charts `GET api/v1/devices/{id}/metrics` makes possible (those
// the user chose, in their order), fetched for the range shown with one
// `histories` request; grows them in live mode from `api/v1/live?device=ID`;
// shows the last report's top processes, OS, uptime and boot time, the
// status the server gives and the duplicate-id warning. Every string from a
// report goes in as text.

import { initShell } from "./shell.js";
import { getJSON, openLive, serverNow } from "./api.js";
import { startDeviceAlerts } from "./device-alerts.js";
import { savePrefs } from "./prefs.js";
import { setStale } from "./shell.js";
import { TimeChart } from "./charts.js";
import { CHART_IDS, CHART_NAMES, chartsFor, chosenCharts } from "./device-charts.js";
import { reportMetrics } from "./report-metrics.js";
import {
  DASH,
  toNumber,
  fmtPct,
  fmtBytes,
  fmtRate,
  fmtCelsius,
  fmtDuration,
  parseTime,
  fmtAge,
  fmtDateTime,
} from "./format.js";

/** The preset ranges, in seconds. */
const RANGES = {
  "1h": 3600,
  "6h": 6 * 3600,
  "24h": 24 * 3600,
  "7d": 7 * 86400,
  "30d": 30 * 86400,
  "1y": 365 * 86400,
};
const RANGE_NAMES = {
  "1h": "hour",
  "6h": "6 hours",
  "24h": "24 hours",
  "7d": "7 days",
  "30d": "30 days",
  "1y": "year",
};
/** Live mode may be on for these presets (finer than hourly rollups). */
const LIVE_RANGES = new Set(["1h", "6h", "24h"]);
/** What the server accepts as a device id. */
const DEVICE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Most metric names one `histories` request may ask. */
const MAX_METRICS_PER_REQUEST = 256;
const STATUSES = new Set(["ok", "warning", "critical", "offline"]);

const $ = (id) => document.getElementById(id);

/** Now by the server's clock, in Unix seconds. */
const nowSeconds = () => Math.ceil(serverNow() / 1000);

/** A plain number for charts and custom metrics: "1.5k", "0.25", "—". */
function fmtNumber(v) {
  const n = toNumber(v);
  if (n === null) return DASH;
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (abs >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (abs >= 100 || Number.isInteger(n)) return String(Math.round(n));
  return String(Number(n.toFixed(2)));
}

/** A process id: a whole number, or "—". */
function fmtPid(v) {
  const n = toNumber(v);
  return n !== null && Number.isInteger(n) && n >= 0 ? String(n) : DASH;
}

/** Unix seconds as the value of a datetime-local input (local time). */
function localInput(seconds) {
  const d = new Date(seconds * 1000);
  if (!Number.isFinite(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A datetime-local input's value as Unix seconds, or null. */
function fromLocalInput(value) {
  if (typeof value !== "string" || value === "") return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
}

const state = {
  id: null,
  /** A preset key of RANGES, or "custom" (then from/to hold it). */
  range: "1h",
  from: null,
  to: null,
  /** The preset a zoom started from, for "Reset zoom". */
  zoomedFrom: null,
  live: true,
  /** The metric names the device has. */
  names: [],
  /** The chart ids shown, in order. */
  chartIds: [...CHART_IDS],
  /** `[{spec, chart}]` as drawn. */
  charts: [],
  /** The device's latest summary. */
  summary: null,
  /** Bumped per fetch, so a slow answer never overwrites a newer one. */
  fetchSeq: 0,
  /** Whether `histories` exists (false: one `history` request per metric). */
  batchHistories: true,
};

// ---------- the URL ----------

function readUrl() {
  const q = new URLSearchParams(location.search);
  state.id = q.get("id");
  const range = q.get("range");
  const from = Number(q.get("from"));
  const to = Number(q.get("to"));
  if (q.has("from") && q.has("to") && Number.isFinite(from) && Number.isFinite(to) && to > from) {
    state.range = "custom";
    state.from = Math.floor(from);
    state.to = Math.ceil(to);
  } else if (range && Object.hasOwn(RANGES, range)) {
    state.range = range;
  }
  const live = q.get("live");
  state.live = LIVE_RANGES.has(state.range) && (live === null ? state.range === "1h" : live === "1");
}

function writeUrl() {
  const q = new URLSearchParams();
  q.set("id", state.id);
  if (state.range === "custom") {
    q.set("from", String(state.from));
    q.set("to", String(state.to));
  } else {
    q.set("range", state.range);
    if (state.live !== (state.range === "1h")) q.set("live", state.live ? "1" : "0");
  }
  // The path in full: a bare "?…" would resolve against the <base> a
  // nested server injects, not against this page.
  history.replaceState(null, "", `${location.pathname}?${q}`);
}

/** The window shown now, in Unix seconds. */
function currentWindow() {
  if (state.range === "custom") return { from: state.from, to: state.to };
  const to = nowSeconds();
  return { from: to - RANGES[state.range], to };
}

/**
 * Points to ask per series: one-minute buckets where the range is short,
 * at most 2,000 (a few per pixel of the widest chart), so a year's answer
 * stays small; the server merges buckets into min-max bands to fit.
 */
function pointsFor(span) {
  return Math.min(2000, Math.max(500, Math.ceil(span / 60) + 1));
}

// ---------- fetching ----------

const devicePath = () => `api/v1/devices/${encodeURIComponent(state.id)}`;

/** An error's HTTP status, if it came from an answer. */
function statusOf(error) {
  return error && typeof error.status === "number" ? error.status : null;
}

/** The metric names the device has; null for an unknown device. */
async function fetchMetricNames() {
  try {
    const answer = await getJSON(`${devicePath()}/metrics`);
    return Array.isArray(answer?.metrics) ? answer.metrics.filter((m) => typeof m === "string") : [];
  } catch (error) {
    if (statusOf(error) !== 404) throw error;
    // Unknown device, or a server without the route: the device list says which.
    const summary = await fetchSummary();
    return summary ? reportMetrics(summary).map(([name]) => name) : null;
  }
}

/** The device's summary from the device list, or null. */
async function fetchSummary() {
  const list = await getJSON(`api/v1/devices?q=${encodeURIComponent(state.id)}`);
  return Array.isArray(list) ? list.find((d) => d && d.device_id === state.id) || null : null;
}

/** One History per name of `metrics`, in order (null where none came). */
async function fetchHistories(metrics, window) {
  const common = {
    from: String(window.from),
    to: String(window.to),
    points: String(pointsFor(window.to - window.from)),
  };
  if (state.batchHistories) {
    try {
      const out = [];
      for (let i = 0; i < metrics.length; i += MAX_METRICS_PER_REQUEST) {
        const q = new URLSearchParams();
        for (const m of metrics.slice(i, i + MAX_METRICS_PER_REQUEST)) q.append("metric", m);
        for (const [k, v] of Object.entries(common)) q.set(k, v);
        const answer = await getJSON(`${devicePath()}/histories?${q}`);
        if (!Array.isArray(answer)) throw new Error("histories: not a list");
        out.push(...answer);
      }
      return metrics.map((_, i) => out[i] || null);
    } catch (error) {
      // A 404 without the API's JSON error: no such route on this server
      // (an older one), so one request per metric. A JSON 404 says the
      // device went: that is for the page to show.
      if (statusOf(error) !== 404 || error.message !== "HTTP 404") throw error;
      state.batchHistories = false;
    }
  }
  return Promise.all(
    metrics.map(async (metric) => {
      const q = new URLSearchParams({ metric, ...common });
      try {
        return await getJSON(`${devicePath()}/history?${q}`);
      } catch {
        return null;
      }
    }),
  );
}

// ---------- the page ----------

function showMissing(message) {
  $("device-loading").hidden = true;
  $("device-view").hidden = true;
  $("device-missing").hidden = false;
  $("device-missing-text").textContent = message;
  document.title = "Unknown device · Tailmon";
}

function showError(message) {
  const el = $("device-error");
  el.textContent = message;
  el.hidden = !message;
}

/** Sets `el`'s text, "—" when `text` is empty. */
function setText(el, text) {
  el.textContent = text === null || text === undefined || text === "" ? "—" : String(text);
}

/** A `<time>` for `iso`, or "—". */
function setTime(el, iso, relative) {
  const at = parseTime(iso);
  if (at === null) {
    el.textContent = "—";
    el.removeAttribute("datetime");
    el.removeAttribute("title");
    return;
  }
  const date = new Date(at);
  el.dateTime = date.toISOString();
  el.title = fmtDateTime(at);
  el.textContent = relative ? fmtAge(at, serverNow()) : fmtDateTime(at);
}

function renderSummary() {
  const s = state.summary;
  if (!s) return;
  const status = STATUSES.has(s.status) ? s.status : "unknown";
  const badge = $("device-status");
  badge.className = `status-badge status-${status}`;
  badge.dataset.status = status;
  badge.textContent = status === "unknown" ? "—" : status;
  setText($("device-os"), typeof s.os_info === "string" ? s.os_info : null);
  setText($("device-uptime"), fmtDuration(s.uptime_seconds));
  setTime($("device-boot"), s.boot_time, false);
  setTime($("device-last-seen"), s.received_at ?? s.last_seen, true);
  const offline = $("device-offline-row");
  offline.hidden = !s.offline_since;
  if (s.offline_since) setTime($("device-offline-since"), s.offline_since, false);
  const conflict = $("device-conflict");
  conflict.hidden = !s.id_conflict_at;
  if (s.id_conflict_at) setTime($("device-conflict-at"), s.id_conflict_at, true);
  const skew = typeof s.clock_skew_seconds === "number" && Number.isFinite(s.clock_skew_seconds)
    ? Math.round(s.clock_skew_seconds) : 0;
  $("device-clock-row").hidden = skew === 0;
  if (skew !== 0) {
    setText($("device-clock-skew"), `clock ${Math.abs(skew)} s ${skew > 0 ? "ahead" : "behind"}`);
  }
  renderProcesses(s.top_processes);
}

function renderProcesses(list) {
  const rows = (Array.isArray(list) ? list : [])
    .filter((p) => p && typeof p === "object")
    .sort((a, b) => (toNumber(b.cpu_percent) ?? -1) - (toNumber(a.cpu_percent) ?? -1))
    .map((p) => {
      const tr = document.createElement("tr");
      const cells = [
        typeof p.name === "string" && p.name ? p.name : "—",
        fmtPid(p.pid),
        fmtPct(p.cpu_percent),
        fmtBytes(p.rss_bytes),
      ];
      cells.forEach((text, i) => {
        const td = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) td.scope = "row";
        td.textContent = text;
        tr.append(td);
      });
      return tr;
    });
  $("processes-body").replaceChildren(...rows);
  $("processes-empty").hidden = rows.length > 0;
  $("processes-table").hidden = rows.length === 0;
}

const FORMATS = {
  percent: fmtPct,
  bytes: fmtBytes,
  rate: fmtRate,
  celsius: fmtCelsius,
  number: fmtNumber,
};

/** Rebuilds the charts for the chosen ids and the metrics the device has. */
function buildCharts() {
  for (const { chart } of state.charts) chart.destroy();
  const container = $("device-charts");
  container.replaceChildren();
  const specs = chartsFor(state.chartIds, state.names);
  state.charts = specs.map((spec) => ({
    spec,
    chart: new TimeChart(container, {
      id: spec.id,
      key: spec.key,
      title: spec.title,
      format: FORMATS[spec.unit] || fmtNumber,
      yMax: spec.yMax,
      syncKey: "device",
      onZoom: zoomTo,
      onReset: resetZoom,
    }),
  }));
  $("charts-empty").hidden = state.charts.length > 0;
}

/** Fetches every chart's series for the range shown, in one request. */
async function loadCharts() {
  const seq = ++state.fetchSeq;
  const window = currentWindow();
  renderRange(window);
  const metrics = state.charts.flatMap(({ spec }) => spec.series.map((s) => s.metric));
  const body = document.body;
  if (!metrics.length) {
    body.dataset.loading = "false";
    body.dataset.loaded = String(seq);
    return;
  }
  body.dataset.loading = "true";
  try {
    const histories = await fetchHistories(metrics, window);
    if (seq !== state.fetchSeq) return;
    let i = 0;
    for (const { spec, chart } of state.charts) {
      const mine = spec.series.map((s) => {
        const h = histories[i++];
        if (!h || !Array.isArray(h.points)) return { tier: h?.tier, points: [] };
        return {
          tier: h.tier,
          points: s.scale === 1 ? h.points : h.points.map((p) => (Array.isArray(p) ? [p[0], ...p.slice(1).map((v) => (typeof v === "number" ? v * s.scale : v))] : p)),
        };
      });
      chart.setHistories(mine, spec.series.map((s) => s.label), window);
    }
    // A report that came while the answer was on its way.
    if (state.summary) appendLive(state.summary);
    showError("");
  } catch (error) {
    if (seq === state.fetchSeq) showError(`Could not load the history: ${error?.message || error}`);
  } finally {
    if (seq === state.fetchSeq) {
      body.dataset.loading = "false";
      body.dataset.loaded = String(seq);
    }
  }
}

function renderRange(window) {
  for (const button of document.querySelectorAll("[data-range]")) {
    button.setAttribute("aria-pressed", String(button.dataset.range === state.range));
  }
  const fromInput = $("range-from");
  const toInput = $("range-to");
  fromInput.value = localInput(window.from);
  toInput.value = localInput(window.to);
  const live = $("live-toggle");
  live.disabled = !LIVE_RANGES.has(state.range);
  live.checked = state.live;
  $("reset-zoom").hidden = state.zoomedFrom === null;
  const label =
    state.range === "custom"
      ? `${new Date(window.from * 1000).toLocaleString()} – ${new Date(window.to * 1000).toLocaleString()}`
      : `Last ${RANGE_NAMES[state.range]}${state.live ? ", live" : ""}`;
  $("range-label").textContent = label;
  renderExportLinks(window);
}

/** The export links, for `window`. */
function renderExportLinks(window) {
  for (const format of ["csv", "json"]) {
    const q = new URLSearchParams({ format, from: String(window.from), to: String(window.to) });
    const link = $(`export-${format}`);
    link.href = `${devicePath()}/export?${q}`;
    link.download = `${state.id}-${window.from}-${window.to}.${format}`;
  }
}

function setRange(range) {
  state.range = range;
  state.zoomedFrom = null;
  state.live = range === "1h";
  writeUrl();
  loadCharts();
}

/** A drag on a chart: show that span, at the finer resolution it allows. */
function zoomTo(from, to) {
  if (state.zoomedFrom === null) state.zoomedFrom = state.range === "custom" ? { from: state.from, to: state.to } : state.range;
  state.range = "custom";
  state.from = Math.floor(from);
  state.to = Math.max(Math.ceil(to), Math.floor(from) + 1);
  state.live = false;
  writeUrl();
  loadCharts();
}

function resetZoom() {
  const back = state.zoomedFrom;
  if (back === null) return;
  state.zoomedFrom = null;
  if (typeof back === "string") {
    state.range = back;
    state.live = back === "1h";
  } else {
    state.range = "custom";
    state.from = back.from;
    state.to = back.to;
  }
  writeUrl();
  loadCharts();
}

function applyCustomRange(event) {
  event.preventDefault();
  const from = fromLocalInput($("range-from").value);
  const to = fromLocalInput($("range-to").value);
  if (from === null || to === null || to <= from) {
    showError("Choose a start before the end.");
    return;
  }
  state.range = "custom";
  state.from = from;
  state.to = to;
  state.zoomedFrom = null;
  state.live = false;
  writeUrl();
  loadCharts();
}

// ---------- live mode ----------

function onDevice(summary) {
  if (!summary || summary.device_id !== state.id) return;
  const previous = state.summary;
  state.summary = summary;
  renderSummary();
  if (previous && previous.last_seen === summary.last_seen) return; // a status change
  appendLive(summary);
}

/** Live mode: the report `summary` carries goes onto every chart. */
function appendLive(summary) {
  if (!state.live || state.range === "custom") return;
  const at = parseTime(summary.last_seen);
  if (at === null) return;
  const seconds = at / 1000;
  const values = new Map(reportMetrics(summary));
  const to = Math.max(nowSeconds(), Math.ceil(seconds));
  const window = { from: to - RANGES[state.range], to };
  for (const { spec, chart } of state.charts) {
    // A point the chart holds already is left alone.
    chart.append(
      seconds,
      spec.series.map((s) => (values.has(s.metric) ? values.get(s.metric) * s.scale : null)),
      window,
    );
  }
}

/** The device's firing alerts (device-alerts.js), once the page shows the device. */
let deviceAlerts = null;

/** Whether the live stream broke since the charts were last fetched. */
let streamBroken = false;

function startLive() {
  openLive(`api/v1/live?device=${encodeURIComponent(state.id)}`, {
    snapshot(list) {
      const mine = Array.isArray(list) ? list.find((d) => d && d.device_id === state.id) : null;
      if (mine) onDevice(mine);
      else if (Array.isArray(list) && state.summary) showError("This device is no longer on the server.");
    },
    device(d) {
      onDevice(d);
      if (deviceAlerts) deviceAlerts.refresh();
    },
    deleted(id) {
      if (id === state.id) showError("This device was deleted.");
    },
    state(s) {
      setStale(s && !s.ok ? s.staleSince : null);
      // Back after a break: what came meanwhile is only in the store.
      if (s && !s.ok) streamBroken = true;
      else if (s && s.ok && streamBroken) {
        streamBroken = false;
        if (state.live) loadCharts();
      }
    },
  });
}

// ---------- customising ----------

/** The Customize dialog's list, from `ids` (shown ones first, in order). */
function renderCustomizeList(ids) {
  const list = $("customize-list");
  const order = [...ids, ...CHART_IDS.filter((id) => !ids.includes(id))];
  const items = order.map((id) => {
    const li = document.createElement("li");
    li.dataset.chartId = id;
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = ids.includes(id);
    box.name = id;
    label.append(box, document.createTextNode(` ${CHART_NAMES[id]}`));
    const up = document.createElement("button");
    up.type = "button";
    up.className = "move-up";
    up.textContent = "↑";
    up.setAttribute("aria-label", `Move ${CHART_NAMES[id]} up`);
    const down = document.createElement("button");
    down.type = "button";
    down.className = "move-down";
    down.textContent = "↓";
    down.setAttribute("aria-label", `Move ${CHART_NAMES[id]} down`);
    li.append(label, up, down);
    return li;
  });
  list.replaceChildren(...items);
}

function moveItem(event) {
  const button = event.target.closest("button");
  if (!button) return;
  const li = button.closest("li");
  if (button.classList.contains("move-up") && li.previousElementSibling) {
    li.previousElementSibling.before(li);
  } else if (button.classList.contains("move-down") && li.nextElementSibling) {
    li.nextElementSibling.after(li);
  }
  button.focus();
}

async function saveCustomize(event) {
  event.preventDefault();
  const ids = [...$("customize-list").querySelectorAll("li")]
    .filter((li) => li.querySelector("input").checked)
    .map((li) => li.dataset.chartId);
  const message = $("customize-message");
  message.textContent = "Saving…";
  try {
    // Merged into the saved object: the other choices stay as they are.
    await savePrefs({ device_charts: ids });
    message.textContent = "";
    $("customize-dialog").close();
  } catch (error) {
    message.textContent = `Not saved: ${error?.message || error}. The choice holds on this page only.`;
  }
  state.chartIds = ids;
  buildCharts();
  loadCharts();
}

// ---------- start ----------

function wireControls() {
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => setRange(button.dataset.range));
  }
  $("range-form").addEventListener("submit", applyCustomRange);
  $("live-toggle").addEventListener("change", (e) => {
    state.live = e.target.checked && LIVE_RANGES.has(state.range);
    writeUrl();
    loadCharts();
  });
  $("reset-zoom").addEventListener("click", resetZoom);
  // A preset range moves on with time: the link takes the window of the
  // moment it is followed.
  for (const format of ["csv", "json"]) {
    $(`export-${format}`).addEventListener("click", () => renderExportLinks(currentWindow()));
  }
  $("customize-open").addEventListener("click", () => {
    renderCustomizeList(state.chartIds);
    $("customize-message").textContent = "";
    $("customize-dialog").showModal();
  });
  $("customize-list").addEventListener("click", moveItem);
  $("customize-form").addEventListener("submit", saveCustomize);
  $("customize-cancel").addEventListener("click", () => $("customize-dialog").close());
  // "Last seen 12 s ago" stays true between reports.
  setInterval(() => {
    const s = state.summary;
    if (s) setTime($("device-last-seen"), s.received_at ?? s.last_seen, true);
  }, 1000);
}

async function main() {
  readUrl();
  let prefs = null;
  try {
    const shell = await initShell({ page: "device" });
    prefs = shell?.prefs ?? null;
  } catch {
    // The page works without the shell's extras.
  }
  if (!state.id) {
    showMissing("No device was named: open a device from the fleet view, or add ?id=DEVICE to the address.");
    return;
  }
  $("device-name").textContent = state.id;
  document.title = `${state.id} · Tailmon`;
  if (!DEVICE_ID.test(state.id)) {
    showMissing(`"${state.id}" is not a device id: ids are 1 to 128 letters, digits, '.', '_', '-' or ':'.`);
    return;
  }
  state.chartIds = chosenCharts(prefs);
  let names;
  try {
    names = await fetchMetricNames();
  } catch (error) {
    $("device-loading").textContent = `Could not load the device: ${error?.message || error}`;
    return;
  }
  if (names === null) {
    showMissing(`No device "${state.id}" has reported to this server (or it was deleted).`);
    return;
  }
  state.names = names;
  $("device-loading").hidden = true;
  $("device-view").hidden = false;
  wireControls();
  buildCharts();
  writeUrl();
  deviceAlerts = startDeviceAlerts(state.id);
  try {
    state.summary = await fetchSummary();
    renderSummary();
  } catch {
    // The live stream's snapshot fills it in.
  }
  await loadCharts();
  startLive();
}

main();
