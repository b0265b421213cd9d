// Tailmon dashboard: the alerts page (alerts.html). Tabs:
//   Firing    alerts pending or firing (api/v1/alerts, every 5 s), each with
//             "Acknowledge" (POST api/v1/alerts/{id}/ack)
//   History   api/v1/alerts/history, newest first, "Older alerts" pages back
//   Silences  api/v1/silences; admins add (rule and/or device, until) and delete
//   Rules     api/v1/alert-rules with their source; admins create, edit and
//             delete the dashboard's rules (file and default rules are read-only)
//             and "Test" a form's rule (api/v1/alert-rules/test: the devices it
//             matches now, as a table, or the API's error)
//   Channels  admins only: api/v1/alert-channels, a form per channel type,
//             edit, delete and "Send test" (the API's error shown as it says)
// The tab shown follows the address's #hash (#history, #rules, …). A server
// without alerting answers 404: the page says so once, quietly.
//
// Exports: nothing; it runs on load. document.body.dataset.alerts is
// 'unavailable' after a 404, else the number of alerts in the Firing tab;
// each tab's panel gets data-loaded="true" once it drew an answer.
'use strict';

import { initShell, isAdmin, setStale } from './shell.js';
import { getJSON, sendJSON, ApiError, serverNow } from './api.js';
import { el, setText, showError } from './dom.js';
import { DASH, text, isObject, parseTime, fmtDateTime, fmtAge } from './format.js';
import { watchAlerts, normaliseAlert, condition, severityRank } from './alerts-data.js';
import { CHANNEL_TYPES, ruleForm, channelForm, channelTarget, ruleOf, channelOf } from './alerts-forms.js';

const TABS = ['firing', 'history', 'silences', 'rules', 'channels'];
const SEVERITY_LABEL = { critical: 'Critical', warning: 'Warning' };
const STATE_LABEL = { pending: 'Pending', firing: 'Firing', resolved: 'Resolved' };
const HISTORY_PAGE = 50;

const $ = (id) => document.getElementById(id);
let session = null;
let admin = false;
let unavailable = false;
let current = 'firing';
let rules = [];
let channels = [];
const loadedTabs = new Set();

// ---------- small builders ----------

function cell(row, value, className) {
  const td = el('td', className || null);
  if (value instanceof Node) td.append(value);
  else td.textContent = value === null || value === undefined || value === '' ? DASH : String(value);
  row.append(td);
  return td;
}

function timeNode(ms, withAge) {
  if (ms === null) return el('span', null, DASH);
  const t = el('time', null, withAge ? fmtAge(ms, serverNow()) : fmtDateTime(ms));
  t.setAttribute('datetime', new Date(ms).toISOString());
  t.title = fmtDateTime(ms);
  return t;
}

function severityNode(s) {
  return el('span', 'severity-badge severity-' + (s || 'unknown'), SEVERITY_LABEL[s] || DASH);
}

function deviceNode(id) {
  if (!id) return el('span', null, DASH);
  const a = el('a', null, id);
  a.href = 'device.html?id=' + encodeURIComponent(id);
  return a;
}

function button(label, className, action) {
  const b = el('button', 'button subtle' + (className ? ' ' + className : ''), label);
  b.type = 'button';
  b.dataset.action = action;
  return b;
}

/** Each cell gets its column's name (data-label): phones show it before the value. */
function labelCells(table) {
  const names = [...table.tHead.rows[0].cells].map((th) => (th.querySelector('.visually-hidden') ? '' : th.textContent));
  for (const row of table.tBodies[0].rows) {
    [...row.cells].forEach((td, i) => {
      if (names[i]) td.dataset.label = names[i];
    });
  }
}

function showTable(prefix, count) {
  labelCells($(prefix + '-table'));
  $(prefix + '-table').hidden = count === 0;
  $(prefix + '-empty').hidden = count !== 0;
  $('panel-' + prefix).dataset.loaded = 'true';
}

function markUnavailable() {
  if (unavailable) return;
  unavailable = true;
  document.body.dataset.alerts = 'unavailable';
  $('alerts-unavailable').hidden = false;
  $('alerts-tabs').hidden = true;
  for (const t of TABS) $('panel-' + t).hidden = true;
}

/** Runs a request; a 404 means the server has no alerting. */
async function ask(errorNode, fn) {
  showError(errorNode, null);
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) markUnavailable();
    else showError(errorNode, err);
    return undefined;
  }
}

// ---------- tabs ----------

function selectTab(name, focus) {
  if (!TABS.includes(name) || $('tab-' + name).hidden) name = 'firing';
  current = name;
  for (const t of TABS) {
    const tab = $('tab-' + t);
    const on = t === name;
    tab.setAttribute('aria-selected', on ? 'true' : 'false');
    tab.tabIndex = on ? 0 : -1;
    $('panel-' + t).hidden = unavailable || !on;
  }
  if (focus) $('tab-' + name).focus();
  document.body.dataset.tab = name;
  if (location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
  load(name);
}

function wireTabs() {
  const list = $('alerts-tabs');
  list.addEventListener('click', (e) => {
    const tab = e.target.closest('[role="tab"]');
    if (tab) selectTab(tab.dataset.tab, true);
  });
  list.addEventListener('keydown', (e) => {
    const visible = TABS.filter((t) => !$('tab-' + t).hidden);
    let i = visible.indexOf(current);
    if (e.key === 'ArrowRight') i = (i + 1) % visible.length;
    else if (e.key === 'ArrowLeft') i = (i - 1 + visible.length) % visible.length;
    else if (e.key === 'Home') i = 0;
    else if (e.key === 'End') i = visible.length - 1;
    else return;
    e.preventDefault();
    selectTab(visible[i], true);
  });
  window.addEventListener('hashchange', () => selectTab(location.hash.slice(1), false));
}

function load(name) {
  if (unavailable) return;
  if (name === 'history' && !loadedTabs.has('history')) loadHistory(true);
  if (name === 'silences') loadSilences();
  if (name === 'rules') loadRules();
  if (name === 'channels') loadChannels();
  loadedTabs.add(name);
}

// ---------- firing ----------

function drawFiring(state) {
  if (!state.available) {
    markUnavailable();
    return;
  }
  if (state.error) {
    if (state.error.status === 0) setStale(Date.now());
    showError($('firing-error'), state.error);
    return;
  }
  setStale(null);
  showError($('firing-error'), null);
  const alerts = state.alerts
    .slice()
    .sort((x, y) => (x.state === 'firing' ? 0 : 1) - (y.state === 'firing' ? 0 : 1)
      || severityRank(y.severity) - severityRank(x.severity) || (x.since || 0) - (y.since || 0));
  const body = $('firing-body');
  body.textContent = '';
  for (const a of alerts) {
    const row = el('tr', 'state-' + (a.state || 'unknown'));
    row.dataset.alertId = a.id;
    cell(row, severityNode(a.severity));
    cell(row, deviceNode(a.deviceId));
    cell(row, a.rule);
    cell(row, condition(a), 'mono');
    cell(row, STATE_LABEL[a.state] || a.state);
    cell(row, timeNode(a.since, true));
    const notes = [];
    if (a.acknowledgedBy) notes.push('Acknowledged by ' + a.acknowledgedBy);
    if (a.silencedUntil !== null) notes.push('Silenced until ' + fmtDateTime(a.silencedUntil));
    cell(row, notes.join('; '));
    const actions = cell(row, '', 'actions');
    actions.textContent = '';
    if (!a.acknowledgedBy && session && session.auth !== 'token') {
      const ack = button('Acknowledge', null, 'ack');
      ack.setAttribute('aria-label', 'Acknowledge ' + (a.rule || 'alert') + ' on ' + (a.deviceId || DASH));
      actions.append(ack);
    }
    body.append(row);
  }
  const firing = alerts.filter((a) => a.state === 'firing').length;
  setText($('firing-count'), firing ? '(' + firing + ')' : '');
  document.body.dataset.alerts = String(alerts.length);
  showTable('firing', alerts.length);
}

// ---------- history ----------

let historyBefore = null;

async function loadHistory(fresh) {
  if (fresh) historyBefore = null;
  let url = 'api/v1/alerts/history?limit=' + HISTORY_PAGE;
  if (historyBefore) url += '&before=' + encodeURIComponent(historyBefore);
  const list = await ask($('history-error'), () => getJSON(url));
  if (list === undefined) return;
  const items = Array.isArray(list) ? list.map(normaliseAlert).filter((a) => a !== null) : [];
  const body = $('history-body');
  if (fresh) body.textContent = '';
  for (const a of items) {
    const row = el('tr', 'state-' + (a.state || 'unknown'));
    row.dataset.alertId = a.id;
    cell(row, severityNode(a.severity));
    cell(row, deviceNode(a.deviceId));
    cell(row, a.rule);
    cell(row, condition(a), 'mono');
    cell(row, STATE_LABEL[a.state] || a.state);
    cell(row, timeNode(a.startedAt !== null ? a.startedAt : a.since, false));
    cell(row, timeNode(a.resolvedAt, false));
    body.append(row);
  }
  const last = Array.isArray(list) && list.length ? list[list.length - 1] : null;
  historyBefore = isObject(last) ? text(last.started_at) : null;
  $('history-more').hidden = items.length < HISTORY_PAGE || historyBefore === null;
  showTable('history', body.children.length);
}

// ---------- silences ----------

async function loadSilences() {
  const list = await ask($('silences-error'), () => getJSON('api/v1/silences'));
  if (list === undefined) return;
  const body = $('silences-body');
  body.textContent = '';
  const items = Array.isArray(list) ? list.filter(isObject) : [];
  for (const s of items) {
    const row = el('tr');
    const id = text(s.id);
    if (id !== null) row.dataset.silenceId = id;
    cell(row, text(s.rule) || 'any rule');
    cell(row, text(s.device) || 'any device');
    cell(row, timeNode(parseTime(s.until), false));
    cell(row, text(s.comment));
    const actions = cell(row, '', 'actions');
    actions.textContent = '';
    if (admin && id !== null) {
      const del = button('Delete', null, 'delete-silence');
      del.setAttribute('aria-label', 'Delete the silence of ' + (text(s.rule) || 'any rule') + ' on ' + (text(s.device) || 'any device'));
      actions.append(del);
    }
    body.append(row);
  }
  showTable('silences', items.length);
}

function silenceForm() {
  const box = $('silence-admin');
  box.textContent = '';
  const form = el('form', 'alerts-form inline-form');
  form.id = 'silence-form';
  form.noValidate = true;
  const title = el('h2', null, 'New silence');
  form.append(title);
  const mk = (id, label, type) => {
    const wrap = el('div', 'field');
    const input = el('input');
    input.id = id;
    input.type = type;
    input.autocomplete = 'off';
    const l = el('label', null, label);
    l.htmlFor = id;
    wrap.append(l, input);
    form.append(wrap);
    return input;
  };
  const rule = mk('silence-rule', 'Rule (empty: any)', 'text');
  rule.setAttribute('list', 'silence-rule-names');
  const names = el('datalist');
  names.id = 'silence-rule-names';
  form.append(names);
  const device = mk('silence-device', 'Device (empty: any)', 'text');
  const until = mk('silence-until', 'Until', 'datetime-local');
  until.required = true;
  const comment = mk('silence-comment', 'Comment (optional)', 'text');
  const submit = el('button', 'button primary', 'Silence');
  submit.type = 'submit';
  submit.id = 'silence-submit';
  form.append(submit);
  const error = el('p', 'form-error');
  error.id = 'silence-error';
  error.hidden = true;
  box.append(form, error);
  // Default: an hour from now, in the browser's local time.
  const soon = new Date(Date.now() + 3600 * 1000);
  soon.setSeconds(0, 0);
  until.value = new Date(soon.getTime() - soon.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError(error, null);
    const body = {};
    if (rule.value.trim()) body.rule = rule.value.trim();
    if (device.value.trim()) body.device = device.value.trim();
    if (!body.rule && !body.device) {
      showError(error, new Error('Name a rule, a device, or both.'));
      return;
    }
    const t = until.value ? new Date(until.value).getTime() : NaN;
    if (!Number.isFinite(t)) {
      showError(error, new Error('Say until when.'));
      return;
    }
    body.until = new Date(t).toISOString();
    if (comment.value.trim()) body.comment = comment.value.trim();
    submit.disabled = true;
    try {
      await sendJSON('POST', 'api/v1/silences', body);
      rule.value = '';
      device.value = '';
      comment.value = '';
      await loadSilences();
    } catch (err) {
      showError(error, err);
    } finally {
      submit.disabled = false;
    }
  });
  box.hidden = false;
  return names;
}

// ---------- rules ----------

async function loadRules() {
  const list = await ask($('rules-error'), () => getJSON('api/v1/alert-rules'));
  if (list === undefined) return;
  rules = Array.isArray(list) ? list.filter(isObject).map(ruleOf) : [];
  const body = $('rules-body');
  body.textContent = '';
  for (const r of rules) {
    const row = el('tr');
    const name = text(r.name);
    if (name !== null) row.dataset.rule = name;
    const kind = text(r.kind) || 'threshold';
    const source = text(r.source);
    row.dataset.source = source || '';
    cell(row, name);
    cell(row, kind);
    let cond = DASH;
    if (kind === 'threshold') {
      cond = (text(r.metric) || DASH) + ' ' + (text(r.op) || DASH) + ' ' + (text(r.threshold) || DASH);
    } else if (kind === 'offline') {
      cond = 'no report';
    } else if (kind === 'disk_full') {
      cond = 'full within ' + (text(r.within) || DASH);
    }
    cell(row, cond, 'mono');
    cell(row, text(r.for));
    cell(row, severityNode(text(r.severity)));
    cell(row, text(r.devices) || '*');
    cell(row, Array.isArray(r.channels) ? r.channels.map(text).filter(Boolean).join(', ') : null);
    cell(row, source === 'dashboard' ? 'dashboard' : source === 'file' ? 'file (read-only)' : source === 'default' ? 'default (read-only)' : source);
    const actions = cell(row, '', 'actions');
    actions.textContent = '';
    if (admin && source === 'dashboard' && name !== null) {
      const edit = button('Edit', null, 'edit-rule');
      edit.setAttribute('aria-label', 'Edit rule ' + name);
      const del = button('Delete', 'danger', 'delete-rule');
      del.setAttribute('aria-label', 'Delete rule ' + name);
      actions.append(edit, del);
    }
    body.append(row);
  }
  showTable('rules', rules.length);
  const names = document.getElementById('silence-rule-names');
  if (names) {
    names.textContent = '';
    for (const r of rules) {
      const o = el('option');
      o.value = text(r.name) || '';
      names.append(o);
    }
  }
}

/** Draws a rule's dry run (POST api/v1/alert-rules/test), or its error, as text. */
function showDryRun(box, run, err) {
  box.textContent = '';
  box.hidden = false;
  if (err || !isObject(run)) {
    const p = el('p', 'form-error', err && err.message ? String(err.message) : 'No answer.');
    p.setAttribute('role', 'alert');
    box.append(p);
    return;
  }
  const matches = Array.isArray(run.matches) ? run.matches.filter(isObject) : [];
  const holding = matches.filter((m) => m.holds === true).length;
  const checked = Number(run.devices_checked) || 0;
  box.append(el('p', 'hint', checked + (checked === 1 ? ' device' : ' devices') + ' checked; '
    + holding + ' of ' + matches.length + ' holding now (ignoring "Holds for").'));
  if (!matches.length) return;
  const table = el('table', 'admin-table alerts-table');
  const head = el('tr');
  for (const h of ['Device', 'Metric', 'Value', 'Holds']) head.append(el('th', null, h));
  table.append(el('thead'), el('tbody'));
  table.tHead.append(head);
  for (const m of matches) {
    const row = el('tr');
    row.dataset.device = text(m.device_id) || '';
    cell(row, text(m.device_id));
    cell(row, text(m.metric));
    const v = typeof m.value === 'number' ? Math.round(m.value * 100) / 100 : null;
    cell(row, v);
    let holds = m.holds === true ? 'Yes' : 'No';
    if (typeof m.status === 'string') holds += ' (' + m.status + ')';
    if ('hours_to_full' in m) {
      holds += typeof m.hours_to_full === 'number'
        ? ' (full in ' + Math.round(m.hours_to_full * 10) / 10 + ' h)' : ' (not filling)';
    }
    cell(row, holds);
    table.tBodies[0].append(row);
  }
  box.append(table);
}

function openRuleForm(rule) {
  const box = $('rule-form-box');
  box.textContent = '';
  const known = channels.map((c) => text(c.name)).filter(Boolean);
  const { form, body, error, test, testResult } = ruleForm(rule, { channels: known });
  box.append(form);
  box.hidden = false;
  test.addEventListener('click', async () => {
    test.disabled = true;
    try {
      showDryRun(testResult, await sendJSON('POST', 'api/v1/alert-rules/test', body()));
    } catch (err) {
      showDryRun(testResult, null, err);
    } finally {
      test.disabled = false;
    }
  });
  form.querySelector('[data-action="cancel"]').addEventListener('click', () => {
    box.hidden = true;
    box.textContent = '';
    $('rule-new').focus();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError(error, null);
    let payload;
    try {
      payload = body();
    } catch (err) {
      showError(error, err);
      return;
    }
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      if (rule) await sendJSON('PUT', 'api/v1/alert-rules/' + encodeURIComponent(text(ruleOf(rule).name) || ''), payload);
      else await sendJSON('POST', 'api/v1/alert-rules', payload);
      box.hidden = true;
      box.textContent = '';
      await loadRules();
    } catch (err) {
      showError(error, err);
    } finally {
      submit.disabled = false;
    }
  });
  const first = form.querySelector('input:not([readonly]), select');
  if (first) first.focus();
}

// ---------- channels ----------

async function loadChannels() {
  if (!admin) return;
  const list = await ask($('channels-error'), () => getJSON('api/v1/alert-channels'));
  if (list === undefined) return;
  channels = Array.isArray(list) ? list.filter(isObject).map(channelOf) : [];
  const body = $('channels-body');
  body.textContent = '';
  for (const c of channels) {
    const row = el('tr');
    const name = text(c.name);
    if (name !== null) row.dataset.channel = name;
    const source = text(c.source);
    row.dataset.source = source || '';
    cell(row, name);
    cell(row, CHANNEL_TYPES[c.type] ? CHANNEL_TYPES[c.type].label : text(c.type));
    cell(row, channelTarget(c), 'mono');
    cell(row, source === 'dashboard' ? 'dashboard' : source ? source + ' (read-only)' : null);
    const actions = cell(row, '', 'actions');
    actions.textContent = '';
    if (name !== null) {
      const test = button('Send test', null, 'test-channel');
      test.setAttribute('aria-label', 'Send a test through ' + name);
      actions.append(test);
      if (source === 'dashboard') {
        const edit = button('Edit', null, 'edit-channel');
        edit.setAttribute('aria-label', 'Edit channel ' + name);
        const del = button('Delete', 'danger', 'delete-channel');
        del.setAttribute('aria-label', 'Delete channel ' + name);
        actions.append(edit, del);
      }
    }
    body.append(row);
  }
  showTable('channels', channels.length);
}

function openChannelForm(channel) {
  const box = $('channel-form-box');
  box.textContent = '';
  const { form, body, error } = channelForm(channel);
  box.append(form);
  box.hidden = false;
  form.querySelector('[data-action="cancel"]').addEventListener('click', () => {
    box.hidden = true;
    box.textContent = '';
    $('channel-new').focus();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError(error, null);
    let payload;
    try {
      payload = body();
    } catch (err) {
      showError(error, err);
      return;
    }
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      if (channel) await sendJSON('PUT', 'api/v1/alert-channels/' + encodeURIComponent(text(channel.name) || ''), payload);
      else await sendJSON('POST', 'api/v1/alert-channels', payload);
      box.hidden = true;
      box.textContent = '';
      await loadChannels();
    } catch (err) {
      showError(error, err);
    } finally {
      submit.disabled = false;
    }
  });
  const first = form.querySelector('input:not([readonly]), select:not([disabled])');
  if (first) first.focus();
}

async function testChannel(name, btn) {
  const out = $('channel-test-result');
  out.hidden = false;
  out.className = 'channel-test-result';
  setText(out, 'Sending a test through ' + name + '…');
  btn.disabled = true;
  try {
    await sendJSON('POST', 'api/v1/alert-channels/' + encodeURIComponent(name) + '/test');
    out.classList.add('is-ok');
    setText(out, 'Test sent through ' + name + '.');
  } catch (err) {
    out.classList.add('is-error');
    setText(out, 'The test through ' + name + ' failed: ' + (err && err.message ? err.message : String(err)));
  } finally {
    btn.disabled = false;
  }
}

// ---------- actions in the tables ----------

/** A delete button asks once more in place: the first press arms it for 5 s. */
function armed(btn) {
  if (btn.dataset.armed === 'true') return true;
  btn.dataset.armed = 'true';
  btn.dataset.label = btn.textContent;
  btn.textContent = 'Really delete?';
  setTimeout(() => {
    if (!btn.isConnected) return;
    btn.dataset.armed = 'false';
    btn.textContent = btn.dataset.label;
  }, 5000);
  return false;
}

async function onTableClick(e) {
  const btn = e.target.closest('button[data-action]');
  if (!btn) return;
  const row = btn.closest('tr');
  const action = btn.dataset.action;
  if (action === 'ack' && row) {
    btn.disabled = true;
    const ok = await ask($('firing-error'), () => sendJSON('POST', 'api/v1/alerts/' + encodeURIComponent(row.dataset.alertId) + '/ack'));
    btn.disabled = false;
    if (ok !== undefined) watcher.refresh();
  } else if (action === 'delete-silence' && row) {
    if (!armed(btn)) return;
    const ok = await ask($('silences-error'), () => sendJSON('DELETE', 'api/v1/silences/' + encodeURIComponent(row.dataset.silenceId)));
    if (ok !== undefined) loadSilences();
  } else if (action === 'edit-rule' && row) {
    const rule = rules.find((r) => text(r.name) === row.dataset.rule);
    if (rule) openRuleForm(rule);
  } else if (action === 'delete-rule' && row) {
    if (!armed(btn)) return;
    const ok = await ask($('rules-error'), () => sendJSON('DELETE', 'api/v1/alert-rules/' + encodeURIComponent(row.dataset.rule)));
    if (ok !== undefined) loadRules();
  } else if (action === 'edit-channel' && row) {
    const ch = channels.find((c) => text(c.name) === row.dataset.channel);
    if (ch) openChannelForm(ch);
  } else if (action === 'delete-channel' && row) {
    if (!armed(btn)) return;
    const ok = await ask($('channels-error'), () => sendJSON('DELETE', 'api/v1/alert-channels/' + encodeURIComponent(row.dataset.channel)));
    if (ok !== undefined) loadChannels();
  } else if (action === 'test-channel' && row) {
    testChannel(row.dataset.channel, btn);
  }
}

// ---------- start ----------

let watcher = { refresh() {} };

async function init() {
  const shell = await initShell({ page: 'alerts' });
  session = shell.session;
  admin = isAdmin(session);
  document.body.dataset.admin = admin ? 'true' : 'false';
  $('tab-channels').hidden = !admin;
  $('rules-admin-actions').hidden = !admin;
  if (admin) {
    silenceForm();
    $('rule-new').addEventListener('click', () => openRuleForm(null));
    $('channel-new').addEventListener('click', () => openChannelForm(null));
  }
  $('history-more').addEventListener('click', () => loadHistory(false));
  $('alerts-main').addEventListener('click', onTableClick);
  wireTabs();
  watcher = watchAlerts(drawFiring);
  // The rule editor suggests the channels there are.
  if (admin) loadChannels();
  selectTab(location.hash.slice(1) || 'firing', false);
}

init();
