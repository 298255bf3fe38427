// app.js: the bundle's entry for <script src=".../app.js"> (a classic
// script, as pages and embedding sites load it). It only loads the editor
// module, editor.js, from the same server; editor.js and its chunks are ES
// modules, so that languages and the Markdown preview load on demand
// (esbuild code splitting) and resolve against editor.js's own URL.
import(new URL('/editor.js', (document.currentScript && document.currentScript.src) || location.href).href);
