// Tailmon dashboard: the firing alerts of one device, on its page
// (section #device-alerts of device.html, shown only while one fires).
//
// Exports:
//   startDeviceAlerts(id)   polls api/v1/alerts (every 5 s; a server without
//                           alerting answers 404 and the section stays hidden).
//                           Answers {refresh()} to ask again soon (a report came).
//   document.getElementById('device-alerts').dataset.count
//                           the number shown, 'unavailable' on a 404
'use strict';

import { watchAlerts } from './alerts-data.js';
import { alertItem, firingSorted } from './fleet-alerts.js';
import { setText } from './dom.js';

export function startDeviceAlerts(id) {
  const section = document.getElementById('device-alerts');
  const list = document.getElementById('device-alerts-list');
  const count = document.getElementById('device-alerts-count');
  if (!section || !list) return { refresh() {} };
  const watcher = watchAlerts((state) => {
    if (!state.available) {
      section.dataset.count = 'unavailable';
      section.hidden = true;
      return;
    }
    if (state.error) return;
    const mine = firingSorted(state.alerts.filter((a) => a.deviceId === id));
    section.dataset.count = String(mine.length);
    if (count) setText(count, mine.length === 1 ? '1 firing alert' : mine.length + ' firing alerts');
    list.textContent = '';
    for (const a of mine) list.append(alertItem(a, false));
    section.classList.toggle('has-critical', mine.some((a) => a.severity === 'critical'));
    section.hidden = mine.length === 0;
  });
  return { refresh: watcher.refresh };
}
