// Tailmon dashboard: firing alerts on the fleet view. A panel under the
// status counts (how many, and the list, worst first) and a mark on the
// card of each device with a firing alert. Nothing shows when none fires,
// nor on a server without alerting (api/v1/alerts answers 404).
//
// Exports:
//   startFleetAlerts(anchor, cardOf)  the panel goes after `anchor`; cardOf(id) answers
//                                     the <article> of a device's card or null. Answers
//                                     {markCards(), refresh()}: markCards() after cards
//                                     were made or replaced, refresh() when a device
//                                     reported (asks the server again within a second).
//   document.body.dataset.alerts      'unavailable', or the number of firing alerts
'use strict';

import { watchAlerts, isFiring, condition, severityRank } from './alerts-data.js';
import { el, setText } from './dom.js';
import { DASH, fmtDuration, fmtDateTime } from './format.js';
import { serverNow } from './api.js';

const SHOWN = 10;
const SEVERITY_LABEL = { critical: 'Critical', warning: 'Warning' };

function deviceHref(id) {
  return 'device.html?id=' + encodeURIComponent(id);
}

function isoOf(ms) {
  return ms === null ? '' : new Date(ms).toISOString();
}

/** One alert as a list item (also used by the device page). */
export function alertItem(a, withDevice) {
  const li = el('li', 'alert-item severity-' + (a.severity || 'unknown'));
  li.dataset.alertId = a.id;
  li.append(el('span', 'severity-badge', SEVERITY_LABEL[a.severity] || DASH));
  if (withDevice) {
    if (a.deviceId) {
      const link = el('a', 'alert-device', a.deviceId);
      link.href = deviceHref(a.deviceId);
      li.append(link);
    } else {
      li.append(el('span', 'alert-device', DASH));
    }
  }
  li.append(el('span', 'alert-rule', a.rule || DASH));
  li.append(el('span', 'alert-condition', condition(a)));
  // How long it has held: "for 12 min", "for < 1 min".
  const held = a.since === null ? null : Math.max(0, (serverNow() - a.since) / 1000);
  const since = el('time', 'alert-since', held === null ? DASH : 'for ' + fmtDuration(held));
  if (a.since !== null) {
    since.setAttribute('datetime', isoOf(a.since));
    since.title = fmtDateTime(a.since);
  }
  li.append(since);
  if (a.acknowledgedBy) li.append(el('span', 'alert-note', 'acknowledged by ' + a.acknowledgedBy));
  if (a.silencedUntil !== null) li.append(el('span', 'alert-note', 'silenced until ' + fmtDateTime(a.silencedUntil)));
  return li;
}

/** Firing alerts, worst and oldest first. */
export function firingSorted(alerts) {
  return alerts
    .filter(isFiring)
    .sort((x, y) => severityRank(y.severity) - severityRank(x.severity) || (x.since || 0) - (y.since || 0));
}

export function startFleetAlerts(anchor, cardOf) {
  const panel = el('section', 'alerts-panel');
  panel.id = 'alerts-panel';
  panel.hidden = true;
  panel.setAttribute('aria-labelledby', 'alerts-panel-title');
  const head = el('div', 'alerts-panel-head');
  const title = el('h2', 'alerts-panel-title');
  title.id = 'alerts-panel-title';
  const count = el('span', 'alerts-count', '0');
  count.id = 'alerts-count';
  const noun = el('span', null, ' firing alerts');
  title.append(count, noun);
  const all = el('a', 'button subtle', 'All alerts');
  all.href = 'alerts.html';
  head.append(title, all);
  const list = el('ul', 'alerts-list');
  list.id = 'alerts-list';
  const more = el('p', 'hint');
  more.hidden = true;
  panel.append(head, list, more);
  anchor.after(panel);

  let byDevice = new Map(); // device id -> {count, severity}
  let marked = new Set();

  function markCards() {
    const ids = new Set([...marked, ...byDevice.keys()]);
    const next = new Set();
    for (const id of ids) {
      const root = cardOf(id);
      if (!root) continue;
      const info = byDevice.get(id);
      let mark = root.querySelector('.alert-mark');
      if (!info) {
        if (mark) mark.remove();
        delete root.dataset.alerts;
        continue;
      }
      if (!mark) {
        mark = el('a', 'alert-mark');
        const badge = root.querySelector('.card-head .status-badge');
        if (badge) badge.before(mark);
        else root.prepend(mark);
      }
      mark.href = 'alerts.html';
      mark.className = 'alert-mark severity-' + (info.severity || 'unknown');
      const label = info.count === 1 ? '1 firing alert' : info.count + ' firing alerts';
      setText(mark, '\u26a0 ' + info.count);
      mark.setAttribute('aria-label', label + ' on ' + id);
      mark.title = label;
      root.dataset.alerts = String(info.count);
      next.add(id);
    }
    marked = next;
  }

  function draw(state) {
    if (!state.available) {
      document.body.dataset.alerts = 'unavailable';
      panel.hidden = true;
      byDevice = new Map();
      markCards();
      return;
    }
    if (state.error) return; // keep what is shown; the stale banner speaks for the server
    const firing = firingSorted(state.alerts);
    document.body.dataset.alerts = String(firing.length);
    byDevice = new Map();
    for (const a of firing) {
      if (!a.deviceId) continue;
      const info = byDevice.get(a.deviceId) || { count: 0, severity: null };
      info.count += 1;
      if (severityRank(a.severity) > severityRank(info.severity)) info.severity = a.severity;
      byDevice.set(a.deviceId, info);
    }
    setText(count, firing.length);
    setText(noun, firing.length === 1 ? ' firing alert' : ' firing alerts');
    panel.classList.toggle('has-critical', firing.some((a) => a.severity === 'critical'));
    list.textContent = '';
    for (const a of firing.slice(0, SHOWN)) list.append(alertItem(a, true));
    more.hidden = firing.length <= SHOWN;
    setText(more, 'and ' + (firing.length - SHOWN) + ' more on the alerts page');
    panel.hidden = firing.length === 0;
    markCards();
  }

  const watcher = watchAlerts(draw);
  return { markCards, refresh: watcher.refresh };
}
