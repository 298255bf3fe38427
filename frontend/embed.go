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
// editor.js, app.css, the service worker sw.js and chunks/).
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// fs.Sub fails only for an invalid path; "dist" is valid.
		panic("frontend: " + err.Error())
	}
	return sub
}
