package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/storage"
)

// post sends a JSON body and returns the response.
func (f *fixture) post(tb testing.TB, path string, body any, hdr ...string) resp {
	tb.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	return f.do(tb, "POST", path, strings.NewReader(string(b)), append([]string{"Content-Type", "application/json"}, hdr...)...)
}

func (f *fixture) postRev(tb testing.TB, path string, body any) uint64 {
	tb.Helper()
	r := f.post(tb, path, body)
	if r.status != 200 {
		tb.Fatalf("POST %s %v: %d %s", path, body, r.status, r.body)
	}
	var v struct{ Rev *uint64 }
	r.json(tb, &v)
	if v.Rev == nil {
		tb.Fatalf("POST %s: no rev in %s", path, r.body)
	}
	return *v.Rev
}

// TestOpWrites: POST /ops is sequenced like a socket op: transformed over
// what came after its base, applied once per (client, seq), and seen by a
// live subscriber as a normal record.
func TestOpWrites(t *testing.T) {
	f := newFixture(t, nil, 0)
	var mu sync.Mutex
	var recs []storage.Record
	sub, err := f.hub.Subscribe(context.Background(), "ops", func(r storage.Record) {
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()

	if rev := f.postRev(t, "/api/docs/ops/ops", map[string]any{"rev": 0, "op": []any{"hello"}, "client": "script-1", "seq": 1}); rev != 1 {
		t.Fatalf("first op rev %d", rev)
	}
	// Made on rev 1 while rev 2 exists: transformed.
	if rev := f.postRev(t, "/api/docs/ops/ops", map[string]any{"rev": 1, "op": []any{5, " world"}, "client": "script-2", "seq": 1}); rev != 2 {
		t.Fatalf("second op rev %d", rev)
	}
	if rev := f.postRev(t, "/api/docs/ops/ops", map[string]any{"rev": 1, "op": []any{">"}, "client": "script-1", "seq": 2}); rev != 3 {
		t.Fatalf("stale op rev %d", rev)
	}
	// A resubmission (same client, seq, base) applies nothing and answers
	// the first revision.
	for range 3 {
		if rev := f.postRev(t, "/api/docs/ops/ops", map[string]any{"rev": 1, "op": []any{">"}, "client": "script-1", "seq": 2}); rev != 3 {
			t.Fatalf("resubmission rev %d, want 3", rev)
		}
	}
	if rev, text := f.get(t, "ops"); rev != 3 || text != ">hello world" {
		t.Fatalf("text %d %q", rev, text)
	}
	// Without client and seq: applied, under a random client id.
	if rev := f.postRev(t, "/api/docs/ops/ops", map[string]any{"rev": 3, "op": []any{12, "!"}}); rev != 4 {
		t.Fatalf("anonymous op rev %d", rev)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(recs) != 4 {
		t.Fatalf("subscriber got %d records, want 4", len(recs))
	}
	if r := recs[2]; r.Rev != 3 || r.Client != "script-1" || r.Seq != 2 || string(r.Op) != `[">"]` {
		t.Fatalf("record 3: %+v op %s", r, r.Op)
	}
	if !strings.HasPrefix(recs[3].Client, "http:") {
		t.Fatalf("anonymous client %q", recs[3].Client)
	}
}

func TestOpWriteErrors(t *testing.T) {
	f := newFixture(t, nil, 0)
	f.postRev(t, "/api/docs/e/ops", map[string]any{"rev": 0, "op": []any{"abc"}})
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"not json", `{`, 400, "bad_request"},
		{"no rev", `{"op":["x"]}`, 400, "bad_request"},
		{"no op", `{"rev":1}`, 400, "bad_request"},
		{"bad op", `{"rev":1,"op":[{"x":1}]}`, 400, "bad_request"},
		{"op past the end", `{"rev":1,"op":[9,"x"]}`, 400, "bad_request"},
		{"rev ahead", `{"rev":7,"op":["x"]}`, 409, "conflict"},
		{"negative rev", `{"rev":-1,"op":["x"]}`, 400, "bad_request"},
		{"client without seq", `{"rev":1,"op":["x"],"client":"c"}`, 400, "bad_request"},
		{"seq without client", `{"rev":1,"op":["x"],"seq":3}`, 400, "bad_request"},
		{"fractional seq", `{"rev":1,"op":["x"],"client":"c","seq":1.5}`, 400, "bad_request"},
		{"long client", `{"rev":1,"op":["x"],"client":"` + strings.Repeat("c", 129) + `","seq":1}`, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, "POST", "/api/docs/e/ops", strings.NewReader(tc.body))
			if r.status != tc.status || r.errCode(t) != tc.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
		})
	}
	if r := f.do(t, "POST", "/api/docs/bad%20id/ops", strings.NewReader(`{"rev":0,"op":["x"]}`)); r.status != 400 {
		t.Fatalf("bad id: %d %s", r.status, r.body)
	}
	if r := f.do(t, "GET", "/api/docs/e/ops", nil); r.status != 405 {
		t.Fatalf("GET ops: %d", r.status)
	}
	if rev, text := f.get(t, "e"); rev != 1 || text != "abc" {
		t.Fatalf("errors changed the document: %d %q", rev, text)
	}
}

func TestAppend(t *testing.T) {
	f := newFixture(t, nil, 0)
	if rev := f.postRev(t, "/api/docs/log/append", map[string]any{"text": "line 1\n"}); rev != 1 {
		t.Fatalf("first append rev %d", rev)
	}
	if rev := f.postRev(t, "/api/docs/log/append", map[string]any{"text": "línea 2 👍\n"}); rev != 2 {
		t.Fatalf("second append rev %d", rev)
	}
	// Based on rev 1: lands at the end of the text at rev 1, transformed
	// over rev 2 (sequenced first at the same position, so it goes first).
	for range 2 {
		if rev := f.postRev(t, "/api/docs/log/append", map[string]any{"text": "line 3\n", "rev": 1, "client": "logger", "seq": 1}); rev != 3 {
			t.Fatalf("append at rev 1 (and its retry): rev %d", rev)
		}
	}
	if rev := f.postRev(t, "/api/docs/log/append", map[string]any{"text": ""}); rev != 3 {
		t.Fatalf("empty append rev %d", rev)
	}
	if rev, text := f.get(t, "log"); rev != 3 || text != "line 1\nlínea 2 👍\nline 3\n" {
		t.Fatalf("text %d %q", rev, text)
	}
	for _, tc := range []struct{ name, body, code string }{
		{"no text", `{}`, "bad_request"},
		{"client without rev", `{"text":"x","client":"c","seq":1}`, "bad_request"},
		{"rev ahead", `{"text":"x","rev":9}`, "conflict"},
	} {
		if r := f.do(t, "POST", "/api/docs/log/append", strings.NewReader(tc.body)); r.errCode(t) != tc.code {
			t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
		}
	}
}

// TestOpWritesRacingEachOther: concurrent appends and front inserts from
// many HTTP writers, each sent twice, converge to one text holding each
// exactly once.
func TestOpWritesRacingEachOther(t *testing.T) {
	f := newFixture(t, nil, 0)
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= each; i++ {
				body := map[string]any{"rev": 0, "op": []any{fmt.Sprintf("<%d.%d>", w, i)}, "client": fmt.Sprintf("w%d", w), "seq": i}
				var first uint64
				for try := range 2 {
					r := f.post(t, "/api/docs/race/ops", body)
					var v struct{ Rev uint64 }
					if r.status != 200 || json.Unmarshal(r.body, &v) != nil {
						errs <- fmt.Errorf("writer %d op %d: %d %s", w, i, r.status, r.body)
						return
					}
					if try == 1 && v.Rev != first {
						errs <- fmt.Errorf("writer %d op %d: retry rev %d, first %d", w, i, v.Rev, first)
						return
					}
					first = v.Rev
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rev, text := f.get(t, "race")
	if rev != writers*each {
		t.Fatalf("head %d, want %d", rev, writers*each)
	}
	for w := range writers {
		for i := 1; i <= each; i++ {
			if n := strings.Count(text, fmt.Sprintf("<%d.%d>", w, i)); n != 1 {
				t.Fatalf("<%d.%d> %d times in %q", w, i, n, text)
			}
		}
	}
}

func TestOpWritesNeedEditAccess(t *testing.T) {
	authority, err := auth.New([]byte("0123456789abcdef0123"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, authority, 0)
	viewer, _ := authority.Mint(auth.Claims{User: "vic", View: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	editor, _ := authority.Mint(auth.Claims{User: "ann", Edit: []string{"*"}})
	body := `{"rev":0,"op":["x"]}`
	if r := f.do(t, "POST", "/api/docs/a/ops", strings.NewReader(body)); r.status != 401 {
		t.Fatalf("no token: %d", r.status)
	}
	if r := f.do(t, "POST", "/api/docs/a/ops", strings.NewReader(body), "Authorization", "Bearer "+viewer); r.status != 403 {
		t.Fatalf("viewer: %d", r.status)
	}
	if r := f.do(t, "POST", "/api/docs/a/append", strings.NewReader(`{"text":"x"}`), "Authorization", "Bearer "+viewer); r.status != 403 {
		t.Fatalf("viewer append: %d", r.status)
	}
	if r := f.do(t, "POST", "/api/docs/a/ops", strings.NewReader(body), "Authorization", "Bearer "+editor); r.status != 200 {
		t.Fatalf("editor: %d %s", r.status, r.body)
	}
	revs, err := f.hub.History(context.Background(), "a", 0, 10)
	if err != nil || len(revs) != 1 || revs[0].User != "ann" {
		t.Fatalf("history %+v %v", revs, err)
	}
}
