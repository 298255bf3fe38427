package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/collabd/collabd/frontend"
	"github.com/collabd/collabd/internal/contract"
)

// editorFile is one file of the embedded editor bundle. Its bytes stay in
// the binary: each request opens the file again (the embedded file is a
// seekable reader over the binary's data, no copy in the heap).
type editorFile struct {
	path  string
	ctype string
	etag  string
}

// contentTypes are the Content-Types of the bundle's kinds of files. A
// table of our own rather than mime.TypeByExtension, which loads the
// system's MIME databases into the heap for good (about 370 KiB).
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".webmanifest": "application/manifest+json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".woff2":       "font/woff2",
	".txt":         "text/plain; charset=utf-8",
}

// pageCSP is the Content-Security-Policy of the pages (index.html): scripts
// only from collabd itself, so nothing a co-editor writes into a document
// can run in another person's page even if it got past the Markdown
// preview's sanitizer (inline scripts, event handler attributes and
// javascript: URLs are all refused). Styles are not restricted: CodeMirror
// adds <style> elements.
const pageCSP = "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// editorHandler serves the editor bundle: its files at their paths
// (index.html, app.js, editor.js, app.css, sw.js and the code-split chunks
// under chunks/), index.html also at / and at /d/{id} for every valid
// document id. JavaScript files may be loaded by pages of other origins
// (editor.js and its chunks are ES modules, which browsers fetch with CORS),
// so they carry Access-Control-Allow-Origin: *; they are public. Files are
// revalidated on every use (Cache-Control: no-cache, with a content ETag):
// their names are fixed, so a new binary must be picked up at once.
type editorHandler struct {
	bundle fs.FS
	files  map[string]*editorFile // by path without the leading slash; read-only after newEditorHandler
}

func newEditorHandler() (*editorHandler, error) {
	h := &editorHandler{bundle: frontend.FS(), files: map[string]*editorFile{}}
	err := fs.WalkDir(h.bundle, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := h.bundle.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		sum := sha256.New()
		var head [512]byte // what DetectContentType looks at
		n, _ := io.ReadFull(f, head[:])
		sum.Write(head[:n])
		if _, err := io.Copy(sum, f); err != nil {
			return err
		}
		ct := contentTypes[path.Ext(p)]
		if ct == "" {
			ct = http.DetectContentType(head[:n])
		}
		h.files[p] = &editorFile{path: p, ctype: ct, etag: `"` + hex.EncodeToString(sum.Sum(nil)[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if h.files["index.html"] == nil {
		return nil, fs.ErrNotExist
	}
	return h, nil
}

func (h *editorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	var f *editorFile
	switch {
	case p == "/":
		f = h.files["index.html"]
	case strings.HasPrefix(p, "/d/"):
		if contract.ValidDocID(p[len("/d/"):]) {
			f = h.files["index.html"]
		}
	default:
		f = h.files[strings.TrimPrefix(p, "/")]
	}
	if f == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.ctype)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", f.etag)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if f == h.files["index.html"] {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.Header().Set("Content-Security-Policy", pageCSP)
	} else if path.Ext(f.path) == ".js" {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	}
	file, err := h.bundle.Open(f.path)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer file.Close()
	body, ok := file.(io.ReadSeeker)
	if !ok { // embedded files are seekable; this guards a change of FS
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, body)
}
