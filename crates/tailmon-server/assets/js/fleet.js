// Tailmon dashboard: the fleet view (index.html). A card per device with
// the status the server gives (never computed here), counts per status,
// search, status filter and sort over the full list, live updates from
// api/v1/live patched into the cards in place (writes batched per animation
// frame), the metrics each card shows chosen by the user (preferences
// `fleet_metrics`), and for admins "Add agent" and device deletion.
//
// Exports: nothing; it runs on load. For tests and benchmarks it keeps
// numbers in window.tailmonFleet: {renders, lastRenderMs, firstRenderMs,
// loadedAtMs (performance.now() when the first data was drawn), flushes,
// lastFlushMs, maxFlushMs, totalFlushMs, updates (device changes drawn)}.
'use strict';

import { initShell, setStale, isAdmin } from './shell.js';
import { openLive, serverNow } from './api.js';
import { el, setText, setAttr } from './dom.js';
import {
  DASH, toNumber, nonNegative, text, isObject, clampPct, fmtPct, fmtMB, fmtBytes,
  fmtRate, fmtDuration, fmtLoad, fmtCelsius, fmtCount, parseTime, fmtAge, fmtDateTime,
} from './format.js';
import { FLEET_METRICS, fleetMetrics, savePrefs, currentPrefs } from './prefs.js';
import { startFleetAlerts } from './fleet-alerts.js';

const STATUSES = ['ok', 'warning', 'critical', 'offline'];
const STATUS_LABEL = { ok: 'OK', warning: 'Warning', critical: 'Critical', offline: 'Offline', unknown: DASH };
// Worst first: what an operator wants to see at the top.
const SEVERITY = { critical: 4, warning: 3, offline: 2, ok: 1, unknown: 0 };
const SORTS = {
  name: { label: 'Name', desc: false },
  status: { label: 'Status', desc: true },
  cpu: { label: 'CPU', desc: true },
  ram: { label: 'RAM', desc: true },
  disk: { label: 'Disk', desc: true },
  last_seen: { label: 'Last seen', desc: true },
};
const CACHE_KEY = 'tailmon-last-devices';
const CACHE_EVERY_MS = 30000;
const CACHE_MAX_CHARS = 2000000;

const stats = (window.tailmonFleet = {
  renders: 0, firstRenderMs: null, lastRenderMs: null, loadedAtMs: null, flushes: 0, lastFlushMs: null,
  maxFlushMs: 0, totalFlushMs: 0, updates: 0,
});

const els = {};
const devices = new Map(); // id -> { raw, view, card }
const dirty = new Set(); // ids whose card needs patching
let metrics = fleetMetrics({});
let session = null;
let query = '';
let filter = new Set(); // empty: every status
let sortKey = 'name';
let sortDesc = false;
let orderDirty = true;
let scheduled = false;
let loaded = false;
let cachedAt = 0;
let fleetAlerts = null; // the firing-alerts panel and card marks (fleet-alerts.js)

// ---------- normalising one DeviceSummary ----------

function ramPercent(raw) {
  const used = nonNegative(raw.ram_used_mb);
  const total = nonNegative(raw.ram_total_mb);
  if (used === null || total === null || total <= 0) return null;
  const p = (used / total) * 100;
  return Number.isFinite(p) ? p : null;
}

function fullestDisk(disks) {
  if (!Array.isArray(disks)) return null;
  let best = null;
  for (const d of disks) {
    if (!isObject(d)) continue;
    const total = nonNegative(d.total_bytes);
    const used = nonNegative(d.used_bytes);
    const avail = nonNegative(d.available_bytes);
    if (total === null || used === null || total <= 0 || used > total) continue;
    // As df: used of what an unprivileged user can have, when known.
    const room = avail !== null && used + avail > 0 ? used + avail : total;
    const pct = (used / room) * 100;
    if (!Number.isFinite(pct)) continue;
    if (best === null || pct > best.pct) best = { mount: text(d.mount_point), used, total, pct };
  }
  return best;
}

function swapInfo(raw) {
  const total = nonNegative(raw.swap_total_mb);
  const used = nonNegative(raw.swap_used_mb);
  if (total === 0) return { text: 'no swap', pct: null };
  if (total === null) return { text: DASH, pct: null };
  const pct = used !== null && used <= total ? (used / total) * 100 : null;
  return { text: fmtMB(used) + ' / ' + fmtMB(total), pct };
}

function loadText(l) {
  if (!isObject(l)) return DASH;
  const parts = [fmtLoad(l.one), fmtLoad(l.five), fmtLoad(l.fifteen)];
  return parts.every((p) => p === DASH) ? DASH : parts.join(' \u00b7 ');
}

function netText(nets) {
  if (!Array.isArray(nets)) return DASH;
  let rx = null;
  let tx = null;
  for (const n of nets) {
    if (!isObject(n)) continue;
    const r = nonNegative(n.rx_bytes_per_sec);
    const t = nonNegative(n.tx_bytes_per_sec);
    if (r !== null) rx = (rx || 0) + r;
    if (t !== null) tx = (tx || 0) + t;
  }
  if (rx === null && tx === null) return DASH;
  return '\u2193 ' + fmtRate(rx) + ' \u2191 ' + fmtRate(tx);
}

function hottest(temps) {
  if (!Array.isArray(temps)) return null;
  let best = null;
  for (const t of temps) {
    if (!isObject(t)) continue;
    const c = toNumber(t.celsius);
    if (c !== null && (best === null || c > best)) best = c;
  }
  return best;
}

function safe(fn, fallback) {
  try {
    return fn();
  } catch (err) {
    return fallback;
  }
}

function normalise(raw) {
  const status = STATUSES.includes(raw.status) ? raw.status : 'unknown';
  let seen = parseTime(raw.received_at);
  if (seen === null) seen = parseTime(raw.last_seen);
  const cpu = toNumber(raw.cpu_usage);
  const disk = safe(() => fullestDisk(raw.disks), null);
  return {
    status,
    os: text(raw.os_info),
    cpu: cpu === null || cpu < 0 || cpu > 100.5 ? null : Math.min(cpu, 100),
    ramUsed: nonNegative(raw.ram_used_mb),
    ramTotal: nonNegative(raw.ram_total_mb),
    ram: ramPercent(raw),
    disk,
    swap: safe(() => swapInfo(raw), { text: DASH, pct: null }),
    load: safe(() => loadText(raw.load_avg), DASH),
    net: safe(() => netText(raw.networks), DASH),
    temp: safe(() => hottest(raw.temperatures), null),
    uptime: nonNegative(raw.uptime_seconds),
    procs: nonNegative(raw.process_count),
    seen,
    offlineSince: parseTime(raw.offline_since),
    conflictAt: parseTime(raw.id_conflict_at),
    clockSkew: skewSeconds(raw.clock_skew_seconds),
  };
}

// Whole seconds a device's clock runs ahead (negative: behind), or null.
function skewSeconds(value) {
  const n = toNumber(value);
  return n === null || n === 0 ? null : Math.round(n);
}

// "clock 612 s ahead", "clock 30 s behind".
function clockSkewText(seconds) {
  return 'clock ' + Math.abs(seconds) + ' s ' + (seconds > 0 ? 'ahead' : 'behind');
}

// ---------- building and patching a card ----------

function deviceHref(id) {
  return 'device.html?id=' + encodeURIComponent(id);
}

function buildBarMetric(key, label) {
  const wrap = el('div', 'metric metric-' + key);
  const head = el('div', 'metric-head');
  const name = el('span', 'metric-label', label);
  const sub = el('span', 'metric-sub');
  const values = el('span', 'metric-values');
  const value = el('span', 'metric-value ' + key + '-value', DASH);
  const percent = el('span', 'metric-percent ' + key + '-percent', DASH);
  values.append(value, percent);
  head.append(name, sub, values);
  const bar = el('div', 'bar');
  bar.setAttribute('role', 'progressbar');
  bar.setAttribute('aria-label', label);
  bar.setAttribute('aria-valuemin', '0');
  bar.setAttribute('aria-valuemax', '100');
  const fill = el('div', 'bar-fill');
  bar.append(fill);
  wrap.append(head, bar);
  return { key, kind: 'bar', wrap, value, percent, sub, bar, fill };
}

function buildStatMetric(key, label) {
  const wrap = el('div', 'stat stat-' + key);
  const value = el('span', 'stat-value ' + key + '-value', DASH);
  wrap.append(el('span', 'stat-label', label), value);
  return { key, kind: 'stat', wrap, value };
}

const BAR_METRICS = new Set(['cpu', 'ram', 'disk', 'swap']);

// The chosen metrics, in the user's order.
function buildMetrics(card) {
  const body = el('div', 'card-body');
  card.metrics = [];
  for (const key of metrics) {
    const label = (FLEET_METRICS.find((m) => m.key === key) || { label: key }).label;
    const m = BAR_METRICS.has(key) ? buildBarMetric(key, label) : buildStatMetric(key, label);
    card.metrics.push(m);
    body.append(m.wrap);
  }
  body.hidden = card.metrics.length === 0;
  if (card.body) card.body.replaceWith(body);
  card.body = body;
}

function buildCard(id) {
  const root = el('article', 'device-card status-unknown');
  root.dataset.deviceId = id;
  const head = el('header', 'card-head');
  const title = el('h2', 'device-id');
  const link = el('a', 'card-link', id);
  link.href = deviceHref(id);
  link.title = id;
  title.append(link);
  const badge = el('span', 'status-badge', DASH);
  head.append(title, badge);
  const card = { root, link, badge, metrics: [], body: null };
  if (isAdmin(session)) {
    const menu = el('button', 'card-menu', '\u22ee');
    menu.type = 'button';
    menu.setAttribute('aria-label', 'Actions for ' + id);
    menu.setAttribute('aria-haspopup', 'menu');
    menu.setAttribute('aria-expanded', 'false');
    menu.title = 'Actions';
    head.append(menu);
  }
  const os = el('p', 'os-info', DASH);
  const offline = el('p', 'offline-since');
  offline.hidden = true;
  const offlineTime = el('time', null, DASH);
  offline.append('Offline since ', offlineTime);
  const conflict = el('p', 'id-conflict');
  conflict.hidden = true;
  conflict.textContent = 'Two agents report under this name';
  const skew = el('p', 'clock-skew');
  skew.hidden = true;
  const foot = el('footer', 'card-foot');
  const seen = el('time', 'last-seen', DASH);
  foot.append(el('span', 'last-seen-label', 'Last seen'), seen);
  Object.assign(card, { os, offline, offlineTime, conflict, skew, seen });
  buildMetrics(card);
  root.append(head, os, offline, conflict, skew, card.body, foot);
  return card;
}

function setBar(m, pct) {
  const width = clampPct(pct);
  m.fill.style.width = width.toFixed(1) + '%';
  setAttr(m.bar, 'aria-valuenow', pct === null ? null : width.toFixed(1));
  m.wrap.classList.toggle('is-empty', pct === null);
}

function patchMetric(m, v) {
  switch (m.key) {
    case 'cpu':
      setText(m.value, '');
      setText(m.percent, fmtPct(v.cpu));
      setBar(m, v.cpu);
      break;
    case 'ram':
      setText(m.value, fmtMB(v.ramUsed) + ' / ' + fmtMB(v.ramTotal));
      setText(m.percent, fmtPct(v.ram));
      setBar(m, v.ram);
      break;
    case 'disk':
      setText(m.sub, v.disk && v.disk.mount ? v.disk.mount : '');
      setText(m.value, v.disk ? fmtBytes(v.disk.used) + ' / ' + fmtBytes(v.disk.total) : '');
      setText(m.percent, fmtPct(v.disk ? v.disk.pct : null));
      setBar(m, v.disk ? v.disk.pct : null);
      break;
    case 'swap':
      setText(m.value, v.swap.text);
      setText(m.percent, v.swap.pct === null ? '' : fmtPct(v.swap.pct));
      setBar(m, v.swap.pct);
      break;
    case 'load':
      setText(m.value, v.load);
      break;
    case 'network':
      setText(m.value, v.net);
      break;
    case 'temperature':
      setText(m.value, fmtCelsius(v.temp));
      break;
    case 'uptime':
      setText(m.value, fmtDuration(v.uptime));
      break;
    case 'processes':
      setText(m.value, fmtCount(v.procs));
      break;
    default:
      setText(m.value, DASH);
  }
}

function setStatusClass(root, status) {
  for (const s of STATUSES.concat(['unknown'])) root.classList.toggle('status-' + s, s === status);
  root.dataset.status = status;
}

function isoOf(ms) {
  return ms === null ? null : new Date(ms).toISOString();
}

function patchAge(card, v, now) {
  setText(card.seen, fmtAge(v.seen, now === undefined ? serverNow() : now));
  // The absolute time only when it changed (toLocaleString is not cheap).
  if (card.seenMs !== v.seen) {
    card.seenMs = v.seen;
    setAttr(card.seen, 'datetime', isoOf(v.seen));
    setAttr(card.seen, 'title', v.seen === null ? null : fmtDateTime(v.seen));
  }
}

function patchCard(card, v) {
  setStatusClass(card.root, v.status);
  setText(card.badge, STATUS_LABEL[v.status]);
  setText(card.os, v.os === null || v.os === '' ? 'Unknown OS' : v.os);
  card.os.classList.toggle('is-unknown', v.os === null || v.os === '');
  const offline = v.status === 'offline';
  card.offline.hidden = !offline;
  if (offline) {
    const since = v.offlineSince !== null ? v.offlineSince : v.seen;
    if (card.offlineMs !== since) {
      card.offlineMs = since;
      setText(card.offlineTime, fmtDateTime(since));
      setAttr(card.offlineTime, 'datetime', isoOf(since));
    }
  }
  card.conflict.hidden = v.conflictAt === null;
  if (v.conflictAt !== null) {
    setAttr(card.conflict, 'title', 'Last seen ' + fmtDateTime(v.conflictAt) +
      ': two agents send reports with this device id; give one another id (TAILMON_DEVICE_ID).');
  }
  card.skew.hidden = v.clockSkew === null;
  if (v.clockSkew !== null) {
    setText(card.skew, clockSkewText(v.clockSkew));
    setAttr(card.skew, 'title', 'Its reports are stored at the time the server received them: ' +
      'set its clock right (NTP).');
  }
  for (const m of card.metrics) patchMetric(m, v);
  patchAge(card, v);
  card.root.classList.remove('is-broken');
}

function breakCard(card) {
  setStatusClass(card.root, 'unknown');
  setText(card.badge, DASH);
  setText(card.os, 'Could not display this device\u2019s data');
  card.root.classList.add('is-broken');
}

// ---------- the list: data in, cards out ----------

function put(raw) {
  if (!isObject(raw)) return;
  const id = text(raw.device_id);
  if (id === null || id === '') return;
  let entry = devices.get(id);
  if (!entry) {
    entry = { id, raw: null, view: null, card: null };
    devices.set(id, entry);
    orderDirty = true;
  }
  // Read in the next frame: of several reports in one frame only the
  // last is worth the work.
  entry.raw = raw;
  dirty.add(id);
}

// The entry's view from its latest raw report; notes when the order or
// the filter may have changed.
function refreshView(entry) {
  try {
    const view = normalise(entry.raw);
    if (entry.view === null || sortValue(entry.view) !== sortValue(view) || entry.view.status !== view.status) {
      orderDirty = true;
    }
    entry.view = view;
  } catch (err) {
    entry.view = null;
  }
}

function remove(id) {
  const entry = devices.get(id);
  if (!entry) return;
  if (entry.card) entry.card.root.remove();
  devices.delete(id);
  dirty.delete(id);
  orderDirty = true;
}

function onSnapshot(list) {
  if (!Array.isArray(list)) return;
  const seen = new Set();
  for (const raw of list) {
    try {
      put(raw);
      if (isObject(raw) && typeof raw.device_id === 'string') seen.add(raw.device_id);
    } catch (err) {
      console.warn('tailmon: skipping a malformed device', err);
    }
  }
  for (const id of Array.from(devices.keys())) if (!seen.has(id)) remove(id);
  keepCache(list);
  schedule();
}

function sortValue(v) {
  if (!v) return null;
  switch (sortKey) {
    case 'status': return SEVERITY[v.status] || 0;
    case 'cpu': return v.cpu;
    case 'ram': return v.ram;
    case 'disk': return v.disk ? v.disk.pct : null;
    case 'last_seen': return v.seen;
    default: return null;
  }
}

function compare(a, b) {
  if (sortKey !== 'name') {
    const x = sortValue(a.view);
    const y = sortValue(b.view);
    // Missing values last, whatever the order.
    if (x === null && y !== null) return 1;
    if (y === null && x !== null) return -1;
    if (x !== null && y !== null && x !== y) return sortDesc ? y - x : x - y;
  }
  const byName = a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  return sortKey === 'name' && sortDesc ? -byName : byName;
}

function matches(entry) {
  if (query !== '' && !entry.id.toLowerCase().includes(query)) return false;
  if (filter.size > 0) {
    const status = entry.view ? entry.view.status : 'unknown';
    if (!filter.has(status)) return false;
  }
  return true;
}

function schedule() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(flush);
  // Hidden tabs get no animation frames: a timer catches up (throttled there).
  setTimeout(flush, 500);
}

function flush() {
  if (!scheduled) return;
  scheduled = false;
  const t0 = performance.now();
  const first = !loaded;
  let created = null;
  stats.updates += dirty.size;
  for (const id of dirty) {
    const entry = devices.get(id);
    if (!entry) continue;
    refreshView(entry);
    if (!entry.card) {
      entry.card = buildCard(id);
      if (created === null) created = document.createDocumentFragment();
      created.append(entry.card.root);
    }
    try {
      if (entry.view === null) throw new Error('unreadable');
      patchCard(entry.card, entry.view);
    } catch (err) {
      breakCard(entry.card);
    }
  }
  const changed = dirty.size > 0;
  dirty.clear();
  if (changed) markUpdated();
  if (created !== null) {
    els.devices.append(created);
    orderDirty = true;
    if (fleetAlerts) fleetAlerts.markCards();
  }
  if (orderDirty) placeCards();
  renderSummary();
  loaded = true;
  document.body.dataset.loaded = 'true';
  els.loading.hidden = true;
  const ms = performance.now() - t0;
  stats.flushes += 1;
  stats.lastFlushMs = ms;
  stats.maxFlushMs = Math.max(stats.maxFlushMs, ms);
  stats.totalFlushMs += ms;
  if (first) {
    stats.firstRenderMs = ms;
    stats.loadedAtMs = performance.now();
  }
}

// Orders and filters the cards, moving only those out of place.
function placeCards() {
  orderDirty = false;
  const t0 = performance.now();
  const entries = Array.from(devices.values()).sort(compare);
  const container = els.devices;
  let at = container.firstElementChild;
  let shown = 0;
  for (const entry of entries) {
    if (!entry.card) continue;
    const root = entry.card.root;
    const show = matches(entry);
    if (root.hidden === show) root.hidden = !show;
    if (show) shown += 1;
    if (root === at) {
      at = at.nextElementSibling;
    } else {
      container.insertBefore(root, at);
    }
  }
  els.noMatch.hidden = shown > 0 || devices.size === 0;
  stats.renders += 1;
  stats.lastRenderMs = performance.now() - t0;
  document.body.dataset.shown = String(shown);
}

// "Updated 10:42:03": when the page last drew news from the server.
function markUpdated() {
  const now = new Date();
  setText(els.updated, now.toLocaleTimeString());
  els.updated.setAttribute('datetime', now.toISOString());
}

function renderSummary() {
  const counts = { ok: 0, warning: 0, critical: 0, offline: 0 };
  for (const entry of devices.values()) {
    const s = entry.view ? entry.view.status : 'unknown';
    if (s in counts) counts[s] += 1;
  }
  const total = devices.size;
  const s = els.summary;
  setAttr(s, 'data-total', total);
  for (const k of STATUSES) {
    setAttr(s, 'data-' + k, counts[k]);
    setText(els.counts[k], counts[k]);
  }
  setText(els.counts.total, total);
  setText(els.totalLabel, total === 1 ? 'device' : 'devices');
  s.classList.toggle('has-warning', counts.warning > 0);
  s.classList.toggle('has-critical', counts.critical > 0);
  s.classList.toggle('has-offline', counts.offline > 0);
  els.empty.hidden = total !== 0;
  els.toolbar.hidden = total === 0;
}

function refreshAges() {
  if (document.hidden) return;
  const now = serverNow();
  for (const entry of devices.values()) {
    if (entry.card && entry.view && !entry.card.root.hidden) patchAge(entry.card, entry.view, now);
  }
  if (sortKey === 'last_seen') {
    orderDirty = true;
    schedule();
  }
}

// ---------- offline copy ----------

function keepCache(list) {
  const now = Date.now();
  if (now - cachedAt < CACHE_EVERY_MS) return;
  cachedAt = now;
  try {
    const json = JSON.stringify({ at: now, list });
    if (json.length <= CACHE_MAX_CHARS) localStorage.setItem(CACHE_KEY, json);
  } catch (err) {
    /* no room: nothing kept */
  }
}

function showCache() {
  try {
    const kept = JSON.parse(localStorage.getItem(CACHE_KEY) || 'null');
    if (!kept || !Array.isArray(kept.list) || typeof kept.at !== 'number') return null;
    cachedAt = Date.now();
    onSnapshot(kept.list);
    return kept.at;
  } catch (err) {
    return null;
  }
}

// ---------- controls ----------

function readUrlState() {
  const p = new URLSearchParams(location.search);
  query = (p.get('q') || '').toLowerCase();
  filter = new Set((p.get('status') || '').split(',').filter((s) => STATUSES.includes(s)));
  const sort = p.get('sort');
  if (sort && sort in SORTS) sortKey = sort;
  sortDesc = p.has('order') ? p.get('order') === 'desc' : SORTS[sortKey].desc;
}

function writeUrlState() {
  const p = new URLSearchParams();
  if (query) p.set('q', query);
  if (filter.size) p.set('status', Array.from(filter).join(','));
  if (sortKey !== 'name') p.set('sort', sortKey);
  if (sortDesc !== SORTS[sortKey].desc) p.set('order', sortDesc ? 'desc' : 'asc');
  const qs = p.toString();
  try {
    history.replaceState(null, '', qs ? '?' + qs : location.pathname);
  } catch (err) {
    /* cosmetic only */
  }
}

function syncControls() {
  els.search.value = query;
  els.sort.value = sortKey;
  setText(els.order, sortDesc ? '\u2193' : '\u2191');
  els.order.setAttribute('aria-label', sortDesc ? 'Descending order; switch to ascending' : 'Ascending order; switch to descending');
  els.order.title = sortDesc ? 'Descending' : 'Ascending';
  for (const b of els.filterButtons) {
    const f = b.dataset.filter;
    b.setAttribute('aria-pressed', String(f === 'all' ? filter.size === 0 : filter.has(f)));
  }
}

function changed() {
  writeUrlState();
  syncControls();
  orderDirty = true;
  schedule();
}

function buildToolbar() {
  const bar = el('div', 'fleet-toolbar');
  bar.id = 'fleet-toolbar';
  const searchWrap = el('div', 'toolbar-field');
  const search = el('input');
  search.type = 'search';
  search.id = 'fleet-search';
  search.placeholder = 'Search by name';
  search.autocomplete = 'off';
  const searchLabel = el('label', 'visually-hidden', 'Search devices by name');
  searchLabel.htmlFor = search.id;
  searchWrap.append(searchLabel, search);
  search.addEventListener('input', () => {
    query = search.value.trim().toLowerCase();
    changed();
  });

  const sortWrap = el('div', 'toolbar-field');
  const sortLabel = el('label', null, 'Sort');
  const sort = el('select');
  sort.id = 'fleet-sort';
  sortLabel.htmlFor = sort.id;
  for (const [key, def] of Object.entries(SORTS)) {
    const o = el('option', null, def.label);
    o.value = key;
    sort.append(o);
  }
  sort.addEventListener('change', () => {
    sortKey = sort.value in SORTS ? sort.value : 'name';
    sortDesc = SORTS[sortKey].desc;
    changed();
  });
  const order = el('button', 'button order-button');
  order.type = 'button';
  order.id = 'fleet-order';
  order.addEventListener('click', () => {
    sortDesc = !sortDesc;
    changed();
  });
  sortWrap.append(sortLabel, sort, order);

  const customize = el('button', 'button', 'Customize');
  customize.type = 'button';
  customize.id = 'customize-open';
  customize.addEventListener('click', openCustomize);
  bar.append(searchWrap, sortWrap, customize);
  if (isAdmin(session) && session.auth === 'session') {
    const add = el('button', 'button primary', 'Add agent');
    add.type = 'button';
    add.id = 'add-agent-open';
    add.addEventListener('click', async () => {
      const admin = await import('./admin.js');
      admin.openAddAgent();
    });
    bar.append(add);
  }
  Object.assign(els, { search, sort, order, toolbar: bar });
  return bar;
}

function wireSummary() {
  els.filterButtons = Array.from(els.summary.querySelectorAll('[data-filter]'));
  for (const b of els.filterButtons) {
    b.addEventListener('click', () => {
      const f = b.dataset.filter;
      if (f === 'all') filter.clear();
      else if (filter.has(f)) filter.delete(f);
      else filter.add(f);
      changed();
    });
  }
}

// ---------- customising the cards ----------

let customizeDialog = null;

function openCustomize() {
  if (!customizeDialog) customizeDialog = buildCustomize();
  customizeDialog.fill();
  customizeDialog.dialog.showModal();
}

function buildCustomize() {
  const dialog = el('dialog', 'dialog');
  dialog.id = 'customize-dialog';
  dialog.setAttribute('aria-labelledby', 'customize-title');
  const form = el('form', 'dialog-form');
  const title = el('h2', null, 'Customize the cards');
  title.id = 'customize-title';
  const hint = el('p', 'hint', 'Choose what each card shows, and in which order. Saved for your account.');
  const list = el('ol', 'choice-list');
  list.id = 'customize-list';
  const error = el('p', 'form-error');
  error.hidden = true;
  const actions = el('div', 'dialog-actions');
  const reset = el('button', 'button', 'Defaults');
  reset.type = 'button';
  const cancel = el('button', 'button', 'Cancel');
  cancel.type = 'button';
  const save = el('button', 'button primary', 'Save');
  save.type = 'submit';
  save.id = 'customize-save';
  actions.append(reset, cancel, save);
  form.append(title, hint, list, error, actions);
  dialog.append(form);
  document.body.append(dialog);

  let order = [];
  let chosen = new Set();

  function move(key, by) {
    const i = order.indexOf(key);
    const j = i + by;
    if (i < 0 || j < 0 || j >= order.length) return;
    order.splice(i, 1);
    order.splice(j, 0, key);
    draw(key, by < 0 ? 'up' : 'down');
  }

  function draw(focusKey, focusWhich) {
    list.textContent = '';
    order.forEach((key, i) => {
      const label = (FLEET_METRICS.find((m) => m.key === key) || { label: key }).label;
      const item = el('li', 'choice');
      const box = el('input');
      box.type = 'checkbox';
      box.id = 'choice-' + key;
      box.value = key;
      box.checked = chosen.has(key);
      box.addEventListener('change', () => {
        if (box.checked) chosen.add(key);
        else chosen.delete(key);
      });
      const lab = el('label', null, label);
      lab.htmlFor = box.id;
      const up = el('button', 'button subtle', '\u2191');
      up.type = 'button';
      up.setAttribute('aria-label', 'Move ' + label + ' up');
      up.disabled = i === 0;
      up.addEventListener('click', () => move(key, -1));
      const down = el('button', 'button subtle', '\u2193');
      down.type = 'button';
      down.setAttribute('aria-label', 'Move ' + label + ' down');
      down.disabled = i === order.length - 1;
      down.addEventListener('click', () => move(key, 1));
      item.append(box, lab, up, down);
      list.append(item);
      if (key === focusKey) {
        const target = focusWhich === 'up' && !up.disabled ? up : !down.disabled ? down : up;
        requestAnimationFrame(() => target.focus());
      }
    });
  }

  function fill() {
    const current = metrics.slice();
    chosen = new Set(current);
    order = current.concat(FLEET_METRICS.map((m) => m.key).filter((k) => !current.includes(k)));
    error.hidden = true;
    draw();
  }

  reset.addEventListener('click', () => {
    chosen = new Set(['cpu', 'ram', 'disk']);
    order = FLEET_METRICS.map((m) => m.key);
    draw();
  });
  cancel.addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const next = order.filter((k) => chosen.has(k));
    save.disabled = true;
    error.hidden = true;
    try {
      await savePrefs({ fleet_metrics: next });
      setMetrics(fleetMetrics(currentPrefs()));
      dialog.close();
    } catch (err) {
      error.textContent = err && err.message ? err.message : 'Not saved.';
      error.hidden = false;
    } finally {
      save.disabled = false;
    }
  });
  return { dialog, fill };
}

function setMetrics(next) {
  metrics = next;
  document.body.dataset.metrics = metrics.join(',');
  for (const entry of devices.values()) {
    if (!entry.card) continue;
    buildMetrics(entry.card);
    dirty.add(entry.id);
  }
  schedule();
}

// ---------- a card's menu (admins) ----------

let openMenu = null; // {button, list}

function closeMenu(focusButton) {
  if (!openMenu) return;
  const { button, list } = openMenu;
  openMenu = null;
  list.remove();
  button.setAttribute('aria-expanded', 'false');
  if (focusButton) button.focus();
}

function toggleMenu(button, id) {
  const wasOpen = openMenu && openMenu.button === button;
  closeMenu(false);
  if (wasOpen) return;
  const list = el('div', 'card-menu-list');
  list.setAttribute('role', 'menu');
  list.setAttribute('aria-label', 'Actions for ' + id);
  const open = el('a', 'card-menu-item', 'Open device page');
  open.href = deviceHref(id);
  open.setAttribute('role', 'menuitem');
  const del = el('button', 'card-menu-item danger', 'Delete device\u2026');
  del.type = 'button';
  del.setAttribute('role', 'menuitem');
  del.dataset.action = 'delete';
  list.append(open, del);
  list.addEventListener('keydown', (event) => {
    const items = [open, del];
    const at = items.indexOf(document.activeElement);
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const next = (at + (event.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      items[next].focus();
    }
  });
  button.after(list);
  button.setAttribute('aria-expanded', 'true');
  openMenu = { button, list };
  open.focus();
}

async function onCardClick(event) {
  const menuButton = event.target.closest('button.card-menu');
  const card = event.target.closest('article[data-device-id]');
  if (!card) return;
  const id = card.dataset.deviceId;
  if (menuButton) {
    toggleMenu(menuButton, id);
    return;
  }
  if (!event.target.closest('[data-action="delete"]')) return;
  closeMenu(false);
  const admin = await import('./admin.js');
  if (await admin.deleteDevice(id)) {
    remove(id);
    schedule();
  }
}

document.addEventListener('click', (event) => {
  if (openMenu && !openMenu.list.contains(event.target) && event.target !== openMenu.button) closeMenu(false);
});
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && openMenu) closeMenu(true);
});

// ---------- start ----------

async function init() {
  els.devices = document.getElementById('devices');
  els.summary = document.getElementById('summary');
  els.loading = document.getElementById('loading');
  els.empty = document.getElementById('empty-state');
  els.noMatch = document.getElementById('no-match');
  els.updated = document.getElementById('last-updated');
  els.totalLabel = document.getElementById('summary-total-label');
  els.counts = { total: document.getElementById('summary-total') };
  for (const k of STATUSES) els.counts[k] = document.getElementById('summary-' + k);

  try {
    if (/^https?:$/.test(location.protocol)) {
      const endpoint = new URL('./', document.baseURI).href.replace(/\/$/, '');
      document.getElementById('empty-hint-endpoint').textContent = endpoint;
      document.getElementById('empty-hint-url').hidden = false;
    }
  } catch (err) {
    /* cosmetic only */
  }

  const shell = await initShell({ page: 'fleet' });
  session = shell.session;
  metrics = fleetMetrics(shell.prefs);
  document.body.dataset.metrics = metrics.join(',');
  readUrlState();
  const toolbar = buildToolbar();
  els.summary.after(toolbar);
  fleetAlerts = startFleetAlerts(toolbar, (id) => {
    const entry = devices.get(id);
    return entry && entry.card ? entry.card.root : null;
  });
  wireSummary();
  syncControls();
  els.devices.addEventListener('click', onCardClick);
  els.emptyAdd = document.getElementById('empty-add-agent');
  if (els.emptyAdd && isAdmin(session) && session.auth === 'session') {
    els.emptyAdd.hidden = false;
    els.emptyAdd.addEventListener('click', async () => {
      const admin = await import('./admin.js');
      admin.openAddAgent();
    });
  }

  let everLive = false;
  openLive('api/v1/live', {
    snapshot: onSnapshot,
    device(d) {
      try {
        put(d);
        schedule();
        fleetAlerts.refresh();
      } catch (err) {
        console.warn('tailmon: skipping a malformed device', err);
      }
    },
    deleted(id) {
      remove(id);
      schedule();
    },
    state(s) {
      document.body.dataset.mode = s.mode;
      if (s.ok) {
        everLive = true;
        setStale(null);
        markUpdated();
        const n = Number(document.body.dataset.refreshes || '0') + 1;
        document.body.dataset.refreshes = String(n);
      } else {
        let since = s.staleSince;
        if (!everLive && devices.size === 0) {
          const kept = showCache();
          if (kept !== null) since = kept;
        }
        setStale(since);
        if (!loaded) schedule();
      }
    },
  });
  setInterval(refreshAges, 1000);
}

init();
