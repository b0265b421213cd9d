// Tailmon dashboard: the rule and channel forms of the alerts page. Each
// form has a labelled field per setting (never a raw JSON box) and turns
// into the JSON body the API takes (see /api/v1/alert-rules and
// /api/v1/alert-channels in the README).
//
// Exports:
//   CHANNEL_TYPES            {type: {label, fields: [{key, label, kind, required, default, hint}]}}
//                            kind: text | url | secret | number | list | select (with options)
//   RULE_KINDS               ['threshold', 'offline', 'disk_full']
//   ruleForm(rule, opts)     {form, body()}: a form for a new rule (rule null) or for editing
//                            `rule` (its name fixed); opts.channels: known channel names;
//                            body() answers the JSON to send, or throws Error(message);
//                            test: its "Test" button, testResult: the box for the dry run
//   channelForm(ch)          {form, body()}: likewise for a channel; editing keeps its name
//                            and type. The server shows secrets redacted ("••••"): such a
//                            field starts empty, and left empty it sends the value as
//                            listed, which tells the server to keep the stored secret
//   channelTarget(ch)        where a channel sends to, in a few words (from its redacted config)
'use strict';

import { el, field } from './dom.js';
import { DASH, text, toNumber, isObject } from './format.js';

export const RULE_KINDS = ['threshold', 'offline', 'disk_full'];
/** What the server shows in place of a secret. */
const REDACTED = '\u2022\u2022\u2022\u2022';
const KIND_LABEL = { threshold: 'Threshold', offline: 'Offline', disk_full: 'Disk full (predicted)' };
const METRICS = [
  'cpu_usage', 'ram_used_percent', 'disk_used_percent:*', 'disk_used_percent:/', 'load_one',
  'load_five', 'swap_used_mb', 'temperature:*', 'net_rx_bytes_per_sec:*', 'net_tx_bytes_per_sec:*',
  'process_count', 'custom:*',
];

const URL_FIELD = (label, hint) => ({ key: 'url', label, kind: 'url', required: true, hint });

export const CHANNEL_TYPES = {
  webhook: {
    label: 'Webhook',
    fields: [
      URL_FIELD('URL', 'Receives the alert as JSON (POST).'),
      { key: 'secret', label: 'Signing secret (optional)', kind: 'secret', hint: 'Signs the body: header X-Tailmon-Signature: sha256=<HMAC>.' },
    ],
  },
  slack: { label: 'Slack', fields: [URL_FIELD('Incoming webhook URL', 'From Slack: Apps › Incoming Webhooks.')] },
  discord: { label: 'Discord', fields: [URL_FIELD('Webhook URL', 'From Discord: channel settings › Integrations › Webhooks.')] },
  teams: { label: 'Microsoft Teams', fields: [URL_FIELD('Incoming webhook URL', 'From Teams: the channel’s Workflows or Connectors.')] },
  ntfy: {
    label: 'ntfy',
    fields: [
      { key: 'url', label: 'Server', kind: 'url', default: 'https://ntfy.sh' },
      { key: 'topic', label: 'Topic', kind: 'text', required: true },
      { key: 'token', label: 'Access token (optional)', kind: 'secret' },
    ],
  },
  telegram: {
    label: 'Telegram',
    fields: [
      { key: 'bot_token', label: 'Bot token', kind: 'secret', required: true, hint: 'From @BotFather.' },
      { key: 'chat_id', label: 'Chat id', kind: 'text', required: true },
      { key: 'api_url', label: 'API address', kind: 'url', default: 'https://api.telegram.org' },
    ],
  },
  pagerduty: {
    label: 'PagerDuty',
    fields: [
      { key: 'routing_key', label: 'Routing key (Events API v2)', kind: 'secret', required: true },
      { key: 'url', label: 'Events address', kind: 'url', default: 'https://events.pagerduty.com/v2/enqueue' },
    ],
  },
  alertmanager: {
    label: 'Prometheus Alertmanager',
    fields: [URL_FIELD('Alertmanager address', 'For example http://alertmanager:9093 (alerts go to /api/v2/alerts).')],
  },
  email: {
    label: 'Email (SMTP)',
    fields: [
      { key: 'host', label: 'SMTP server', kind: 'text', required: true },
      { key: 'port', label: 'Port', kind: 'number', default: '587' },
      { key: 'security', label: 'Security', kind: 'select', options: [['starttls', 'STARTTLS'], ['tls', 'TLS'], ['none', 'None (local relays only)']], default: 'starttls' },
      { key: 'username', label: 'User name (optional)', kind: 'text' },
      { key: 'password', label: 'Password (optional)', kind: 'secret' },
      { key: 'from', label: 'From', kind: 'text', required: true, hint: 'For example Tailmon <tailmon@example.net>.' },
      { key: 'to', label: 'To (comma separated)', kind: 'list', required: true },
    ],
  },
  twilio: {
    label: 'SMS (Twilio)',
    fields: [
      { key: 'account_sid', label: 'Account SID', kind: 'text', required: true },
      { key: 'auth_token', label: 'Auth token', kind: 'secret', required: true },
      { key: 'from', label: 'From number', kind: 'text', required: true, hint: 'In E.164 form: +15551234567.' },
      { key: 'to', label: 'To numbers (comma separated)', kind: 'list', required: true },
      { key: 'api_url', label: 'API address', kind: 'url', default: 'https://api.twilio.com' },
    ],
  },
};

function listOf(v) {
  if (Array.isArray(v)) return v.map(text).filter((x) => x !== null && x !== '');
  const t = text(v);
  return t === null || t === '' ? [] : [t];
}

function splitList(s) {
  return s.split(/[,\n]+/).map((x) => x.trim()).filter((x) => x !== '');
}

function input(type, name, value) {
  const i = el('input');
  i.type = type;
  i.name = name;
  if (value !== undefined && value !== null) i.value = String(value);
  return i;
}

function hintFor(form, textValue) {
  if (!textValue) return;
  const last = form.lastElementChild;
  const h = el('p', 'hint', textValue);
  if (last) last.append(h);
}

function select(name, options, value) {
  const s = el('select');
  s.name = name;
  for (const [v, label] of options) {
    const o = el('option', null, label);
    o.value = v;
    s.append(o);
  }
  if (value !== undefined && value !== null) s.value = String(value);
  return s;
}

function actions(submitLabel) {
  const row = el('div', 'dialog-actions');
  const cancel = el('button', 'button', 'Cancel');
  cancel.type = 'button';
  cancel.dataset.action = 'cancel';
  const submit = el('button', 'button primary', submitLabel);
  submit.type = 'submit';
  row.append(cancel, submit);
  return row;
}

// ---------- rules ----------

/** A rule's fields, whichever way the API nests them. */
export function ruleOf(raw) {
  return isObject(raw) && isObject(raw.rule) ? { ...raw.rule, source: raw.source } : raw;
}

export function ruleForm(rule, opts) {
  const r = rule ? ruleOf(rule) : {};
  const editing = !!rule;
  const form = el('form', 'alerts-form');
  form.id = 'rule-form';
  form.noValidate = true;
  const title = el('h2', null, editing ? 'Edit rule ' + (text(r.name) || DASH) : 'New rule');
  form.append(title);

  const name = input('text', 'name', text(r.name));
  name.required = true;
  name.readOnly = editing;
  name.autocomplete = 'off';
  field(form, 'Name', name);

  const kind = select('kind', RULE_KINDS.map((k) => [k, KIND_LABEL[k]]), RULE_KINDS.includes(r.kind) ? r.kind : 'threshold');
  field(form, 'Kind', kind);

  const thresholdBox = el('fieldset', 'alerts-fieldset');
  thresholdBox.append(el('legend', null, 'Condition'));
  const metric = input('text', 'metric', text(r.metric));
  metric.setAttribute('list', 'metric-names');
  metric.autocomplete = 'off';
  const names = el('datalist');
  names.id = 'metric-names';
  for (const m of METRICS) {
    const o = el('option');
    o.value = m;
    names.append(o);
  }
  field(thresholdBox, 'Metric', metric);
  hintFor(thresholdBox, 'Any history metric; a * in the key matches every disk, sensor or interface.');
  thresholdBox.append(names);
  const op = select('op', [['>', '>'], ['>=', '≥'], ['<', '<'], ['<=', '≤']], text(r.op) || '>');
  field(thresholdBox, 'Operator', op);
  const threshold = input('number', 'threshold', toNumber(r.threshold));
  threshold.step = 'any';
  field(thresholdBox, 'Threshold', threshold);
  const hysteresis = input('number', 'hysteresis', toNumber(r.hysteresis));
  hysteresis.step = 'any';
  hysteresis.min = '0';
  field(thresholdBox, 'Hysteresis (optional, metric units)', hysteresis);
  form.append(thresholdBox);

  const diskBox = el('fieldset', 'alerts-fieldset');
  diskBox.append(el('legend', null, 'Prediction'));
  const within = input('text', 'within', text(r.within) || '24h');
  field(diskBox, 'Fires when a disk fills within', within);
  const fitWindow = input('text', 'window', text(r.window) || '6h');
  field(diskBox, 'Trend fitted over', fitWindow);
  form.append(diskBox);

  const forInput = input('text', 'for', text(r.for) || (editing ? '' : '1m'));
  forInput.placeholder = '1m';
  field(form, 'Holds for', forInput);
  hintFor(form, 'Durations: 30s, 5m, 1h, 2d.');
  const severity = select('severity', [['warning', 'Warning'], ['critical', 'Critical']], text(r.severity) || 'warning');
  field(form, 'Severity', severity);
  const devices = input('text', 'devices', text(r.devices) || '*');
  field(form, 'Devices (glob on the device id)', devices);
  const channels = input('text', 'channels', listOf(r.channels).join(', '));
  channels.autocomplete = 'off';
  field(form, 'Channels (comma separated)', channels);
  const known = opts && Array.isArray(opts.channels) ? opts.channels : [];
  hintFor(form, known.length ? 'Known channels: ' + known.join(', ') : null);
  const repeat = input('text', 'repeat', text(r.repeat));
  repeat.placeholder = '4h';
  field(form, 'Repeat while firing (optional)', repeat);
  const esc = Array.isArray(r.escalate) && isObject(r.escalate[0]) ? r.escalate[0] : {};
  const escAfter = input('text', 'escalate_after', text(esc.after));
  escAfter.placeholder = '15m';
  field(form, 'Escalate after (optional, unless acknowledged)', escAfter);
  const escChannels = input('text', 'escalate_channels', listOf(esc.channels).join(', '));
  field(form, 'Escalate to channels (comma separated)', escChannels);

  const error = el('p', 'form-error');
  error.id = 'rule-form-error';
  error.hidden = true;
  const row = actions(editing ? 'Save rule' : 'Create rule');
  const test = el('button', 'button', 'Test');
  test.type = 'button';
  test.dataset.action = 'test';
  test.title = 'Which devices this rule matches now (nothing is saved or sent)';
  row.insertBefore(test, row.lastElementChild);
  const testResult = el('div', 'rule-test-result');
  testResult.id = 'rule-test-result';
  testResult.setAttribute('aria-live', 'polite');
  testResult.hidden = true;
  form.append(error, row, testResult);

  function showKind() {
    thresholdBox.hidden = kind.value !== 'threshold';
    diskBox.hidden = kind.value !== 'disk_full';
  }
  kind.addEventListener('change', showKind);
  showKind();

  function body() {
    const out = { name: name.value.trim(), kind: kind.value };
    if (out.name === '') throw new Error('A rule needs a name.');
    if (kind.value === 'threshold') {
      out.metric = metric.value.trim();
      if (out.metric === '') throw new Error('A threshold rule needs a metric.');
      out.op = op.value;
      const t = toNumber(threshold.value);
      if (t === null) throw new Error('A threshold rule needs a threshold (a number).');
      out.threshold = t;
      const h = toNumber(hysteresis.value);
      if (h !== null) out.hysteresis = h;
    }
    if (kind.value === 'disk_full') {
      if (within.value.trim() !== '') out.within = within.value.trim();
      if (fitWindow.value.trim() !== '') out.window = fitWindow.value.trim();
    }
    if (forInput.value.trim() !== '') out.for = forInput.value.trim();
    out.severity = severity.value;
    out.devices = devices.value.trim() || '*';
    out.channels = splitList(channels.value);
    if (repeat.value.trim() !== '') out.repeat = repeat.value.trim();
    const after = escAfter.value.trim();
    const to = splitList(escChannels.value);
    if (after !== '' || to.length) {
      if (after === '' || !to.length) throw new Error('An escalation needs both a delay and channels.');
      out.escalate = [{ after, channels: to }];
    }
    return out;
  }
  return { form, body, error, test, testResult };
}

// ---------- channels ----------

/** A channel's config, whichever way the API nests it. */
export function channelOf(raw) {
  if (!isObject(raw)) return {};
  return isObject(raw.config) ? { ...raw.config, name: raw.name, source: raw.source } : raw;
}

export function channelTarget(raw) {
  const c = channelOf(raw);
  const t = (k) => text(c[k]);
  switch (c.type) {
    case 'ntfy':
      return (t('url') || 'https://ntfy.sh') + ' · ' + (t('topic') || DASH);
    case 'telegram':
      return 'chat ' + (t('chat_id') || DASH);
    case 'pagerduty':
      return t('url') || 'PagerDuty Events v2';
    case 'email':
      return listOf(c.to).join(', ') || DASH;
    case 'twilio':
      return listOf(c.to).join(', ') || DASH;
    default:
      return t('url') || DASH;
  }
}

export function channelForm(raw) {
  const editing = !!raw;
  const c = editing ? channelOf(raw) : {};
  const form = el('form', 'alerts-form');
  form.id = 'channel-form';
  form.noValidate = true;
  form.append(el('h2', null, editing ? 'Edit channel ' + (text(c.name) || DASH) : 'New channel'));
  const name = input('text', 'name', text(c.name));
  name.required = true;
  name.readOnly = editing;
  name.autocomplete = 'off';
  field(form, 'Name', name);
  const types = Object.keys(CHANNEL_TYPES);
  const type = select('type', types.map((k) => [k, CHANNEL_TYPES[k].label]), types.includes(c.type) ? c.type : 'webhook');
  type.id = 'channel-type';
  type.disabled = editing;
  field(form, 'Type', type);
  const box = el('fieldset', 'alerts-fieldset');
  box.id = 'channel-fields';
  const legend = el('legend', null, '');
  form.append(box);
  let inputs = []; // [{def, node}]

  function drawFields() {
    box.textContent = '';
    const spec = CHANNEL_TYPES[type.value];
    legend.textContent = spec.label;
    box.append(legend);
    box.dataset.type = type.value;
    inputs = [];
    for (const def of spec.fields) {
      const current = editing && c.type === type.value ? c[def.key] : undefined;
      let node;
      if (def.kind === 'select') {
        node = select(def.key, def.options, text(current) || def.default);
      } else {
        const kindType = { url: 'url', secret: 'password', number: 'number' }[def.kind] || 'text';
        let value = def.kind === 'list' ? listOf(current).join(', ') : text(current);
        if ((value === null || value === '') && !editing && def.default) value = def.default;
        const redacted = typeof value === 'string' && value.includes(REDACTED);
        node = input(kindType, def.key, redacted ? '' : value);
        if (redacted) {
          node.dataset.listed = value;
          node.placeholder = 'Stored \u2014 leave empty to keep it';
        }
        node.autocomplete = def.kind === 'secret' ? 'new-password' : 'off';
        if (def.default) node.placeholder = def.default;
      }
      node.required = !!def.required;
      node.dataset.key = def.key;
      field(box, def.label, node);
      hintFor(box, def.hint);
      if (node.dataset.listed) hintFor(box, 'The server keeps it secret; type a new one to replace it.');
      inputs.push({ def, node });
    }
  }
  type.addEventListener('change', drawFields);
  drawFields();

  const error = el('p', 'form-error');
  error.id = 'channel-form-error';
  error.hidden = true;
  form.append(error, actions(editing ? 'Save channel' : 'Create channel'));

  function body() {
    const out = { name: name.value.trim(), type: type.value };
    if (out.name === '') throw new Error('A channel needs a name.');
    for (const { def, node } of inputs) {
      const v = node.value.trim();
      if (v === '') {
        if (node.dataset.listed) {
          out[def.key] = node.dataset.listed;
          continue;
        }
        if (def.required) throw new Error(def.label + ' is required.');
        continue;
      }
      if (def.kind === 'number') {
        const n = toNumber(v);
        if (n === null || !Number.isInteger(n)) throw new Error(def.label + ' must be a whole number.');
        out[def.key] = n;
      } else if (def.kind === 'list') {
        out[def.key] = splitList(v);
      } else {
        out[def.key] = v;
      }
    }
    return out;
  }
  return { form, body, error };
}
