// Tailmon dashboard: formatting. Every function takes anything (a report is
// data from the outside) and answers a string; a missing, null, NaN,
// infinite or otherwise odd value gives DASH ("—"), never "NaN" or a throw.
//
// Exports:
//   DASH                      "—"
//   toNumber(v)               finite number or null (numbers and numeric strings)
//   nonNegative(v)            finite number >= 0, or null
//   text(v)                   a string (numbers stringified), or null
//   isObject(v)               a plain object (not null, not an array)
//   clampPct(n)               0..100 (0 for null)
//   fmtPct(v)                 "12.3%"
//   fmtMB(v)                  megabytes: "512 MB", "1.5 GB"
//   fmtBytes(v)               bytes, base 1024: "512 B", "1.5 KB", "2.0 TB"
//   fmtRate(v)                bytes per second: "1.2 MB/s", "300 KB/s"
//   fmtDuration(seconds)      "3 d 4 h", "5 h 12 min", "12 min", "< 1 min"
//   fmtLoad(v)                "0.52"
//   fmtCelsius(v)             "54.3 °C"
//   fmtCount(v)               "1,234"
//   parseTime(v)              RFC 3339 string -> epoch ms, or null
//   fmtAge(ms, now)           "just now", "12 s ago", "3 min ago", "2 h ago", "4 d ago"
//   fmtDateTime(ms)           local date and time, or DASH
'use strict';

export const DASH = '\u2014';

export function toNumber(v) {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

export function nonNegative(v) {
  const n = toNumber(v);
  return n === null || n < 0 ? null : n;
}

export function text(v) {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

export function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function clampPct(n) {
  if (n === null || typeof n !== 'number' || !Number.isFinite(n)) return 0;
  return Math.max(0, Math.min(100, n));
}

export function fmtPct(v) {
  const n = toNumber(v);
  return n === null ? DASH : n.toFixed(1) + '%';
}

export function fmtMB(v) {
  const mb = nonNegative(v);
  if (mb === null) return DASH;
  if (mb >= 1024) return (mb / 1024).toFixed(1) + ' GB';
  return Math.round(mb) + ' MB';
}

const BYTE_UNITS = ['KB', 'MB', 'GB', 'TB'];

function scaled(b) {
  let v = b / 1024;
  let i = 0;
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i += 1;
  }
  return [v, BYTE_UNITS[i]];
}

export function fmtBytes(v) {
  const b = nonNegative(v);
  if (b === null) return DASH;
  if (b < 1024) return Math.round(b) + ' B';
  const [n, unit] = scaled(b);
  return n.toFixed(1) + ' ' + unit;
}

export function fmtRate(v) {
  const b = nonNegative(v);
  if (b === null) return DASH;
  if (b < 1024) return Math.round(b) + ' B/s';
  const [n, unit] = scaled(b);
  return (n < 100 ? n.toFixed(1) : Math.round(n).toString()) + ' ' + unit + '/s';
}

export function fmtDuration(v) {
  const s = nonNegative(v);
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

export function fmtLoad(v) {
  const n = nonNegative(v);
  return n === null ? DASH : n.toFixed(2);
}

export function fmtCelsius(v) {
  const n = toNumber(v);
  return n === null ? DASH : n.toFixed(1) + ' \u00b0C';
}

export function fmtCount(v) {
  const n = nonNegative(v);
  return n === null ? DASH : Math.round(n).toLocaleString('en-US');
}

export function parseTime(v) {
  if (typeof v !== 'string' || v === '') return null;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : null;
}

export function fmtAge(ms, now) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return DASH;
  const s = Math.max(0, Math.floor(((typeof now === 'number' ? now : Date.now()) - ms) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

export function fmtDateTime(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return DASH;
  try {
    return new Date(ms).toLocaleString();
  } catch (err) {
    return DASH;
  }
}
