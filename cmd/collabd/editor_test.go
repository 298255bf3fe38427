package main

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/collabd/collabd/frontend"
)

// Every file of the bundle, the code-split chunks under chunks/ included,
// is served at its path with its content type; JavaScript with CORS (the
// editor module and its chunks are loaded as ES modules, also by embedding
// pages of other origins); the page with its Content-Security-Policy.
func TestEditorServesEveryBundleFile(t *testing.T) {
	h, err := newEditorHandler()
	if err != nil {
		t.Fatal(err)
	}
	var chunks int
	err = fs.WalkDir(frontend.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, err := fs.ReadFile(frontend.FS(), p)
		if err != nil {
			return err
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/"+p, nil))
		if rec.Code != http.StatusOK || rec.Body.String() != string(want) {
			t.Errorf("/%s: %d, %d bytes, want the %d bytes embedded", p, rec.Code, rec.Body.Len(), len(want))
		}
		ct := rec.Header().Get("Content-Type")
		switch {
		case strings.HasSuffix(p, ".js"):
			if ct != "text/javascript; charset=utf-8" {
				t.Errorf("/%s: Content-Type %q", p, ct)
			}
			if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("/%s: no Access-Control-Allow-Origin", p)
			}
			if strings.HasPrefix(p, "chunks/") {
				chunks++
			}
		case strings.HasSuffix(p, ".css"):
			if ct != "text/css; charset=utf-8" {
				t.Errorf("/%s: Content-Type %q", p, ct)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if chunks == 0 {
		t.Error("no chunks under chunks/: the languages are not split out")
	}
	for _, p := range []string{"/", "/d/notes.md"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: CSP %q, CORS %q", p, csp, rec.Header().Get("Access-Control-Allow-Origin"))
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/chunks/nope.js", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("/chunks/nope.js: %d", rec.Code)
	}
}
