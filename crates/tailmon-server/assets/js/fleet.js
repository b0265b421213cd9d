// Tailmon dashboard: the fleet view (index.html). Skeleton: the former
// app.js as a module; rewritten in the next commits.
//
// Exports: nothing (it runs on load).
'use strict';

import { initShell } from './shell.js';

(function () {
  const REFRESH_MS = 3000;
  const FETCH_TIMEOUT_MS = 10000;
  const METRICS_URL = 'api/all_metrics'; // relative: works under a path prefix
  const LOGIN_URL = 'login';
  const STALE_AFTER_S = 120; // a card is dimmed when the last report is older

  const CPU_WARN = 60;
  const CPU_CRIT = 80;
  const RAM_WARN = 70;
  const RAM_CRIT = 90;
  const DISK_WARN = 80;
  const DISK_CRIT = 90;
  const MAX_TITLE_LINES = 12; // per-item detail in tooltips stays short

  const STATUS_LABEL = { ok: 'OK', warning: 'Warning', critical: 'Critical' };
  const DASH = '\u2014';

  const els = {};
  const cards = new Map(); // device_id -> { root, parts, data }
  let inFlight = false;
  let stopped = false;
  let refreshes = 0;
  let clockOffsetMs = 0; // server clock minus browser clock, from the Date header
  let timer = null;

  // ---------- value helpers ----------

  function toNumber(v) {
    if (typeof v === 'number') return Number.isFinite(v) ? v : null;
    if (typeof v === 'string' && v.trim() !== '') {
      const n = Number(v);
      return Number.isFinite(n) ? n : null;
    }
    return null;
  }

  // CPU percentage: must be finite and within 0..100 (tiny float overshoot clamped).
  function cpuPercent(v) {
    const n = toNumber(v);
    if (n === null || n < 0 || n > 100.5) return null;
    return Math.min(n, 100);
  }

  // Memory in MB: finite, non-negative, not absurd.
  function megabytes(v) {
    const n = toNumber(v);
    if (n === null || n < 0 || n > Number.MAX_SAFE_INTEGER) return null;
    return n;
  }

  function text(v) {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    return null;
  }

  function clampPct(n) {
    if (n === null || !Number.isFinite(n)) return 0;
    return Math.max(0, Math.min(100, n));
  }

  function fmtPct(n) {
    return n === null ? DASH : n.toFixed(1) + '%';
  }

  function fmtMB(mb) {
    if (mb === null) return DASH;
    if (mb >= 1024) return (mb / 1024).toFixed(1) + ' GB';
    return Math.round(mb) + ' MB';
  }

  // A finite, non-negative number (byte counts, rates, seconds), else null.
  function nonNegative(v) {
    const n = toNumber(v);
    return n === null || n < 0 ? null : n;
  }

  function isObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  }

  const BYTE_UNITS = ['KB', 'MB', 'GB', 'TB'];

  // Bytes in base 1024: "512 B", "1.5 KB", "85.0 GB", "2.0 TB" (TB is the largest unit).
  function fmtBytes(b) {
    if (b === null) return DASH;
    if (b < 1024) return Math.round(b) + ' B';
    let v = b / 1024;
    let i = 0;
    while (v >= 1024 && i < BYTE_UNITS.length - 1) {
      v /= 1024;
      i += 1;
    }
    return v.toFixed(1) + ' ' + BYTE_UNITS[i];
  }

  // A rate in bytes per second: one decimal below 100 of a unit, none above
  // ("1.2 MB/s", "300 KB/s", "0 B/s").
  function fmtRate(b) {
    if (b === null) return DASH;
    if (b < 1024) return Math.round(b) + ' B/s';
    let v = b / 1024;
    let i = 0;
    while (v >= 1024 && i < BYTE_UNITS.length - 1) {
      v /= 1024;
      i += 1;
    }
    return (v < 100 ? v.toFixed(1) : Math.round(v).toString()) + ' ' + BYTE_UNITS[i] + '/s';
  }

  // "3 d 4 h", "5 h 12 min", "12 min", "< 1 min".
  function fmtUptime(s) {
    if (s === null) return DASH;
    const total = Math.floor(s);
    const d = Math.floor(total / 86400);
    const h = Math.floor((total % 86400) / 3600);
    const m = Math.floor((total % 3600) / 60);
    if (d > 0) return d + ' d ' + h + ' h';
    if (h > 0) return h + ' h ' + m + ' min';
    if (m > 0) return m + ' min';
    return '< 1 min';
  }

  function fmtLoad(v) {
    const n = nonNegative(v);
    return n === null ? DASH : n.toFixed(2);
  }

  function fmtCelsius(c) {
    return c === null ? DASH : c.toFixed(1) + ' \u00b0C';
  }

  function level(value, warn, crit) {
    if (value === null) return 'unknown';
    if (value > crit) return 'critical';
    if (value > warn) return 'warning';
    return 'ok';
  }

  const SEVERITY = { unknown: 0, ok: 0, warning: 1, critical: 2 };

  function worst(...levels) {
    const s = Math.max(0, ...levels.map((l) => SEVERITY[l] || 0));
    return s === 2 ? 'critical' : s === 1 ? 'warning' : 'ok';
  }

  function parseTime(v) {
    if (typeof v !== 'string' || v === '') return null;
    const t = Date.parse(v);
    return Number.isFinite(t) ? t : null;
  }

  function serverNow() {
    return Date.now() + clockOffsetMs;
  }

  function relativeAge(ts) {
    if (ts === null) return { label: DASH, seconds: null };
    const s = Math.floor((serverNow() - ts) / 1000);
    let label;
    if (s < 5) label = 'just now';
    else if (s < 60) label = s + ' s ago';
    else if (s < 3600) label = Math.floor(s / 60) + ' min ago';
    else if (s < 86400) label = Math.floor(s / 3600) + ' h ago';
    else label = Math.floor(s / 86400) + ' d ago';
    return { label, seconds: s };
  }

  // Normalise one raw report into display-ready values. Never throws on odd input
  // (unless the input is truly hostile, which the per-card try/catch handles).
  function normalise(raw) {
    const cpu = cpuPercent(raw.cpu_usage);
    const used = megabytes(raw.ram_used_mb);
    const total = megabytes(raw.ram_total_mb);
    let ramPct = null;
    if (used !== null && total !== null && total > 0) {
      const p = (used / total) * 100;
      ramPct = Number.isFinite(p) ? p : null;
    }
    const cpuLevel = level(cpu, CPU_WARN, CPU_CRIT);
    const ramLevel = level(ramPct, RAM_WARN, RAM_CRIT);
    let seen = parseTime(raw.received_at);
    let seenRaw = raw.received_at;
    if (seen === null) {
      seen = parseTime(raw.last_seen);
      seenRaw = raw.last_seen;
    }
    const extras = normaliseExtras(raw);
    return {
      os: text(raw.os_info),
      cpu,
      cpuLevel,
      used,
      total,
      ramPct,
      ramLevel,
      seen,
      seenRaw: seen === null ? null : String(seenRaw),
      extras,
      status: worst(cpuLevel, ramLevel, extras.disk.level),
    };
  }

  // Fields newer agents may add. A report with none of them (an older agent)
  // renders exactly as before: the extra rows stay hidden.
  const EXTENDED_FIELDS = [
    'load_avg', 'swap_used_mb', 'swap_total_mb', 'disks', 'networks', 'disk_io',
    'temperatures', 'uptime_seconds', 'boot_time', 'process_count', 'cpu_per_core',
    'cpu_breakdown', 'top_processes', 'custom',
  ];

  function present(v) {
    return v !== undefined && v !== null;
  }

  // Runs one part's normaliser; odd input in one part never spoils the others.
  function part(fn, fallback) {
    try {
      return fn();
    } catch (err) {
      return fallback;
    }
  }

  function normaliseExtras(raw) {
    const extended = EXTENDED_FIELDS.some((k) => present(raw[k]));
    const noDisk = { pct: null, level: 'unknown', mount: null, text: DASH, title: null };
    if (!extended) {
      return { extended, disk: noDisk };
    }
    return {
      extended,
      load: part(() => loadText(raw.load_avg), DASH),
      swap: part(() => swapInfo(raw.swap_used_mb, raw.swap_total_mb), { text: DASH, pct: null, none: false }),
      disk: part(() => fullestDisk(raw.disks), noDisk),
      net: part(() => netInfo(raw.networks), { text: DASH, title: null }),
      uptime: part(() => fmtUptime(uptimeSeconds(raw)), DASH),
      temp: part(() => hottest(raw.temperatures), null),
      procs: part(() => processCount(raw.process_count), null),
    };
  }

  function loadText(l) {
    if (!isObject(l)) return DASH;
    const parts = [fmtLoad(l.one), fmtLoad(l.five), fmtLoad(l.fifteen)];
    return parts.every((p) => p === DASH) ? DASH : parts.join(' \u00b7 ');
  }

  function swapInfo(usedRaw, totalRaw) {
    const total = megabytes(totalRaw);
    const used = megabytes(usedRaw);
    if (total === 0) return { text: 'no swap', pct: null, none: true };
    if (total === null) return { text: DASH, pct: null, none: false };
    let pct = null;
    if (used !== null && used <= total) pct = (used / total) * 100;
    return { text: fmtMB(used) + ' / ' + fmtMB(total), pct, none: false };
  }

  // The fullest real disk (by percent used), and a one-line-per-disk tooltip.
  function fullestDisk(disks) {
    const none = { pct: null, level: 'unknown', mount: null, text: DASH, title: null };
    if (!Array.isArray(disks)) return none;
    const all = [];
    for (const d of disks) {
      if (!isObject(d)) continue;
      const total = nonNegative(d.total_bytes);
      const used = nonNegative(d.used_bytes);
      if (total === null || used === null || total <= 0 || used > total) continue;
      const pct = (used / total) * 100;
      if (!Number.isFinite(pct)) continue;
      all.push({ mount: text(d.mount_point), fs: text(d.fs_type), used, total, pct });
    }
    if (all.length === 0) return none;
    all.sort((a, b) => b.pct - a.pct);
    const best = all[0];
    const lines = all.slice(0, MAX_TITLE_LINES).map((d) =>
      (d.mount || '?') + (d.fs ? ' (' + d.fs + ')' : '') + ': ' +
      fmtBytes(d.used) + ' / ' + fmtBytes(d.total) + ', ' + fmtPct(d.pct));
    if (all.length > MAX_TITLE_LINES) lines.push('\u2026 ' + (all.length - MAX_TITLE_LINES) + ' more');
    return {
      pct: best.pct,
      level: level(best.pct, DISK_WARN, DISK_CRIT),
      mount: best.mount,
      text: fmtBytes(best.used) + ' / ' + fmtBytes(best.total),
      title: lines.join('\n'),
    };
  }

  // Rates summed over all interfaces; "—" until an interface has a rate.
  function netInfo(networks) {
    if (!Array.isArray(networks)) return { text: DASH, title: null };
    let rx = null;
    let tx = null;
    const lines = [];
    for (const n of networks) {
      if (!isObject(n)) continue;
      const r = nonNegative(n.rx_bytes_per_sec);
      const t = nonNegative(n.tx_bytes_per_sec);
      if (r !== null) rx = (rx || 0) + r;
      if (t !== null) tx = (tx || 0) + t;
      if (lines.length < MAX_TITLE_LINES) {
        const errs = (nonNegative(n.rx_errors) || 0) + (nonNegative(n.tx_errors) || 0);
        lines.push((text(n.interface) || '?') + ': \u2193 ' + fmtRate(r) + ' \u2191 ' + fmtRate(t) +
          (errs > 0 ? ', ' + errs + ' errors' : ''));
      }
    }
    const sum = rx === null && tx === null ? DASH : '\u2193 ' + fmtRate(rx) + ' \u2191 ' + fmtRate(tx);
    return { text: sum, title: lines.length ? lines.join('\n') : null };
  }

  function uptimeSeconds(raw) {
    const s = nonNegative(raw.uptime_seconds);
    if (s !== null) return s;
    const boot = parseTime(raw.boot_time);
    if (boot === null) return null;
    const age = (serverNow() - boot) / 1000;
    return age >= 0 ? age : null;
  }

  // The hottest sensor; null (row hidden) when the host reports none.
  function hottest(sensors) {
    if (!Array.isArray(sensors) || sensors.length === 0) return null;
    let best = null;
    for (const t of sensors) {
      if (!isObject(t)) continue;
      const c = toNumber(t.celsius);
      if (c === null || c < -273.15 || c > 1000) continue;
      if (best === null || c > best.c) best = { c, label: text(t.label) };
    }
    if (best === null) return { text: DASH, title: null };
    return { text: fmtCelsius(best.c), title: best.label };
  }

  function processCount(v) {
    if (!present(v)) return null;
    const n = nonNegative(v);
    return n === null ? DASH : String(Math.round(n));
  }

  // ---------- DOM construction ----------

  function el(tag, className, content) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (content !== undefined) e.textContent = content;
    return e;
  }

  // One labelled metric with a bar. `percentClass` adds a percent next to the
  // value; `withMount` adds a mount-point slot after the label (disks).
  function buildMetric(kind, label, valueClass, percentClass, withMount) {
    const wrap = el('div', 'metric metric-' + kind + ' level-unknown');
    const head = el('div', 'metric-head');
    const name = el('span', 'metric-name');
    name.append(el('span', 'metric-label', label));
    let mount = null;
    if (withMount) {
      mount = el('span', 'disk-mount', DASH);
      name.append(mount);
    }
    head.append(name);
    const values = el('span', 'metric-values');
    const value = el('span', valueClass, DASH);
    values.append(value);
    let percent = null;
    if (percentClass) {
      percent = el('span', percentClass + ' metric-percent', DASH);
      values.append(percent);
    }
    head.append(values);
    const bar = el('div', 'bar');
    bar.setAttribute('role', 'progressbar');
    bar.setAttribute('aria-label', label + ' usage');
    bar.setAttribute('aria-valuemin', '0');
    bar.setAttribute('aria-valuemax', '100');
    const fill = el('div', 'bar-fill');
    bar.append(fill);
    wrap.append(head, bar);
    return { wrap, value, percent, mount, bar, fill };
  }

  // One compact "LABEL / value" cell of the stats grid.
  function buildStat(kind, label) {
    const wrap = el('div', 'stat stat-' + kind);
    const value = el('dd', kind + '-value', DASH);
    wrap.append(el('dt', 'stat-label', label), value);
    return { wrap, value };
  }

  function buildCard(id) {
    const root = el('article', 'device-card status-ok');
    root.dataset.deviceId = id;

    const head = el('header', 'card-head');
    const title = el('h2', 'device-id', id);
    title.title = id;
    const badge = el('span', 'status-badge', STATUS_LABEL.ok);
    head.append(title, badge);

    const os = el('p', 'os-info', DASH);
    const cpu = buildMetric('cpu', 'CPU', 'cpu-value');
    const ram = buildMetric('ram', 'RAM', 'ram-value', 'ram-percent');

    // Rows for the fields newer agents send; hidden for older agents.
    const extras = el('div', 'card-extras');
    extras.hidden = true;
    const swap = buildMetric('swap', 'SWAP', 'swap-value', 'swap-percent');
    const disk = buildMetric('disk', 'DISK', 'disk-value', 'disk-percent', true);
    const stats = el('dl', 'stats');
    const load = buildStat('load', 'Load');
    const uptime = buildStat('uptime', 'Uptime');
    const net = buildStat('net', 'Network');
    const temp = buildStat('temp', 'Temp');
    const procs = buildStat('proc', 'Processes');
    stats.append(load.wrap, uptime.wrap, net.wrap, temp.wrap, procs.wrap);
    extras.append(swap.wrap, disk.wrap, stats);

    const foot = el('footer', 'card-foot');
    foot.append(el('span', 'last-seen-label', 'Last seen'));
    const seen = el('time', 'last-seen', DASH);
    foot.append(seen);

    root.append(head, os, cpu.wrap, ram.wrap, extras, foot);
    return {
      root,
      parts: { title, badge, os, cpu, ram, extras, swap, disk, load, uptime, net, temp, procs, seen },
      data: null,
    };
  }

  function setText(node, value) {
    if (node.textContent !== value) node.textContent = value;
  }

  function setLevel(node, lvl) {
    for (const l of ['ok', 'warning', 'critical', 'unknown', 'neutral']) {
      node.classList.toggle('level-' + l, l === lvl);
    }
  }

  function setBar(metric, pct, lvl) {
    setLevel(metric.wrap, lvl);
    const width = clampPct(pct);
    metric.fill.style.width = width.toFixed(2) + '%';
    if (pct === null) {
      metric.bar.removeAttribute('aria-valuenow');
    } else {
      metric.bar.setAttribute('aria-valuenow', width.toFixed(1));
    }
  }

  function updateSeen(card) {
    const d = card.data;
    const { label, seconds } = relativeAge(d ? d.seen : null);
    const seen = card.parts.seen;
    setText(seen, label);
    if (d && d.seen !== null) {
      const iso = new Date(d.seen).toISOString();
      if (seen.getAttribute('datetime') !== iso) {
        seen.setAttribute('datetime', iso);
        seen.title = iso;
      }
    } else {
      seen.removeAttribute('datetime');
      seen.removeAttribute('title');
    }
    card.root.classList.toggle('is-stale', seconds !== null && seconds > STALE_AFTER_S);
  }

  function setStatus(root, badge, status) {
    for (const s of ['ok', 'warning', 'critical']) {
      root.classList.toggle('status-' + s, s === status);
    }
    root.dataset.status = status;
    setText(badge, STATUS_LABEL[status]);
  }

  function fillCard(card, d) {
    const p = card.parts;
    card.root.classList.remove('is-broken');
    card.data = d;
    setStatus(card.root, p.badge, d.status);

    setText(p.os, d.os === null || d.os === '' ? 'Unknown OS' : d.os);
    p.os.classList.toggle('is-unknown', d.os === null || d.os === '');

    setText(p.cpu.value, fmtPct(d.cpu));
    setBar(p.cpu, d.cpu, d.cpuLevel);

    setText(p.ram.value, fmtMB(d.used) + ' / ' + fmtMB(d.total));
    setText(p.ram.percent, fmtPct(d.ramPct));
    setBar(p.ram, d.ramPct, d.ramLevel);

    fillExtras(p, d.extras);

    updateSeen(card);
  }

  function setTitle(node, title) {
    if (title) {
      if (node.title !== title) node.title = title;
    } else if (node.hasAttribute('title')) {
      node.removeAttribute('title');
    }
  }

  function collapse(metric, collapsed) {
    metric.percent.hidden = collapsed;
    metric.bar.hidden = collapsed;
    metric.wrap.classList.toggle('is-collapsed', collapsed);
  }

  function fillExtras(p, x) {
    p.extras.hidden = !x.extended;
    if (!x.extended) return;

    // Swap and disk rows collapse to one line ("no swap", "—") without a percentage.
    setText(p.swap.value, x.swap.text);
    setText(p.swap.percent, fmtPct(x.swap.pct));
    setBar(p.swap, x.swap.pct, x.swap.pct === null ? 'unknown' : 'neutral');
    collapse(p.swap, x.swap.pct === null);
    p.swap.wrap.classList.toggle('is-none', x.swap.none);

    const hasDisk = x.disk.pct !== null;
    setText(p.disk.mount, hasDisk && x.disk.mount ? x.disk.mount : '');
    p.disk.mount.hidden = !hasDisk || !x.disk.mount;
    setText(p.disk.value, x.disk.text);
    setText(p.disk.percent, fmtPct(x.disk.pct));
    setBar(p.disk, x.disk.pct, x.disk.level);
    collapse(p.disk, !hasDisk);
    setTitle(p.disk.wrap, x.disk.title);

    setText(p.load.value, x.load);
    setText(p.uptime.value, x.uptime);
    setText(p.net.value, x.net.text);
    setTitle(p.net.wrap, x.net.title);

    p.temp.wrap.hidden = x.temp === null;
    setText(p.temp.value, x.temp === null ? DASH : x.temp.text);
    setTitle(p.temp.wrap, x.temp === null ? null : x.temp.title);

    p.procs.wrap.hidden = x.procs === null;
    setText(p.procs.value, x.procs === null ? DASH : x.procs);
  }

  // Last-resort rendering when a report could not be displayed at all.
  function breakCard(card) {
    const p = card.parts;
    card.data = null;
    card.root.classList.add('is-broken');
    setStatus(card.root, p.badge, 'ok');
    setText(p.os, 'Could not display this device\u2019s data');
    setText(p.cpu.value, DASH);
    setBar(p.cpu, null, 'unknown');
    setText(p.ram.value, DASH + ' / ' + DASH);
    setText(p.ram.percent, DASH);
    setBar(p.ram, null, 'unknown');
    p.extras.hidden = true;
    setText(p.seen, DASH);
  }

  function compareIds(a, b) {
    return a < b ? -1 : a > b ? 1 : 0;
  }

  // ---------- rendering ----------

  function render(list) {
    // Collect valid reports keyed by device id (first occurrence wins).
    const reports = new Map();
    for (const raw of list) {
      try {
        if (!raw || typeof raw !== 'object') continue;
        const id = text(raw.device_id);
        if (id === null || id === '' || reports.has(id)) continue;
        reports.set(id, raw);
      } catch (err) {
        console.warn('tailmon: skipping malformed entry', err);
      }
    }

    // Drop cards of devices that disappeared.
    for (const [id, card] of cards) {
      if (!reports.has(id)) {
        card.root.remove();
        cards.delete(id);
      }
    }

    const ids = Array.from(reports.keys()).sort(compareIds);
    const counts = { ok: 0, warning: 0, critical: 0 };
    const container = els.devices;

    ids.forEach((id, index) => {
      let card = cards.get(id);
      try {
        if (!card) {
          card = buildCard(id);
          cards.set(id, card);
        }
        try {
          fillCard(card, normalise(reports.get(id)));
        } catch (err) {
          console.warn('tailmon: could not render device', id, err);
          breakCard(card);
        }
        counts[card.root.dataset.status] = (counts[card.root.dataset.status] || 0) + 1;
        const at = container.children[index] || null;
        if (at !== card.root) container.insertBefore(card.root, at);
      } catch (err) {
        console.warn('tailmon: could not place card', id, err);
      }
    });

    renderSummary(cards.size, counts);
    els.empty.hidden = cards.size !== 0;
  }

  function renderSummary(total, counts) {
    const s = els.summary;
    s.dataset.total = String(total);
    s.dataset.ok = String(counts.ok);
    s.dataset.warning = String(counts.warning);
    s.dataset.critical = String(counts.critical);
    setText(els.sumTotal, String(total));
    setText(els.sumTotalLabel, total === 1 ? 'device' : 'devices');
    setText(els.sumOk, String(counts.ok));
    setText(els.sumWarning, String(counts.warning));
    setText(els.sumCritical, String(counts.critical));
    s.classList.toggle('has-warning', counts.warning > 0);
    s.classList.toggle('has-critical', counts.critical > 0);
  }

  function refreshAges() {
    for (const card of cards.values()) {
      try {
        if (card.data) updateSeen(card);
      } catch (err) {
        /* keep going for the other cards */
      }
    }
  }

  // ---------- connection state ----------

  function showConnError(detail) {
    els.conn.title = detail || '';
    els.conn.hidden = false;
    document.body.dataset.connection = 'lost';
  }

  function clearConnError() {
    els.conn.hidden = true;
    els.conn.removeAttribute('title');
    document.body.dataset.connection = 'ok';
  }

  function markLoaded() {
    if (document.body.dataset.loaded !== 'true') {
      document.body.dataset.loaded = 'true';
      els.loading.hidden = true;
    }
  }

  function updateClockOffset(res) {
    const date = res.headers.get('Date');
    const t = date ? Date.parse(date) : NaN;
    if (Number.isFinite(t)) {
      const off = t - Date.now();
      // Date has one-second resolution; only correct meaningful skew.
      clockOffsetMs = Math.abs(off) > 2000 ? off : 0;
    }
  }

  // ---------- polling ----------

  async function tick() {
    if (inFlight || stopped) return;
    inFlight = true;
    const ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    const timeout = ctrl ? setTimeout(() => ctrl.abort(), FETCH_TIMEOUT_MS) : null;
    try {
      const res = await fetch(METRICS_URL, {
        credentials: 'same-origin',
        headers: { Accept: 'application/json' },
        cache: 'no-store',
        signal: ctrl ? ctrl.signal : undefined,
      });
      if (res.status === 401) {
        stopped = true;
        if (timer !== null) clearInterval(timer);
        window.location.assign(new URL(LOGIN_URL, document.baseURI).href);
        return;
      }
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const data = await res.json();
      if (!Array.isArray(data)) throw new Error('unexpected response shape');
      updateClockOffset(res);
      render(data);
      clearConnError();
      refreshes += 1;
      document.body.dataset.refreshes = String(refreshes);
      const now = new Date();
      els.updated.textContent = now.toLocaleTimeString();
      els.updated.setAttribute('datetime', now.toISOString());
    } catch (err) {
      showConnError(err && err.message ? String(err.message) : 'request failed');
      refreshAges(); // keep the old cards, but let their ages keep advancing
    } finally {
      if (timeout !== null) clearTimeout(timeout);
      inFlight = false;
      markLoaded();
    }
  }

  function init() {
    els.devices = document.getElementById('devices');
    els.summary = document.getElementById('summary');
    els.sumTotal = document.getElementById('summary-total');
    els.sumTotalLabel = document.getElementById('summary-total-label');
    els.sumOk = document.getElementById('summary-ok');
    els.sumWarning = document.getElementById('summary-warning');
    els.sumCritical = document.getElementById('summary-critical');
    els.conn = document.getElementById('conn-status');
    els.loading = document.getElementById('loading');
    els.empty = document.getElementById('empty-state');
    els.updated = document.getElementById('last-updated');

    document.body.dataset.refreshes = '0';

    // Show the agent endpoint as this browser sees it (handles path prefixes).
    try {
      if (/^https?:$/.test(window.location.protocol)) {
        const endpoint = new URL('api/metrics', document.baseURI).href;
        document.getElementById('empty-hint-endpoint').textContent = endpoint;
        document.getElementById('empty-hint-url').hidden = false;
      }
    } catch (err) {
      /* cosmetic only */
    }

    initShell({ page: 'fleet' });
    tick();
    timer = setInterval(tick, REFRESH_MS);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') tick();
    });
  }

  init();
})();
