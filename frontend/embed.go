package frontend

import (
	"embed"
	"io/fs"
)

// dist is the built bundle; `npm run build` writes it and `npm test` checks
// that it matches the sources.
//
//go:embed dist
var dist embed.FS

// FS returns the built editor bundle rooted at dist/ (index.html, app.js,
// app.css and the service worker sw.js).
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// fs.Sub fails only for an invalid path; "dist" is valid.
		panic("frontend: " + err.Error())
	}
	return sub
}
