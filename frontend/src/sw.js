// The service worker: the page (index.html, app.js, app.css) stays loadable
// without the network, so a reload while offline shows the document and its
// unsent edits. Network first, the cache only when the network fails; the
// API and Socket.IO are never touched.

const CACHE = 'collabd-shell-v2';
const SHELL = ['/', '/app.js', '/app.css'];

self.addEventListener('install', (e) => {
  e.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (e) => {
  e.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  const page = req.mode === 'navigate' && (url.pathname === '/' || url.pathname === '/index.html' || url.pathname.startsWith('/d/'));
  const asset = SHELL.includes(url.pathname) && url.pathname !== '/';
  if (!page && !asset) return;
  e.respondWith(
    fetch(req)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          caches.open(CACHE).then((c) => c.put(page ? '/' : url.pathname, copy));
        }
        return res;
      })
      .catch(() => caches.match(page ? '/' : url.pathname).then((hit) => (hit ? plain(hit) : Response.error()))),
  );
});

// plain copies a cached response: one that followed a redirect cannot answer
// a navigation.
function plain(res) {
  if (!res.redirected) return res;
  return res.blob().then((body) => new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers }));
}
