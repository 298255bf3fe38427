// Package frontend holds the collabd browser editor: its JavaScript sources
// (src/, built with esbuild by `npm run build`) and the built bundle in dist/,
// which is committed and embedded in the Go binary.
//
// FS returns the bundle as a read-only file system rooted at dist/: index.html,
// app.js and app.css. index.html refers to the other two by absolute paths
// (/app.js, /app.css), so the server mounts FS at the root of its URL space.
//
// Concurrency: FS may be called from any goroutine; the returned fs.FS is
// read-only and safe for concurrent use.
package frontend
