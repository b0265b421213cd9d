// Tailmon dashboard: the user's saved choices (GET/PUT api/v1/preferences),
// so they follow the user to another browser. When the server has no
// preferences endpoint (or it fails), the choices live in this browser only.
//
// Exports:
//   FLEET_METRICS             the metrics a fleet card can show, in a default order:
//                             [{key, label}] for cpu ram disk swap load network
//                             temperature uptime processes
//   DEFAULT_FLEET_METRICS     ['cpu', 'ram', 'disk']
//   THEMES                    ['system', 'light', 'dark']
//   loadPrefs()               resolves to the saved object ({} when none)
//   currentPrefs()            the last loaded/saved object
//   savePrefs(patch)          merges patch into the latest saved object and PUTs it;
//                             resolves to the saved object; throws ApiError
//   fleetMetrics(prefs)       the valid fleet_metrics of prefs, or the default
'use strict';

import { getJSON, sendJSON } from './api.js';

export const FLEET_METRICS = [
  { key: 'cpu', label: 'CPU' },
  { key: 'ram', label: 'RAM' },
  { key: 'disk', label: 'Disk' },
  { key: 'swap', label: 'Swap' },
  { key: 'load', label: 'Load' },
  { key: 'network', label: 'Network' },
  { key: 'temperature', label: 'Temperature' },
  { key: 'uptime', label: 'Uptime' },
  { key: 'processes', label: 'Processes' },
];
export const DEFAULT_FLEET_METRICS = ['cpu', 'ram', 'disk'];
export const THEMES = ['system', 'light', 'dark'];

const LOCAL_KEY = 'tailmon-prefs';
let current = {};

function readLocal() {
  try {
    const v = JSON.parse(localStorage.getItem(LOCAL_KEY) || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch (err) {
    return {};
  }
}

function writeLocal(v) {
  try {
    localStorage.setItem(LOCAL_KEY, JSON.stringify(v));
  } catch (err) {
    /* private mode: nothing kept */
  }
}

export async function loadPrefs() {
  try {
    const v = await getJSON('api/v1/preferences');
    current = v && typeof v === 'object' && !Array.isArray(v) ? v : {};
    writeLocal(current);
  } catch (err) {
    current = readLocal();
  }
  return current;
}

export function currentPrefs() {
  return current;
}

export async function savePrefs(patch) {
  // The latest saved set first: another page (the device page, another
  // tab) may have changed other keys since this one loaded.
  try {
    const fresh = await getJSON('api/v1/preferences');
    if (fresh && typeof fresh === 'object' && !Array.isArray(fresh)) current = fresh;
  } catch (err) {
    /* keep what we have */
  }
  const next = Object.assign({}, current, patch);
  writeLocal(next);
  current = next;
  try {
    const saved = await sendJSON('PUT', 'api/v1/preferences', next);
    if (saved && typeof saved === 'object' && !Array.isArray(saved)) current = saved;
  } catch (err) {
    // No endpoint yet (404): kept in this browser only.
    if (err.status !== 404) throw err;
  }
  return current;
}

export function fleetMetrics(prefs) {
  const known = new Set(FLEET_METRICS.map((m) => m.key));
  const list = prefs && Array.isArray(prefs.fleet_metrics) ? prefs.fleet_metrics : null;
  if (list === null) return DEFAULT_FLEET_METRICS.slice();
  const out = [];
  for (const k of list) {
    if (typeof k === 'string' && known.has(k) && !out.includes(k)) out.push(k);
  }
  return out;
}
