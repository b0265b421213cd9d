// Tailmon dashboard: talking to the server. Every URL is relative
// ("api/v1/devices"), so the dashboard works under a path prefix.
//
// Exports:
//   ApiError                        Error with .status (HTTP status, 0 when unreachable)
//                                   and .message (the API's JSON `error` when it sent one)
//   getJSON(url)                    GET, parsed JSON; throws ApiError; a 401 sends the
//                                   browser to the login page
//   sendJSON(method, url, body)     POST/PUT/PATCH/DELETE with a JSON body (or none when
//                                   body is undefined), X-CSRF-Token added; answers the
//                                   parsed JSON (null when empty); throws ApiError
//   setCsrfToken(token)             the token sendJSON sends (shell.js sets it from the session)
//   serverNow()                     the server's clock in epoch ms (browser clock corrected
//                                   by the Date header of the last answer)
//   goToLogin(signedOut)            navigates to the login page (saying "signed out")
//   openLive(url, handlers, opts)   Server-Sent Events from `url` (e.g. "api/v1/live" or
//                                   "api/v1/live?device=ID"); handlers:
//                                     snapshot(list)  the whole list (array of DeviceSummary)
//                                     device(summary) one device changed
//                                     deleted(id)     a device was deleted (its id)
//                                     state(s)        {mode: 'live'|'polling', ok: bool,
//                                                      staleSince: ms|null}
//                                   When the stream breaks (or the server has none), polls
//                                   opts.pollUrl (default "api/v1/devices", filtered to the
//                                   stream's ?device=) every opts.pollMs (3000) and delivers
//                                   each answer as a snapshot, trying the stream again every
//                                   30 s. Answers {close()}.
'use strict';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

let csrfToken = '';
let clockOffsetMs = 0;
let leaving = false;

export function setCsrfToken(token) {
  csrfToken = typeof token === 'string' ? token : '';
}

export function serverNow() {
  return Date.now() + clockOffsetMs;
}

export function goToLogin(signedOut) {
  if (leaving) return;
  leaving = true;
  window.location.assign(new URL(signedOut ? 'login?signed_out=1' : 'login', document.baseURI).href);
}

function noteClock(res) {
  const date = res.headers.get('Date');
  const t = date ? Date.parse(date) : NaN;
  if (Number.isFinite(t)) {
    const off = t - Date.now();
    // Date has one-second resolution; only correct meaningful skew.
    clockOffsetMs = Math.abs(off) > 2000 ? off : 0;
  }
}

async function errorOf(res) {
  let message = 'HTTP ' + res.status;
  try {
    const body = await res.json();
    if (body && typeof body.error === 'string' && body.error !== '') message = body.error;
  } catch (err) {
    /* keep the generic message */
  }
  return new ApiError(res.status, message);
}

async function request(method, url, body) {
  const headers = { Accept: 'application/json' };
  // no-cache: always asks, but with the ETag it holds, so an unchanged
  // fleet costs a 304 and no body.
  const init = { method, credentials: 'same-origin', cache: 'no-cache', headers };
  if (method !== 'GET' && method !== 'HEAD') {
    headers['X-CSRF-Token'] = csrfToken;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), 15000);
  init.signal = ctrl.signal;
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, 'The server cannot be reached.');
  } finally {
    clearTimeout(timer);
  }
  noteClock(res);
  if (res.status === 401) {
    goToLogin();
    throw await errorOf(res);
  }
  if (!res.ok) throw await errorOf(res);
  const raw = await res.text();
  if (raw === '') return null;
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new ApiError(res.status, 'The server sent something that is not JSON.');
  }
}

export function getJSON(url) {
  return request('GET', url);
}

export function sendJSON(method, url, body) {
  return request(method, url, body);
}

function parseData(data) {
  try {
    return JSON.parse(data);
  } catch (err) {
    return undefined;
  }
}

export function openLive(url, handlers, opts) {
  const h = handlers || {};
  const options = opts || {};
  const pollMs = typeof options.pollMs === 'number' ? options.pollMs : 3000;
  let device = null;
  try {
    device = new URL(url, document.baseURI).searchParams.get('device');
  } catch (err) {
    device = null;
  }
  const pollUrl = options.pollUrl || 'api/v1/devices';
  let es = null;
  let pollTimer = null;
  let retryTimer = null;
  let closed = false;
  let polling = false;
  let staleSince = null;
  let lastGood = Date.now();

  function call(name, arg) {
    try {
      if (typeof h[name] === 'function') h[name](arg);
    } catch (err) {
      console.warn('tailmon: live handler', name, err);
    }
  }

  function report(mode, ok) {
    if (ok) {
      lastGood = Date.now();
      staleSince = null;
    } else if (staleSince === null) {
      staleSince = lastGood;
    }
    call('state', { mode, ok, staleSince });
  }

  async function poll() {
    if (closed) return;
    try {
      let list = await getJSON(pollUrl);
      if (!Array.isArray(list)) throw new ApiError(200, 'unexpected answer');
      if (device !== null) list = list.filter((d) => d && d.device_id === device);
      if (closed || !polling) return;
      call('snapshot', list);
      report('polling', true);
    } catch (err) {
      if (!closed && polling) report('polling', false);
    }
  }

  function startPolling() {
    if (polling || closed) return;
    polling = true;
    poll();
    pollTimer = setInterval(poll, pollMs);
  }

  function stopPolling() {
    polling = false;
    if (pollTimer !== null) clearInterval(pollTimer);
    pollTimer = null;
  }

  function connect() {
    retryTimer = null;
    if (closed) return;
    if (typeof EventSource !== 'function') {
      startPolling();
      return;
    }
    try {
      es = new EventSource(url, { withCredentials: true });
    } catch (err) {
      startPolling();
      return;
    }
    es.addEventListener('open', () => {
      stopPolling();
      report('live', true);
    });
    es.addEventListener('snapshot', (e) => {
      const list = parseData(e.data);
      if (Array.isArray(list)) call('snapshot', list);
      report('live', true);
    });
    es.addEventListener('device', (e) => {
      const d = parseData(e.data);
      if (d && typeof d === 'object') call('device', d);
      lastGood = Date.now();
    });
    es.addEventListener('deleted', (e) => {
      const d = parseData(e.data);
      if (d && typeof d.device_id === 'string') call('deleted', d.device_id);
    });
    es.addEventListener('error', () => {
      if (closed) return;
      // The browser retries by itself unless the stream was refused
      // (a 404, a wrong content type): then we retry it now and then.
      if (es.readyState === EventSource.CLOSED) {
        es = null;
        if (retryTimer === null) retryTimer = setTimeout(connect, 30000);
      }
      startPolling();
    });
  }

  connect();
  return {
    close() {
      closed = true;
      stopPolling();
      if (retryTimer !== null) clearTimeout(retryTimer);
      if (es) es.close();
    },
  };
}
