// Doorstep's service worker, shared by its pages: served at /<app>/sw.js (scope /<app>/) with
// __APP__, __VERSION__ and __SHELL__ filled in by service/api/pages.py.
//
// The page and its files are kept in a cache and served from it first, so the page opens in a
// basement with no signal. API calls (/v1/...) are never touched here: the page keeps the last
// answer itself and queues what it records (shared/outbox.js), so a failed call is visible to it.
const APP = "__APP__";
const CACHE = `doorstep-${APP}-__VERSION__`;
const SHELL = __SHELL__;

self.addEventListener("install", (event) => {
  // API calls bypass this worker altogether where the browser can say so (static routing, Chromium
  // 123+): they are the page's own requests, so the page sees every failure and no worker stands
  // between it and the network.
  const routed = event.addRoutes
    ? event.addRoutes({ condition: { urlPattern: { pathname: "/v1/*" } }, source: "network" }).catch(() => {})
    : Promise.resolve();
  event.waitUntil(Promise.all([routed, caches.open(CACHE).then((cache) => cache.addAll(SHELL))])
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(
        names.filter((n) => n.startsWith(`doorstep-${APP}-`) && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || url.pathname.startsWith("/v1/")) {
    return;
  }
  event.respondWith(
    caches.open(CACHE)
      .then((cache) => cache.match(event.request, { ignoreSearch: true }))
      .then((hit) => hit || fetch(event.request)));
});
