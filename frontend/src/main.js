// Entry point of the editor module (dist/editor.js), loaded by app.js.
//
// - An element with data-collabd-doc="<id>" on the page: embed mode, a live
//   editor in each such element, talking to the server app.js came from.
// - Else the collabd pages: "/" lists the documents, "/d/{id}" edits one.

import { editorPage } from './app/editorpage.js';
import { homePage } from './app/home.js';
import { docIdFromPath } from './app/ids.js';
import { openDocument } from './app/open.js';
import { savedUser } from './app/user.js';
import { randomColor } from './app/ids.js';

// The server this module came from (embedding pages load it from collabd's origin).
const origin = new URL(import.meta.url).origin;

window.collabd = { open: openDocument };

function main() {
  const embeds = document.querySelectorAll('[data-collabd-doc]');
  if (embeds.length > 0) {
    const user = savedUser() || { name: 'anonymous', color: randomColor() };
    for (const el of embeds) openDocument({ parent: /** @type {HTMLElement} */ (el), doc: el.getAttribute('data-collabd-doc'), user, url: origin });
    return;
  }
  const root = /** @type {HTMLElement} */ (document.getElementById('app'));
  const doc = docIdFromPath(location.pathname);
  if (doc) editorPage(root, doc);
  else if (location.pathname === '/' || location.pathname === '/index.html') homePage(root);
  else {
    document.title = 'Not found · collabd';
    root.innerHTML = '<main class="home"><section class="card"><h1>Not found</h1><p>This is not a valid document address. <a href="/">All documents</a></p></section></main>';
  }
  // Offline start: a service worker keeps the page itself loadable without
  // the network (secure contexts only: https or localhost).
  if ('serviceWorker' in navigator && window.isSecureContext) {
    navigator.serviceWorker.register('/sw.js').catch(() => {});
  }
}

main();
