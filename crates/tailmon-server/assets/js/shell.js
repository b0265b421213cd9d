// Tailmon dashboard: the frame around every page.
//
// Exports:
//   initShell({page})  fills <header id="topbar"> (brand, theme toggle, the
//                      organisation switcher for a user of two or more, who is signed
//                      in, change-own-password, admin menu, sign out), adds the
//                      stale-data banner, applies the theme, registers the service
//                      worker; resolves to {session, prefs}:
//                        session  GET api/v1/session ({auth, username, role, csrf_token},
//                                 plus organisation and organisations [{name, role}]
//                                 for a user of two or more) or {auth: 'unknown'}
//                        prefs    GET api/v1/preferences ({} when none)
//                      `page` is 'fleet', 'device' or 'alerts' (marks the nav link as
//                      current); the header links to the alerts page (#nav-alerts).
//   setStale(sinceMs)  shows "Stale data since …" (sinceMs: epoch ms of the last good
//                      data), or hides the banner for null
//   isAdmin(session)   whether the session may administer (role admin)
//   applyTheme(theme)  'system' | 'light' | 'dark' on the page (not saved)
'use strict';

import { getJSON, sendJSON, setCsrfToken, goToLogin, ApiError } from './api.js';
import { el, field, showError, setText } from './dom.js';
import { loadPrefs, savePrefs, THEMES } from './prefs.js';
import { fmtDateTime } from './format.js';

const THEME_KEY = 'tailmon-theme';
let banner = null;
let bannerTime = null;

export function isAdmin(session) {
  return !!session && session.role === 'admin';
}

export function applyTheme(theme) {
  const root = document.documentElement;
  if (theme === 'light' || theme === 'dark') root.dataset.theme = theme;
  else delete root.dataset.theme;
  const select = document.getElementById('theme-select');
  if (select) select.value = THEMES.includes(theme) ? theme : 'system';
}

function localTheme() {
  try {
    return localStorage.getItem(THEME_KEY) || 'system';
  } catch (err) {
    return 'system';
  }
}

function keepTheme(theme) {
  try {
    localStorage.setItem(THEME_KEY, theme);
  } catch (err) {
    /* nothing kept */
  }
}

export function setStale(sinceMs) {
  if (!banner) return;
  if (sinceMs === null || sinceMs === undefined) {
    banner.hidden = true;
    document.body.dataset.connection = 'ok';
    return;
  }
  const iso = Number.isFinite(sinceMs) ? new Date(sinceMs).toISOString() : '';
  bannerTime.setAttribute('datetime', iso);
  setText(bannerTime, fmtDateTime(sinceMs));
  banner.hidden = false;
  document.body.dataset.connection = 'lost';
}

function buildBanner() {
  banner = el('div', 'stale-banner');
  banner.id = 'stale-banner';
  banner.setAttribute('role', 'status');
  banner.hidden = true;
  bannerTime = el('time', null, '');
  banner.append('Stale data since ', bannerTime, ' \u2014 the server cannot be reached; retrying.');
  return banner;
}

function themeControl() {
  const wrap = el('div', 'theme-control');
  const select = el('select');
  select.id = 'theme-select';
  for (const [value, label] of [['system', 'System'], ['light', 'Light'], ['dark', 'Dark']]) {
    const o = el('option', null, label);
    o.value = value;
    select.append(o);
  }
  const label = el('label', 'visually-hidden', 'Theme');
  label.htmlFor = select.id;
  wrap.append(label, select);
  select.addEventListener('change', () => {
    const theme = select.value;
    applyTheme(theme);
    keepTheme(theme);
    savePrefs({ theme }).catch((err) => console.warn('tailmon: theme not saved', err));
  });
  return wrap;
}

function passwordDialog() {
  const dialog = el('dialog', 'dialog');
  dialog.id = 'password-dialog';
  dialog.setAttribute('aria-labelledby', 'password-dialog-title');
  const form = el('form', 'dialog-form');
  form.method = 'dialog';
  const title = el('h2', null, 'Change your password');
  title.id = 'password-dialog-title';
  form.append(title);
  const current = el('input');
  current.type = 'password';
  current.name = 'current_password';
  current.autocomplete = 'current-password';
  current.required = true;
  field(form, 'Current password', current);
  const next = el('input');
  next.type = 'password';
  next.name = 'new_password';
  next.autocomplete = 'new-password';
  next.required = true;
  field(form, 'New password', next);
  const again = el('input');
  again.type = 'password';
  again.autocomplete = 'new-password';
  again.required = true;
  field(form, 'New password again', again);
  const error = el('p', 'form-error');
  error.hidden = true;
  const done = el('p', 'form-ok', 'Password changed.');
  done.hidden = true;
  done.setAttribute('role', 'status');
  const actions = el('div', 'dialog-actions');
  const cancel = el('button', 'button', 'Close');
  cancel.type = 'button';
  cancel.addEventListener('click', () => dialog.close());
  const submit = el('button', 'button primary', 'Change password');
  submit.type = 'submit';
  actions.append(cancel, submit);
  form.append(error, done, actions);
  dialog.append(form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(error, null);
    done.hidden = true;
    if (next.value !== again.value) {
      showError(error, new ApiError(400, 'The two new passwords differ.'));
      return;
    }
    submit.disabled = true;
    try {
      const info = await sendJSON('POST', 'api/v1/session/password', {
        current_password: current.value,
        new_password: next.value,
      });
      if (info && typeof info.csrf_token === 'string') setCsrfToken(info.csrf_token);
      form.reset();
      done.hidden = false;
    } catch (err) {
      showError(error, err);
    } finally {
      submit.disabled = false;
    }
  });
  document.body.append(dialog);
  return dialog;
}

// What this browser kept of the organisation in view (the last fleet, the
// saved choices): not shown in another, nor to the next user.
function forgetLocalData() {
  try {
    localStorage.removeItem('tailmon-last-devices');
    localStorage.removeItem('tailmon-prefs');
  } catch (err) {
    /* nothing kept */
  }
}

// The organisation switcher: only for a user of two or more. Switching
// makes the session act in the chosen one, then loads the page anew (the
// fleet page from a device page: the device is the other organisation's).
function orgControl(session) {
  const orgs = session && Array.isArray(session.organisations) ? session.organisations : [];
  const wrap = el('div', 'org-control');
  wrap.id = 'org-control';
  wrap.hidden = true;
  if (session.auth !== 'session' || orgs.length < 2) return wrap;
  const select = el('select');
  select.id = 'org-select';
  select.title = 'Organisation';
  for (const org of orgs) {
    const o = el('option', null, String(org.name) + (org.role === 'admin' ? ' (admin)' : ''));
    o.value = String(org.name);
    select.append(o);
  }
  select.value = String(session.organisation || '');
  const label = el('label', 'visually-hidden', 'Organisation');
  label.htmlFor = select.id;
  wrap.append(label, select);
  wrap.hidden = false;
  select.addEventListener('change', async () => {
    select.disabled = true;
    try {
      await sendJSON('POST', 'api/v1/session/org', { organisation: select.value });
      forgetLocalData();
      if (document.body.dataset.page === 'device') window.location.assign('./');
      else window.location.reload();
    } catch (err) {
      select.value = String(session.organisation || '');
      select.disabled = false;
      console.warn('tailmon: organisation not switched', err);
    }
  });
  return wrap;
}

function userBox(session) {
  const box = el('div', 'user-box');
  box.id = 'user-box';
  box.hidden = true;
  if (!session || session.auth !== 'session') return box;
  const name = el('span', 'user-name', String(session.username || '') + (session.role ? ' (' + session.role + ')' : ''));
  name.id = 'user-name';
  const change = el('button', 'button subtle', 'Password');
  change.type = 'button';
  change.id = 'change-password';
  change.title = 'Change your password';
  let dialog = null;
  change.addEventListener('click', () => {
    if (!dialog) dialog = passwordDialog();
    dialog.showModal();
  });
  const out = el('button', 'button subtle signout', 'Sign out');
  out.type = 'button';
  out.id = 'signout';
  out.addEventListener('click', async () => {
    // What this browser kept of the fleet is not left behind for the next user.
    forgetLocalData();
    try {
      await sendJSON('POST', 'api/v1/logout');
    } catch (err) {
      /* signed out anyway */
    } finally {
      goToLogin(true);
    }
  });
  box.append(name, change, out);
  box.hidden = false;
  return box;
}

function adminButton(session) {
  const button = el('button', 'button subtle', 'Admin');
  button.type = 'button';
  button.id = 'admin-open';
  button.hidden = !(isAdmin(session) && session.auth === 'session');
  button.addEventListener('click', async () => {
    const admin = await import('./admin.js');
    admin.openAdmin(session);
  });
  return button;
}

function registerServiceWorker() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  try {
    const home = new URL('./', document.baseURI);
    let scope = home.pathname;
    // Nested (`/monitor`): the page itself has no trailing slash, so the
    // scope drops it (the server allows that with Service-Worker-Allowed).
    if (scope.length > 1) scope = scope.slice(0, -1);
    navigator.serviceWorker
      .register(new URL('sw.js', home).href, { scope })
      .catch((err) => console.warn('tailmon: no service worker', err));
  } catch (err) {
    /* the dashboard works without it */
  }
}

export async function initShell({ page }) {
  applyTheme(localTheme());
  const header = document.getElementById('topbar');
  let session = { auth: 'unknown' };
  const [s, prefs] = await Promise.all([
    getJSON('api/v1/session').catch(() => null),
    loadPrefs(),
  ]);
  if (s && typeof s === 'object') session = s;
  setCsrfToken(session.csrf_token);
  if (typeof prefs.theme === 'string' && THEMES.includes(prefs.theme)) {
    applyTheme(prefs.theme);
    keepTheme(prefs.theme);
  }
  if (header) {
    header.textContent = '';
    const brand = el('a', 'brand');
    brand.href = './';
    const mark = el('span', 'brand-mark');
    mark.setAttribute('aria-hidden', 'true');
    const name = el('span', 'brand-name', 'Tailmon');
    brand.append(mark, name);
    if (page === 'fleet') brand.setAttribute('aria-current', 'page');
    const tools = el('div', 'topbar-tools');
    const slot = el('div', 'topbar-slot');
    slot.id = 'topbar-slot';
    const alerts = el('a', 'button subtle nav-link', 'Alerts');
    alerts.id = 'nav-alerts';
    alerts.href = 'alerts.html';
    if (page === 'alerts') alerts.setAttribute('aria-current', 'page');
    tools.append(alerts, themeControl(), orgControl(session), adminButton(session), userBox(session));
    header.append(brand, slot, tools);
    header.after(buildBanner());
    applyTheme(document.documentElement.dataset.theme || 'system');
  }
  document.body.dataset.page = page || '';
  registerServiceWorker();
  return { session, prefs };
}
