// Tailmon sign-in page. No inline code (the Content-Security-Policy forbids it).
'use strict';

(function () {
  function init() {
    const form = document.getElementById('login-form');
    const error = document.getElementById('login-error');
    const submit = document.getElementById('login-submit');
    if (new URLSearchParams(window.location.search).has('signed_out')) {
      document.getElementById('signed-out').hidden = false;
    }
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.hidden = true;
      submit.disabled = true;
      try {
        const res = await fetch('api/v1/login', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({
            username: document.getElementById('username').value,
            password: document.getElementById('password').value,
          }),
        });
        if (res.ok) {
          // The dashboard: this page's folder, without its trailing slash
          // when nested (`/monitor`, which a nested router answers; it
          // does not answer `/monitor/`).
          const home = new URL('./', document.baseURI);
          if (home.pathname.length > 1) home.pathname = home.pathname.slice(0, -1);
          window.location.assign(home.href);
          return;
        }
        let message = 'Sign-in failed (HTTP ' + res.status + ')';
        try {
          const body = await res.json();
          if (body && typeof body.error === 'string') message = body.error;
        } catch (err) {
          /* keep the generic message */
        }
        error.textContent = message;
        error.hidden = false;
      } catch (err) {
        error.textContent = 'The server cannot be reached.';
        error.hidden = false;
      } finally {
        submit.disabled = false;
      }
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
