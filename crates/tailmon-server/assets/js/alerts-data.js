// Tailmon dashboard: the alerts the server reports (api/v1/alerts), shared
// by the fleet view, the device page and the alerts page. A server without
// alerting answers 404: then every page says nothing (or, on the alerts
// page, one quiet note) and stops asking.
//
// Exports:
//   watchAlerts(onChange, opts)  polls api/v1/alerts every opts.intervalMs (5000);
//                                onChange({available, alerts, error}) after each answer:
//                                  available  false once the server answered 404
//                                  alerts     the normalised list (see normaliseAlert)
//                                  error      the ApiError of a failed poll, or null
//                                Answers {refresh(), close()}: refresh() asks again soon
//                                (several calls within 1 s make one request).
//   normaliseAlert(raw)          {id, rule, severity, deviceId, metric, value, op, threshold,
//                                 state, since, startedAt, resolvedAt, acknowledgedBy,
//                                 silencedUntil} with strings or null and times in epoch ms;
//                                null when raw is not an object with an id
//   isFiring(a)                  a.state === 'firing'
//   fmtValue(v)                  a metric value: "92.5", "1,234", or DASH
//   condition(a)                 "cpu_usage 92.5 > 80" (parts missing become DASH)
//   severityRank(s)              critical 2, warning 1, anything else 0
'use strict';

import { getJSON } from './api.js';
import { DASH, text, toNumber, isObject, parseTime } from './format.js';

const OPS = ['>', '>=', '<', '<='];

export function normaliseAlert(raw) {
  if (!isObject(raw)) return null;
  const id = text(raw.id);
  if (id === null || id === '') return null;
  const state = text(raw.state);
  const severity = text(raw.severity);
  return {
    id,
    rule: text(raw.rule),
    severity: severity === 'critical' || severity === 'warning' ? severity : null,
    deviceId: text(raw.device_id),
    metric: text(raw.metric),
    value: toNumber(raw.value),
    op: OPS.includes(raw.op) ? raw.op : null,
    threshold: toNumber(raw.threshold),
    state: state === null ? null : state,
    since: parseTime(raw.since),
    startedAt: parseTime(raw.started_at),
    resolvedAt: parseTime(raw.resolved_at),
    acknowledgedBy: text(raw.acknowledged_by),
    silencedUntil: parseTime(raw.silenced_until),
  };
}

export function isFiring(a) {
  return !!a && a.state === 'firing';
}

export function severityRank(s) {
  if (s === 'critical') return 2;
  if (s === 'warning') return 1;
  return 0;
}

export function fmtValue(v) {
  const n = toNumber(v);
  if (n === null) return DASH;
  const abs = Math.abs(n);
  if (abs >= 1000) return Math.round(n).toLocaleString('en-US');
  if (Number.isInteger(n)) return String(n);
  return String(Math.round(n * 100) / 100);
}

export function condition(a) {
  if (!a) return DASH;
  const metric = a.metric === null || a.metric === '' ? DASH : a.metric;
  return metric + ' ' + fmtValue(a.value) + ' ' + (a.op || DASH) + ' ' + fmtValue(a.threshold);
}

export function watchAlerts(onChange, opts) {
  const intervalMs = opts && typeof opts.intervalMs === 'number' ? opts.intervalMs : 5000;
  let timer = null;
  let soon = null;
  let closed = false;
  let available = true;
  let busy = false;
  let again = false;
  let last = [];

  function emit(error) {
    try {
      onChange({ available, alerts: last, error });
    } catch (err) {
      console.warn('tailmon: alerts handler', err);
    }
  }

  async function poll() {
    if (closed || !available) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const list = await getJSON('api/v1/alerts');
      last = Array.isArray(list) ? list.map(normaliseAlert).filter((a) => a !== null) : [];
      emit(null);
    } catch (err) {
      if (err && err.status === 404) {
        available = false;
        last = [];
        stop();
      }
      emit(err);
    } finally {
      busy = false;
    }
    if (again && !closed && available) {
      again = false;
      poll();
    }
  }

  function stop() {
    if (timer !== null) clearInterval(timer);
    if (soon !== null) clearTimeout(soon);
    timer = null;
    soon = null;
  }

  poll();
  timer = setInterval(poll, intervalMs);
  return {
    refresh() {
      if (closed || !available || soon !== null) return;
      soon = setTimeout(() => {
        soon = null;
        poll();
      }, 1000);
    },
    close() {
      closed = true;
      stop();
    },
  };
}
