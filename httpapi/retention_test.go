package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/storage"
)

func TestRetentionAndGone(t *testing.T) {
	f := newFixture(t, nil, 0)
	var rev uint64
	for i := 1; i <= 30; i++ {
		rev = f.put(t, "r", strings.Repeat("line\n", i), rev)
	}
	var pol retentionJSON
	f.do(t, "GET", "/api/docs/r/retention", nil).json(t, &pol)
	if pol != (retentionJSON{}) {
		t.Fatalf("default policy %+v", pol)
	}
	if r := f.do(t, "PUT", "/api/docs/none/retention", strings.NewReader(`{"revisions":5}`)); r.status != 404 {
		t.Fatalf("policy of a missing document: %d %s", r.status, r.body)
	}
	if r := f.do(t, "PUT", "/api/docs/r/retention", strings.NewReader(`{}`)); r.status != 400 {
		t.Fatalf("empty policy: %d %s", r.status, r.body)
	}
	r := f.do(t, "PUT", "/api/docs/r/retention", strings.NewReader(`{"revisions":5,"days":0}`))
	if r.status != 200 {
		t.Fatalf("PUT retention: %d %s", r.status, r.body)
	}
	f.do(t, "GET", "/api/docs/r/retention", nil).json(t, &pol)
	if pol != (retentionJSON{Revisions: 5, Own: true}) {
		t.Fatalf("own policy %+v", pol)
	}
	if n, err := f.hub.FoldAll(context.Background()); err != nil || n != 25 {
		t.Fatalf("fold: %d %v", n, err)
	}
	for _, path := range []string{"/api/docs/r/revisions/3", "/api/docs/r/diff?from=1&to=30"} {
		r := f.do(t, "GET", path, nil)
		var e struct {
			Error struct {
				Code     string
				Message  string
				Earliest uint64
			}
		}
		r.json(t, &e)
		if r.status != http.StatusGone || e.Error.Code != "gone" || e.Error.Earliest != 25 || !strings.Contains(e.Error.Message, "25") {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
	}
	if r := f.do(t, "GET", "/api/docs/r/revisions/25", nil); r.status != 200 {
		t.Fatalf("text at the horizon: %d %s", r.status, r.body)
	}
	var hist struct{ Revs []storage.Revision }
	f.do(t, "GET", "/api/docs/r/history?limit=10", nil).json(t, &hist)
	if len(hist.Revs) != 6 || !hist.Revs[5].Folded || hist.Revs[5].From != 1 || hist.Revs[5].Rev != 25 {
		t.Fatalf("history %+v", hist.Revs)
	}
	if !strings.Contains(string(f.do(t, "GET", "/api/docs/r/history?limit=10", nil).body), `"folded":true,"from":1`) {
		t.Fatal("the folded line does not say folded and from")
	}
	if r := f.do(t, "DELETE", "/api/docs/r/retention", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE retention: %d %s", r.status, r.body)
	}
	f.do(t, "GET", "/api/docs/r/retention", nil).json(t, &pol)
	if pol.Own {
		t.Fatalf("policy after DELETE %+v", pol)
	}
	// The PUT path keeps working from the head.
	f.put(t, "r", "after folding", rev)
}

func TestCompactEndpoint(t *testing.T) {
	authority, err := auth.New([]byte("a test secret of 32 bytes.......!"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, authority, 0)
	tok := func(c auth.Claims) []string {
		s, err := authority.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		return []string{"Authorization", "Bearer " + s}
	}
	admin := tok(auth.Claims{User: "admin", Edit: []string{"*"}})
	f.put(t, "a", strings.Repeat("text ", 1000), 0, admin...)
	f.put(t, "b", "other", 0, admin...)
	for _, hdr := range [][]string{
		tok(auth.Claims{User: "ed", Edit: []string{"a"}}),
		tok(auth.Claims{User: "vi", View: []string{"*"}}),
	} {
		if r := f.do(t, "POST", "/api/compact", nil, hdr...); r.status != 403 || r.errCode(t) != "forbidden" {
			t.Fatalf("compact without edit access to everything: %d %s", r.status, r.body)
		}
	}
	if r := f.do(t, "DELETE", "/api/docs/a", nil, admin...); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	r := f.do(t, "POST", "/api/compact", nil, admin...)
	var res struct{ BytesBefore, BytesAfter, FileBefore, FileAfter int64 }
	r.json(t, &res)
	if r.status != 200 || res.FileBefore == 0 || res.FileAfter == 0 {
		t.Fatalf("compact: %d %s", r.status, r.body)
	}
	if _, text := f.get(t, "b", admin...); text != "other" {
		t.Fatalf("b after the compaction: %q", text)
	}
	f.put(t, "b", "other and more", 1, admin...)
}
