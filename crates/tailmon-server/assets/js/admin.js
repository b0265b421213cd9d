// Tailmon dashboard: administration, for signed-in admins (the server checks
// every request; this only offers the forms). Dialogs are <dialog>
// elements with labelled forms; errors show the API's JSON `error`.
//
// Exports:
//   openAdmin(session)     the admin dialog: agent tokens (add, list, revoke),
//                          users (add, role, new password, remove), devices (delete)
//   openAddAgent()         "Add agent": name, optional device pattern and device
//                          cap -> POST api/v1/tokens -> the token, shown once, with
//                          the command line, the install lines and the systemd unit
//                          (packaging/systemd/tailmon-agent.service) that use it
//   deleteDevice(id)       asks, then DELETE api/v1/devices/{id}; resolves to true
//                          when deleted
//   confirmAction(title, message, actionLabel)  resolves to true when confirmed
'use strict';

import { getJSON, sendJSON } from './api.js';
import { el, field, showError, setText } from './dom.js';
import { fmtDateTime, parseTime, DASH } from './format.js';

function dialogShell(id, titleText, wide) {
  let dialog = document.getElementById(id);
  if (dialog) dialog.remove();
  dialog = el('dialog', 'dialog' + (wide ? ' wide' : ''));
  dialog.id = id;
  dialog.setAttribute('aria-labelledby', id + '-title');
  const title = el('h2', null, titleText);
  title.id = id + '-title';
  document.body.append(dialog);
  dialog.addEventListener('close', () => dialog.remove());
  return { dialog, title };
}

function button(label, cls, id) {
  const b = el('button', 'button' + (cls ? ' ' + cls : ''), label);
  b.type = 'button';
  if (id) b.id = id;
  return b;
}

function input(type, name, opts) {
  const i = el('input');
  i.type = type;
  i.name = name;
  Object.assign(i, opts || {});
  return i;
}

function errorLine() {
  const p = el('p', 'form-error');
  p.hidden = true;
  return p;
}

export function confirmAction(titleText, message, actionLabel) {
  return new Promise((resolve) => {
    const { dialog, title } = dialogShell('confirm-dialog', titleText);
    dialog.setAttribute('role', 'alertdialog');
    const form = el('form', 'dialog-form');
    const text = el('p', null, message);
    const actions = el('div', 'dialog-actions');
    const cancel = button('Cancel', null, 'confirm-cancel');
    const ok = el('button', 'button danger', actionLabel);
    ok.type = 'submit';
    ok.id = 'confirm-ok';
    actions.append(cancel, ok);
    form.append(title, text, actions);
    dialog.append(form);
    let answer = false;
    cancel.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      answer = true;
      dialog.close();
    });
    dialog.addEventListener('close', () => resolve(answer));
    dialog.showModal();
    cancel.focus();
  });
}

export async function deleteDevice(id) {
  const sure = await confirmAction(
    'Delete this device?',
    'Delete \u201c' + id + '\u201d and all its history? If its agent still runs, it comes back with its next report.',
    'Delete device',
  );
  if (!sure) return false;
  try {
    await sendJSON('DELETE', 'api/v1/devices/' + encodeURIComponent(id));
    return true;
  } catch (err) {
    await confirmAction('Not deleted', err && err.message ? err.message : 'The device was not deleted.', 'OK');
    return false;
  }
}

// ---------- Add agent ----------

function serverUrl() {
  // This page's origin and base path, without the trailing slash.
  const home = new URL('./', document.baseURI).href;
  return home.endsWith('/') ? home.slice(0, -1) : home;
}

function shellQuote(s) {
  return "'" + String(s).replace(/'/g, "'\\''") + "'";
}

// packaging/systemd/tailmon-agent.service, word for word (a test compares
// them): the token is read from /etc/tailmon/agent.env, which only root reads.
const AGENT_UNIT = [
  "# Tailmon agent as a systemd service.",
  "#",
  "# Install: the binary at /usr/local/bin/tailmon-agent; the server's URL and",
  "# the agent's token in /etc/tailmon/agent.env (mode 0600, root's), e.g.",
  "#   TAILMON_SERVER_URL=https://monitor.example:3000/",
  "#   TAILMON_TOKEN=tmn_...",
  "#   TAILMON_DEVICE_ID=web-1      (when the token is bound to a pattern)",
  "# then: systemctl daemon-reload && systemctl enable --now tailmon-agent",
  "# The agent reads its configuration at start: apply a change with",
  "# `systemctl restart tailmon-agent`.",
  "[Unit]",
  "Description=Tailmon monitoring agent",
  "Documentation=https://github.com/sadopc/tailmon/blob/main/docs/packaging.md",
  "Wants=network-online.target",
  "After=network-online.target",
  "",
  "[Service]",
  "Type=exec",
  "EnvironmentFile=/etc/tailmon/agent.env",
  "ExecStart=/usr/local/bin/tailmon-agent",
  "Restart=always",
  "RestartSec=10",
  "UMask=0077",
  "",
  "# The agent keeps nothing on disk and only reads /proc, /sys and the sizes",
  "# of mounted filesystems: a user systemd makes for it (DynamicUser), no",
  "# privilege, no capability, a read-only view of the system. /proc is not",
  "# hidden (no ProtectProc=): the heaviest processes are read from it.",
  "DynamicUser=yes",
  "NoNewPrivileges=yes",
  "CapabilityBoundingSet=",
  "AmbientCapabilities=",
  "ProtectSystem=strict",
  "ProtectHome=read-only",
  "PrivateTmp=yes",
  "PrivateDevices=yes",
  "ProtectKernelTunables=yes",
  "ProtectKernelModules=yes",
  "ProtectKernelLogs=yes",
  "ProtectControlGroups=yes",
  "ProtectClock=yes",
  "ProtectHostname=yes",
  "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
  "RestrictNamespaces=yes",
  "RestrictRealtime=yes",
  "RestrictSUIDSGID=yes",
  "LockPersonality=yes",
  "MemoryDenyWriteExecute=yes",
  "SystemCallArchitectures=native",
  "SystemCallFilter=@system-service",
  "SystemCallFilter=~@privileged",
  "SystemCallErrorNumber=EPERM",
  "",
  "[Install]",
  "WantedBy=multi-user.target",
].join('\n');

function commandsFor(token) {
  const url = serverUrl();
  const oneLiner = 'TAILMON_SERVER_URL=' + shellQuote(url) + ' TAILMON_TOKEN=' + shellQuote(token) + ' tailmon-agent';
  const install = [
    'sudo install -m 0755 tailmon-agent /usr/local/bin/',
    'sudo install -d -m 0755 /etc/tailmon',
    'sudo install -m 0600 /dev/null /etc/tailmon/agent.env',
    "printf '%s\\n' " + shellQuote('TAILMON_SERVER_URL=' + url) + ' ' + shellQuote('TAILMON_TOKEN=' + token) + ' \\',
    '  | sudo tee /etc/tailmon/agent.env >/dev/null',
    'sudo install -m 0644 tailmon-agent.service /etc/systemd/system/',
    'sudo systemctl daemon-reload',
    'sudo systemctl enable --now tailmon-agent',
  ].join('\n');
  return { oneLiner, install, unit: AGENT_UNIT };
}

function copyButton(source, label) {
  const b = button(label || 'Copy');
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(source.textContent);
      setText(b, 'Copied');
    } catch (err) {
      // No clipboard (plain HTTP): select the text for a manual copy.
      const range = document.createRange();
      range.selectNodeContents(source);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      setText(b, 'Selected: press Ctrl+C');
    }
  });
  return b;
}

export function openAddAgent(onCreated) {
  const { dialog, title } = dialogShell('add-agent-dialog', 'Add agent', true);
  const form = el('form', 'dialog-form');
  // Checked here, with the message in the form's alert line.
  form.noValidate = true;
  const hint = el('p', 'hint', 'Creates a token for one or more agents. The token is shown once.');
  const name = field(form, 'Name', input('text', 'name', { required: true, maxLength: 128, id: 'agent-name', placeholder: 'e.g. web servers' }));
  const device = field(form, 'Device pattern (optional: * and ? match; empty: any device id)', input('text', 'device', { id: 'agent-device', placeholder: 'e.g. web-*' }));
  const max = field(form, 'Most devices (optional)', input('number', 'max_devices', { id: 'agent-max', min: 1, step: 1 }));
  const error = errorLine();
  const actions = el('div', 'dialog-actions');
  const cancel = button('Cancel');
  cancel.addEventListener('click', () => dialog.close());
  const create = el('button', 'button primary', 'Create token');
  create.type = 'submit';
  create.id = 'agent-create';
  actions.append(cancel, create);
  form.prepend(title, hint);
  form.append(error, actions);
  dialog.append(form);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(error, null);
    const body = { name: name.value.trim(), kind: 'agent' };
    if (body.name === '') {
      showError(error, new Error('Give the token a name.'));
      name.focus();
      return;
    }
    if (device.value.trim() !== '') body.device = device.value.trim();
    if (max.value !== '') {
      const n = Number(max.value);
      if (!Number.isInteger(n) || n < 1) {
        showError(error, new Error('Most devices: a whole number, 1 or more.'));
        max.focus();
        return;
      }
      body.max_devices = n;
    }
    create.disabled = true;
    try {
      const created = await sendJSON('POST', 'api/v1/tokens', body);
      const token = created && typeof created.token === 'string' ? created.token : '';
      showToken(dialog, title, token);
      if (typeof onCreated === 'function') onCreated(created);
    } catch (err) {
      showError(error, err);
    } finally {
      create.disabled = false;
    }
  });
  dialog.showModal();
  name.focus();
  return dialog;
}

function showToken(dialog, title, token) {
  const body = el('div', 'dialog-body');
  setText(title, 'Agent token created');
  const once = el('p', 'hint', 'Copy it now: the server keeps only a hash and cannot show it again.');
  const tokenPre = el('pre', 'code secret', token);
  tokenPre.id = 'agent-token';
  const { oneLiner, install, unit } = commandsFor(token);
  const runTitle = el('h3', null, 'Run the agent');
  const run = el('pre', 'code', oneLiner);
  run.id = 'agent-command';
  const unitTitle = el('h3', null, 'Or install it as a systemd service');
  const installHint = el('p', 'hint', 'With tailmon-agent and tailmon-agent.service (below, or packaging/systemd/ of the source) in the current folder:');
  const installPre = el('pre', 'code', install);
  installPre.id = 'agent-install';
  const unitPre = el('pre', 'code', unit);
  unitPre.id = 'agent-unit';
  const unitHint = el('p', 'hint', 'Add TAILMON_DEVICE_ID=\u2026 to /etc/tailmon/agent.env to name the device other than by its host name (needed when the token\u2019s device pattern does not match it).');
  const actions = el('div', 'dialog-actions');
  const done = button('Done', 'primary', 'agent-done');
  done.addEventListener('click', () => dialog.close());
  actions.append(done);
  const copyToken = copyButton(tokenPre, 'Copy token');
  body.append(title, once, tokenPre, copyToken, runTitle, run, copyButton(run, 'Copy command'),
    unitTitle, installHint, installPre, copyButton(installPre, 'Copy commands'), unitPre, copyButton(unitPre, 'Copy unit'), unitHint, actions);
  dialog.textContent = '';
  dialog.append(body);
  // The token first in view, with its copy button under the keyboard.
  copyToken.focus();
  dialog.scrollTop = 0;
}

// ---------- the admin dialog ----------

function table(headers) {
  const wrap = el('div', 'table-wrap');
  const t = el('table', 'admin-table');
  const head = el('tr');
  for (const h of headers) {
    const th = el('th', h === 'Created' ? 'col-created' : null, h);
    th.scope = 'col';
    head.append(th);
  }
  const thead = el('thead');
  thead.append(head);
  const tbody = el('tbody');
  t.append(thead, tbody);
  wrap.append(t);
  return { wrap, tbody };
}

function cell(row, value) {
  const td = el('td', null, value === null || value === undefined || value === '' ? DASH : String(value));
  row.append(td);
  return td;
}

async function tokensSection(box) {
  const section = el('section', 'admin-section');
  section.id = 'admin-tokens';
  const h = el('h3', null, 'Agents and tokens');
  const add = button('Add agent', 'primary', 'admin-add-agent');
  const error = errorLine();
  const { wrap, tbody } = table(['Name', 'Kind', 'Device ids', 'Devices', 'Created', '']);
  section.append(h, add, error, wrap);
  box.append(section);
  async function load() {
    showError(error, null);
    try {
      const list = await getJSON('api/v1/tokens');
      tbody.textContent = '';
      if (!Array.isArray(list) || list.length === 0) {
        const row = el('tr', 'empty-row');
        const td = el('td', 'empty', 'No tokens yet: “Add agent” makes one.');
        td.colSpan = 6;
        row.append(td);
        tbody.append(row);
      }
      for (const t of Array.isArray(list) ? list : []) {
        if (!t || typeof t !== 'object') continue;
        const row = el('tr');
        row.dataset.tokenId = String(t.id);
        cell(row, t.name);
        cell(row, t.kind);
        cell(row, t.kind === 'agent' ? (t.device || 'any') : null);
        // Written since the server started, of its cap.
        const n = Number.isInteger(t.devices) ? t.devices : null;
        const cap = Number.isInteger(t.device_cap) ? t.device_cap : Number.isInteger(t.max_devices) ? t.max_devices : null;
        cell(row, t.kind !== 'agent' ? null : (n === null ? '\u2014' : n) + ' of ' + (cap === null ? '\u2014' : cap));
        cell(row, fmtDateTime(parseTime(t.created_at))).className = 'col-created';
        const actions = el('td', 'actions');
        const revoke = button('Revoke', 'subtle');
        revoke.setAttribute('aria-label', 'Revoke token ' + String(t.name));
        revoke.addEventListener('click', async () => {
          const sure = await confirmAction('Revoke this token?', 'Agents using \u201c' + String(t.name) + '\u201d are refused from now on.', 'Revoke');
          if (!sure) return;
          try {
            await sendJSON('DELETE', 'api/v1/tokens/' + encodeURIComponent(t.id));
            load();
          } catch (err) {
            showError(error, err);
          }
        });
        actions.append(revoke);
        row.append(actions);
        tbody.append(row);
      }
    } catch (err) {
      showError(error, err);
    }
  }
  add.addEventListener('click', () => openAddAgent(() => load()));
  await load();
}

async function usersSection(box, session) {
  const section = el('section', 'admin-section');
  section.id = 'admin-users';
  const h = el('h3', null, 'Users');
  const error = errorLine();
  const { wrap, tbody } = table(['User', 'Role', 'Created', '']);
  const form = el('form', 'inline-form');
  form.id = 'user-add-form';
  const name = field(form, 'New user', input('text', 'username', { required: true, id: 'user-add-name', autocomplete: 'off' }));
  const password = field(form, 'Password', input('password', 'password', { required: true, id: 'user-add-password', autocomplete: 'new-password' }));
  const role = el('select');
  role.id = 'user-add-role';
  for (const r of ['viewer', 'admin']) {
    const o = el('option', null, r);
    o.value = r;
    role.append(o);
  }
  field(form, 'Role', role);
  const addButton = el('button', 'button primary', 'Add user');
  addButton.type = 'submit';
  addButton.id = 'user-add-submit';
  form.append(addButton);
  section.append(h, error, wrap, form);
  box.append(section);

  async function load() {
    try {
      const list = await getJSON('api/v1/users');
      tbody.textContent = '';
      for (const u of Array.isArray(list) ? list : []) {
        if (!u || typeof u.username !== 'string') continue;
        const row = el('tr');
        row.dataset.username = u.username;
        cell(row, u.username + (session && u.username === session.username ? ' (you)' : ''));
        const roleCell = el('td');
        const roleSelect = el('select');
        roleSelect.setAttribute('aria-label', 'Role of ' + u.username);
        for (const r of ['viewer', 'admin']) {
          const o = el('option', null, r);
          o.value = r;
          roleSelect.append(o);
        }
        roleSelect.value = u.role === 'admin' ? 'admin' : 'viewer';
        roleSelect.addEventListener('change', async () => {
          showError(error, null);
          try {
            await sendJSON('PATCH', 'api/v1/users/' + encodeURIComponent(u.username), { role: roleSelect.value });
          } catch (err) {
            showError(error, err);
            load();
          }
        });
        roleCell.append(roleSelect);
        row.append(roleCell);
        cell(row, fmtDateTime(parseTime(u.created_at))).className = 'col-created';
        const actions = el('td', 'actions');
        const pw = button('New password', 'subtle');
        pw.setAttribute('aria-label', 'Set a new password for ' + u.username);
        pw.addEventListener('click', () => newPassword(u.username, error));
        const rm = button('Remove', 'subtle');
        rm.setAttribute('aria-label', 'Remove user ' + u.username);
        rm.addEventListener('click', async () => {
          const sure = await confirmAction('Remove this user?', 'Remove \u201c' + u.username + '\u201d? Their sessions end at once.', 'Remove user');
          if (!sure) return;
          try {
            await sendJSON('DELETE', 'api/v1/users/' + encodeURIComponent(u.username));
            load();
          } catch (err) {
            showError(error, err);
          }
        });
        actions.append(pw, rm);
        row.append(actions);
        tbody.append(row);
      }
    } catch (err) {
      showError(error, err);
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(error, null);
    addButton.disabled = true;
    try {
      await sendJSON('POST', 'api/v1/users', { username: name.value.trim(), password: password.value, role: role.value });
      form.reset();
      load();
    } catch (err) {
      showError(error, err);
    } finally {
      addButton.disabled = false;
    }
  });
  await load();
}

function newPassword(username, outerError) {
  const { dialog, title } = dialogShell('user-password-dialog', 'New password for ' + username);
  const form = el('form', 'dialog-form');
  form.append(title);
  const pw = field(form, 'New password', input('password', 'password', { required: true, id: 'user-new-password', autocomplete: 'new-password' }));
  const hint = el('p', 'hint', 'Their sessions end; they sign in with the new password.');
  const error = errorLine();
  const actions = el('div', 'dialog-actions');
  const cancel = button('Cancel');
  cancel.addEventListener('click', () => dialog.close());
  const save = el('button', 'button primary', 'Set password');
  save.type = 'submit';
  save.id = 'user-new-password-save';
  actions.append(cancel, save);
  form.append(hint, error, actions);
  dialog.append(form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      await sendJSON('PATCH', 'api/v1/users/' + encodeURIComponent(username), { password: pw.value });
      dialog.close();
      showError(outerError, null);
    } catch (err) {
      showError(error, err);
    } finally {
      save.disabled = false;
    }
  });
  dialog.showModal();
  pw.focus();
}

async function devicesSection(box) {
  const section = el('section', 'admin-section');
  section.id = 'admin-devices';
  const h = el('h3', null, 'Devices');
  const error = errorLine();
  const { wrap, tbody } = table(['Device', 'Status', '']);
  section.append(h, error, wrap);
  box.append(section);
  async function load() {
    try {
      const list = await getJSON('api/v1/devices');
      tbody.textContent = '';
      for (const d of Array.isArray(list) ? list : []) {
        if (!d || typeof d.device_id !== 'string') continue;
        const row = el('tr');
        row.dataset.deviceId = d.device_id;
        cell(row, d.device_id);
        cell(row, typeof d.status === 'string' ? d.status : null);
        const actions = el('td', 'actions');
        const del = button('Delete', 'subtle');
        del.setAttribute('aria-label', 'Delete device ' + d.device_id);
        del.addEventListener('click', async () => {
          if (await deleteDevice(d.device_id)) load();
        });
        actions.append(del);
        row.append(actions);
        tbody.append(row);
      }
    } catch (err) {
      showError(error, err);
    }
  }
  await load();
}

export function openAdmin(session) {
  const { dialog, title } = dialogShell('admin-dialog', 'Administration', true);
  const body = el('div', 'dialog-body');
  const close = button('Close', null, 'admin-close');
  close.addEventListener('click', () => dialog.close());
  const head = el('div', 'dialog-actions dialog-head');
  head.append(title, close);
  body.append(head);
  dialog.append(body);
  dialog.showModal();
  tokensSection(body);
  usersSection(body, session);
  devicesSection(body);
  return dialog;
}
