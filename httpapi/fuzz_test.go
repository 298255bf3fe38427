package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAPI sends arbitrary requests to the API over a real hub: no request
// may panic it, every /api answer is JSON with an expected status, and the
// store stays consistent.
func FuzzAPI(f *testing.F) {
	fx := newFixture(f, nil, 1<<10)
	api, err := New(Config{Hub: fx.hub, Backup: fx.store.Backup, MaxBodyBytes: 1 << 10})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct {
		method, path, ifMatch, body string
	}{
		{"PUT", "/api/docs/f", "0", "hello"},
		{"PUT", "/api/docs/f", `"1"`, "hello world"},
		{"PUT", "/api/docs/f", "W/\"0\"", "concurrent"},
		{"PUT", "/api/docs/f", "", "no if-match"},
		{"PUT", "/api/docs/f", "99", "ahead"},
		{"PUT", "/api/docs/f", "1", "bad \xff utf8"},
		{"GET", "/api/docs/f", "", ""},
		{"GET", "/api/docs/f/history?before=2&limit=1", "", ""},
		{"GET", "/api/docs/f/revisions/1", "", ""},
		{"GET", "/api/docs/f/diff?from=0&to=1", "", ""},
		{"DELETE", "/api/docs/f", "", ""},
		{"GET", "/api/docs", "", ""},
		{"GET", "/api/docs/%00", "", ""},
		{"GET", "/api/docs/f/revisions/18446744073709551616", "", ""},
		{"POST", "/api/backup", "", ""},
		{"GET", "/readyz", "", ""},
	} {
		f.Add(seed.method, seed.path, seed.ifMatch, seed.body)
	}
	allowed := map[int]bool{200: true, 204: true, 400: true, 404: true, 405: true, 409: true, 413: true, 428: true}
	redirect := map[int]bool{301: true, 307: true, 308: true} // the mux cleans paths like /api//x
	f.Fuzz(func(t *testing.T, method, path, ifMatch, body string) {
		switch method {
		case "GET", "PUT", "DELETE", "POST", "HEAD":
		default:
			method = "GET"
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://collabd.test"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		if ifMatch != "" {
			req.Header["If-Match"] = []string{ifMatch}
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if redirect[rec.Code] {
			return
		}
		if !allowed[rec.Code] {
			t.Fatalf("%s %s: status %d %s", method, path, rec.Code, rec.Body)
		}
		if strings.HasPrefix(req.URL.Path, "/api/") && rec.Code != 204 && method != "HEAD" &&
			!(rec.Code == 200 && req.URL.Path == "/api/backup") && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: %d, body not JSON: %q", method, path, rec.Code, rec.Body)
		}
	})
	if err := fx.store.Check(context.Background()); err != nil {
		f.Fatalf("store check after fuzzing: %v", err)
	}
}
