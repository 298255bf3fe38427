// Package frontend holds the collabd browser editor: its JavaScript sources
// (src/, built with esbuild by `npm run build`) and the built bundle in dist/,
// which is committed and embedded in the Go binary.
//
// FS returns the bundle as a read-only file system rooted at dist/: index.html,
// app.js (a small classic script that loads the ES module editor.js),
// editor.js, app.css, sw.js and the code-split chunks under chunks/
// (languages, the Markdown preview, shared code; content-hashed names).
// index.html refers to them by absolute paths (/app.js, /editor.js,
// /app.css), so the server mounts FS at the root of its URL space.
//
// Concurrency: FS may be called from any goroutine; the returned fs.FS is
// read-only and safe for concurrent use.
package frontend
