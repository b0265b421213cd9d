// Tailmon service worker: keeps the page shell (HTML, CSS, JS, vendor
// files, icons) so the dashboard opens without the network; data (api/…)
// always goes to the network, and the page says how old what it shows is.
//
// Shell files: network first (a new release is picked up at once), the
// cached copy when the network fails. Pages (navigations) likewise, cached
// by their address once they loaded while signed in.
'use strict';

const CACHE = 'tailmon-shell-v2';
const SHELL = [
  'index.html',
  'device.html',
  'alerts.html',
  'login.html',
  'manifest.webmanifest',
  'css/base.css',
  'css/device.css',
  'css/alerts.css',
  'js/api.js',
  'js/admin.js',
  'js/alerts.js',
  'js/alerts-data.js',
  'js/alerts-forms.js',
  'js/charts.js',
  'js/device.js',
  'js/device-alerts.js',
  'js/device-charts.js',
  'js/report-metrics.js',
  'js/dom.js',
  'js/fleet.js',
  'js/fleet-alerts.js',
  'js/format.js',
  'js/login.js',
  'js/prefs.js',
  'js/shell.js',
  'js/theme-boot.js',
  'vendor/uPlot.iife.min.js',
  'vendor/uPlot.min.css',
  'icons/icon-192.png',
  'icons/icon-512.png',
  'icons/maskable-192.png',
  'icons/maskable-512.png',
];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) =>
      // One missing file (say, a vendor file not shipped) must not stop the rest.
      Promise.all(
        SHELL.map((path) =>
          cache.add(new URL(path, self.location).href).catch(() => undefined),
        ),
      ),
    ).then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

function isData(url) {
  const base = new URL('./', self.location);
  return url.pathname.startsWith(base.pathname + 'api/') || url.pathname.endsWith('/healthz');
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || isData(url)) return;
  event.respondWith(
    fetch(request)
      .then((response) => {
        // Keep good answers only: not a redirect to the login page.
        if (response.ok && !response.redirected && response.type === 'basic') {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(request, copy)).catch(() => undefined);
        }
        return response;
      })
      .catch(() =>
        caches.match(request, { ignoreSearch: request.mode === 'navigate' }).then((hit) => {
          if (hit) return hit;
          if (request.mode === 'navigate') {
            return caches.match(new URL('index.html', self.location).href).then(
              (page) => page || Response.error(),
            );
          }
          return Response.error();
        }),
      ),
  );
});
