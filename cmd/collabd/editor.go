package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/collabd/collabd/frontend"
	"github.com/collabd/collabd/storage"
)

// editorFile is one file of the embedded editor bundle.
type editorFile struct {
	body  []byte
	ctype string
	etag  string
}

// editorHandler serves the editor bundle: its files at their paths
// (index.html, app.js, app.css, sw.js, ...), index.html also at / and at
// /d/{id} for every valid document id. Files are
// revalidated on every use (Cache-Control: no-cache, with a content ETag):
// their names are fixed, so a new binary must be picked up at once.
type editorHandler struct {
	files map[string]*editorFile // by path without the leading slash; read-only after newEditorHandler
}

func newEditorHandler() (*editorHandler, error) {
	h := &editorHandler{files: map[string]*editorFile{}}
	bundle := frontend.FS()
	err := fs.WalkDir(bundle, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(bundle, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = http.DetectContentType(b)
		}
		h.files[p] = &editorFile{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
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
		if storage.ValidDocID(p[len("/d/"):]) {
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
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
