// The service worker: the page (index.html, app.js, editor.js, app.css and
// the chunks under /chunks/ it has loaded once) stays loadable
// without the network, so a reload while offline shows the document and its
// unsent edits. Network first, the cache only when the network fails; the
// API and Socket.IO are never touched.

const CACHE = 'collabd-shell-v3';
const SHELL = ['/', '/app.js', '/editor.js', '/app.css'];

self.addEventListener('install', (e) => {
  e.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(SHELL).then(() => addChunks(c)))
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
  // Chunks (languages, the Markdown preview, shared code) are cached as they
  // are first loaded; their names carry a content hash.
  const asset = (SHELL.includes(url.pathname) && url.pathname !== '/') || url.pathname.startsWith('/chunks/');
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

// addChunks caches every chunk editor.js can load, following the imports
// of each chunk (static ones and the literal import() of languages), so an
// offline reload finds all of them.
async function addChunks(cache) {
  const seen = new Set();
  const todo = ['/editor.js'];
  while (todo.length > 0) {
    const path = todo.pop();
    const res = await cache.match(path);
    if (!res) continue;
    for (const m of (await res.text()).matchAll(/["'](\.\/[\w./-]+\.js)["']/g)) {
      const chunk = new URL(m[1], self.location.origin + path).pathname;
      if (!chunk.startsWith('/chunks/') || seen.has(chunk)) continue;
      seen.add(chunk);
      await cache.add(chunk);
      todo.push(chunk);
    }
  }
}

// plain copies a cached response: one that followed a redirect cannot answer
// a navigation.
function plain(res) {
  if (!res.redirected) return res;
  return res.blob().then((body) => new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers }));
}
