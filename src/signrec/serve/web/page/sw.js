// Service worker: the page works offline after its first visit. `VERSION` and `FILES` (the page and the
// browser runtime) are written above this line by signrec (serve/web/bundle.py); a new VERSION replaces the copy.
// The model files are kept by the page itself (cache "signrec-model"): a server may guard them with a key.
const CACHE = `signrec-app-${VERSION}`;
const MODEL_CACHE = "signrec-model";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n !== CACHE && n !== MODEL_CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || !request.url.startsWith(self.registration.scope)) return;
  const path = new URL(request.url).pathname;
  if (/\/model\.(onnx|json)$/.test(path)) {   // network first: a retrained model is picked up when online
    event.respondWith(fetch(request).catch(() => caches.match(request, { ignoreSearch: true })
      .then((kept) => kept || Response.error())));
    return;
  }
  event.respondWith(caches.match(request, { ignoreSearch: true }).then((kept) => kept || fetch(request)));
});
