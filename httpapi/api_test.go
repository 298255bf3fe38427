package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/storage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	hub    *collab.Hub
	store  *storage.Bolt
	srv    *httptest.Server
	ready  atomic.Bool
	errors sync.Map // code -> *atomic.Int64

	changesMu sync.Mutex
	changes   []string // VersionChanged calls: "doc action name -> version name"
}

// newFixture runs the API over a real hub and bbolt file; authority may be nil.
func newFixture(tb testing.TB, authority *auth.Authority, maxBody int64) *fixture {
	tb.Helper()
	st, err := storage.OpenBolt(filepath.Join(tb.TempDir(), "collabd.db"), storage.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	hub, err := collab.New(collab.Config{Store: st})
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{hub: hub, store: st}
	f.ready.Store(true)
	api, err := New(Config{
		Hub: hub, Backup: st.Backup, Compact: st.CompactOnline, Auth: authority, MaxBodyBytes: maxBody,
		Ready: f.ready.Load,
		OnError: func(code string) {
			v, _ := f.errors.LoadOrStore(code, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		},
		VersionChanged: func(doc, action, name string, v *storage.Version) {
			c := doc + " " + action + " " + name
			if v != nil {
				c += " -> " + v.Name
			}
			f.changesMu.Lock()
			f.changes = append(f.changes, c)
			f.changesMu.Unlock()
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	f.srv = httptest.NewServer(api)
	tb.Cleanup(func() {
		f.srv.Close()
		if err := hub.Close(context.Background()); err != nil {
			tb.Error(err)
		}
		st.Close()
	})
	return f
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("status %d body %q: %v", r.status, r.body, err)
	}
}

func (r resp) errCode(tb testing.TB) string {
	tb.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	r.json(tb, &e)
	if e.Error.Message == "" {
		tb.Fatalf("error without message: %s", r.body)
	}
	return e.Error.Code
}

func (f *fixture) do(tb testing.TB, method, path string, body io.Reader, hdr ...string) resp {
	tb.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, b}
}

func (f *fixture) put(tb testing.TB, doc, text string, ifMatch uint64, hdr ...string) uint64 {
	tb.Helper()
	r := f.do(tb, "PUT", "/api/docs/"+doc, strings.NewReader(text), append([]string{"If-Match", fmt.Sprint(ifMatch)}, hdr...)...)
	if r.status != 200 {
		tb.Fatalf("PUT %s @%d: %d %s", doc, ifMatch, r.status, r.body)
	}
	var v struct{ Rev uint64 }
	r.json(tb, &v)
	return v.Rev
}

func (f *fixture) get(tb testing.TB, doc string, hdr ...string) (uint64, string) {
	tb.Helper()
	r := f.do(tb, "GET", "/api/docs/"+doc, nil, hdr...)
	if r.status != 200 {
		tb.Fatalf("GET %s: %d %s", doc, r.status, r.body)
	}
	var v struct {
		ID   string
		Rev  uint64
		Text string
	}
	r.json(tb, &v)
	if v.ID != doc {
		tb.Fatalf("GET %s: id %q", doc, v.ID)
	}
	if et := r.header.Get("ETag"); et != fmt.Sprintf("%q", fmt.Sprint(v.Rev)) {
		tb.Fatalf("ETag %q for rev %d", et, v.Rev)
	}
	return v.Rev, v.Text
}

func TestHealthAndReady(t *testing.T) {
	f := newFixture(t, nil, 0)
	if r := f.do(t, "GET", "/healthz", nil); r.status != 200 || string(r.body) != "ok\n" {
		t.Fatalf("healthz %d %q", r.status, r.body)
	}
	if r := f.do(t, "GET", "/readyz", nil); r.status != 200 {
		t.Fatalf("readyz %d", r.status)
	}
	f.ready.Store(false)
	if r := f.do(t, "GET", "/readyz", nil); r.status != 503 {
		t.Fatalf("readyz when not ready: %d", r.status)
	}
}

func TestDocumentRoundTrip(t *testing.T) {
	f := newFixture(t, nil, 0)
	if rev, text := f.get(t, "notes"); rev != 0 || text != "" {
		t.Fatalf("new doc: %d %q", rev, text)
	}
	if rev := f.put(t, "notes", "hello", 0); rev != 1 {
		t.Fatalf("first PUT rev %d", rev)
	}
	// Quoted and weak If-Match forms.
	r := f.do(t, "PUT", "/api/docs/notes", strings.NewReader("hello world"), "If-Match", `W/"1"`)
	if r.status != 200 {
		t.Fatalf("PUT W/\"1\": %d %s", r.status, r.body)
	}
	if rev, text := f.get(t, "notes"); rev != 2 || text != "hello world" {
		t.Fatalf("after two PUTs: %d %q", rev, text)
	}
	// Based on rev 1 while rev 2 exists: merged, not lost.
	if rev := f.put(t, "notes", "HELLO hello", 1); rev != 3 {
		t.Fatalf("stale PUT rev %d", rev)
	}
	if _, text := f.get(t, "notes"); text != "HELLO hello world" {
		t.Fatalf("merged text %q", text)
	}
	// A PUT changing nothing makes no revision.
	if rev := f.put(t, "notes", "HELLO hello world", 3); rev != 3 {
		t.Fatalf("no-op PUT rev %d", rev)
	}
	// Unicode counts in code points.
	if rev := f.put(t, "notes", "HELLO 👍🏽 hello world é", 3); rev != 4 {
		t.Fatalf("unicode PUT rev %d", rev)
	}
	if _, text := f.get(t, "notes"); text != "HELLO 👍🏽 hello world é" {
		t.Fatalf("unicode text %q", text)
	}

	var rv struct {
		Rev  uint64
		Text string
	}
	f.do(t, "GET", "/api/docs/notes/revisions/2", nil).json(t, &rv)
	if rv.Rev != 2 || rv.Text != "hello world" {
		t.Fatalf("revision 2: %+v", rv)
	}

	var hist struct {
		Revs []storage.Revision
	}
	f.do(t, "GET", "/api/docs/notes/history", nil).json(t, &hist)
	if len(hist.Revs) != 4 || hist.Revs[0].Rev != 4 || hist.Revs[3].Rev != 1 || hist.Revs[3].Ins != 5 {
		t.Fatalf("history %+v", hist.Revs)
	}
	if !strings.HasPrefix(hist.Revs[0].Client, "http:") || hist.Revs[0].Time.Location() != time.UTC {
		t.Fatalf("history line %+v", hist.Revs[0])
	}
	f.do(t, "GET", "/api/docs/notes/history?before=3&limit=1", nil).json(t, &hist)
	if len(hist.Revs) != 1 || hist.Revs[0].Rev != 2 {
		t.Fatalf("history before=3 limit=1: %+v", hist.Revs)
	}
	f.do(t, "GET", "/api/docs/never-written/history", nil).json(t, &hist)
	if hist.Revs == nil || len(hist.Revs) != 0 {
		t.Fatalf("history of an empty doc: %+v", hist.Revs)
	}

	r = f.do(t, "GET", "/api/docs/notes/diff?from=1&to=2", nil)
	if r.status != 200 || string(bytes.TrimSpace(r.body)) != `{"diffs":[[0,"hello"],[1," world"]]}` {
		t.Fatalf("diff: %d %s", r.status, r.body)
	}
}

func TestListSortedByUpdate(t *testing.T) {
	f := newFixture(t, nil, 0)
	var l struct {
		Docs []docInfo
	}
	r := f.do(t, "GET", "/api/docs", nil)
	if r.status != 200 || string(bytes.TrimSpace(r.body)) != `{"docs":[]}` {
		t.Fatalf("empty list: %d %s", r.status, r.body)
	}
	f.put(t, "a", "1", 0)
	time.Sleep(2 * time.Millisecond) // distinct update times
	f.put(t, "b", "1", 0)
	time.Sleep(2 * time.Millisecond)
	f.put(t, "a", "12", 1)
	f.do(t, "GET", "/api/docs", nil).json(t, &l)
	if len(l.Docs) != 2 || l.Docs[0].ID != "a" || l.Docs[0].Rev != 2 || l.Docs[1].ID != "b" || l.Docs[1].Rev != 1 {
		t.Fatalf("list %+v", l.Docs)
	}
	if l.Docs[0].Created.IsZero() || l.Docs[0].Updated.Before(l.Docs[1].Updated) {
		t.Fatalf("list times %+v", l.Docs)
	}
}

func TestDelete(t *testing.T) {
	f := newFixture(t, nil, 0)
	f.put(t, "gone", "text", 0)
	if r := f.do(t, "DELETE", "/api/docs/gone", nil); r.status != 204 {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	if rev, text := f.get(t, "gone"); rev != 0 || text != "" {
		t.Fatalf("after delete: %d %q", rev, text)
	}
	if r := f.do(t, "DELETE", "/api/docs/gone", nil); r.status != 404 || r.errCode(t) != "not_found" {
		t.Fatalf("second DELETE: %d %s", r.status, r.body)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t, nil, 64)
	f.put(t, "d", "abc", 0)
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code                     string
	}{
		{"PUT without If-Match", "PUT", "/api/docs/d", "x", nil, 428, "bad_request"},
		{"PUT bad If-Match", "PUT", "/api/docs/d", "x", []string{"If-Match", "*"}, 400, "bad_request"},
		{"PUT If-Match ahead", "PUT", "/api/docs/d", "x", []string{"If-Match", "7"}, 409, "conflict"},
		{"PUT invalid UTF-8", "PUT", "/api/docs/d", "a\xffb", []string{"If-Match", "1"}, 400, "bad_request"},
		{"PUT too large", "PUT", "/api/docs/d", strings.Repeat("x", 65), []string{"If-Match", "1"}, 413, "too_large"},
		{"GET invalid id", "GET", "/api/docs/bad%20id", "", nil, 400, "bad_request"},
		{"GET id too long", "GET", "/api/docs/" + strings.Repeat("a", 129), "", nil, 400, "bad_request"},
		{"revision not a number", "GET", "/api/docs/d/revisions/x", "", nil, 400, "bad_request"},
		{"revision ahead", "GET", "/api/docs/d/revisions/9", "", nil, 404, "not_found"},
		{"history bad limit", "GET", "/api/docs/d/history?limit=501", "", nil, 400, "bad_request"},
		{"history zero limit", "GET", "/api/docs/d/history?limit=0", "", nil, 400, "bad_request"},
		{"history bad before", "GET", "/api/docs/d/history?before=-1", "", nil, 400, "bad_request"},
		{"diff missing to", "GET", "/api/docs/d/diff?from=0", "", nil, 400, "bad_request"},
		{"diff ahead", "GET", "/api/docs/d/diff?from=0&to=5", "", nil, 404, "not_found"},
		{"unknown route", "GET", "/api/nope", "", nil, 404, "not_found"},
		{"wrong method", "POST", "/api/docs/d", "", nil, 405, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := f.do(t, tc.method, tc.path, body, tc.hdr...)
			if r.status != tc.status || r.errCode(t) != tc.code {
				t.Fatalf("%d %s; want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
	if rev, text := f.get(t, "d"); rev != 1 || text != "abc" {
		t.Fatalf("document changed by bad requests: %d %q", rev, text)
	}
	if v, ok := f.errors.Load("bad_request"); !ok || v.(*atomic.Int64).Load() < 8 {
		t.Fatalf("OnError did not count bad_request")
	}
}

// TestHistoryPageLimits: the page size and its bound are the wire
// contract's (doc:history has the same ones).
func TestHistoryPageLimits(t *testing.T) {
	f := newFixture(t, nil, 0)
	const revs = contract.DefaultHistoryLimit + 5
	for i := range revs {
		sub := collab.Submission{Doc: "h", Client: "c", Seq: uint64(i + 1), BaseRev: uint64(i), Op: json.RawMessage(`["x"]`)}
		if _, err := f.hub.Submit(context.Background(), sub); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		query  string
		status int
		n      int
	}{
		{"", 200, contract.DefaultHistoryLimit},
		{"?limit=3", 200, 3},
		{fmt.Sprintf("?limit=%d", contract.MaxHistoryLimit), 200, revs},
		{fmt.Sprintf("?limit=%d", contract.MaxHistoryLimit+1), 400, 0},
		{"?limit=0", 400, 0},
	} {
		t.Run(tc.query, func(t *testing.T) {
			r := f.do(t, "GET", "/api/docs/h/history"+tc.query, nil)
			if r.status != tc.status {
				t.Fatalf("status %d %s, want %d", r.status, r.body, tc.status)
			}
			if tc.status != 200 {
				return
			}
			var page struct{ Revs []storage.Revision }
			r.json(t, &page)
			if len(page.Revs) != tc.n || page.Revs[0].Rev != revs {
				t.Fatalf("%d revisions %+v, want %d from the head %d", len(page.Revs), page.Revs, tc.n, revs)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t, nil, 0)
	f.put(t, "k", "base", 0)
	r1 := f.put(t, "k", "base+x", 1, "Idempotency-Key", "abc")
	r2 := f.put(t, "k", "base+x", 1, "Idempotency-Key", "abc")
	if r1 != 2 || r2 != 2 {
		t.Fatalf("repeated PUT revs %d, %d; want 2, 2", r1, r2)
	}
	if rev, text := f.get(t, "k"); rev != 2 || text != "base+x" {
		t.Fatalf("after repeated PUT: %d %q", rev, text)
	}
	if r3 := f.put(t, "k", "base+x", 1); r3 != 3 {
		t.Fatalf("PUT without key applied again: rev %d, want 3", r3)
	}
}

func TestBackup(t *testing.T) {
	f := newFixture(t, nil, 0)
	f.put(t, "b1", "backed up", 0)
	r := f.do(t, "GET", "/api/backup", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/octet-stream" || !strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("backup: %d %v", r.status, r.header)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, r.body, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := storage.OpenBolt(path, storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	text, err := st.TextAt(context.Background(), "b1", 1)
	if err != nil || text != "backed up" {
		t.Fatalf("backup text %q, %v", text, err)
	}
}

func TestAuth(t *testing.T) {
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
	editor := tok(auth.Claims{User: "ed", Edit: []string{"team-*"}, View: []string{"pub"}})
	viewer := tok(auth.Claims{User: "vi", View: []string{"team-*"}})

	f.put(t, "team-a", "one", 0, editor...)
	f.put(t, "pub", "public", 0, admin...)
	f.put(t, "secret", "s", 0, admin...)

	var hist struct{ Revs []storage.Revision }
	f.do(t, "GET", "/api/docs/team-a/history", nil, viewer...).json(t, &hist)
	if len(hist.Revs) != 1 || hist.Revs[0].User != "ed" {
		t.Fatalf("history user %+v", hist.Revs)
	}

	for _, tc := range []struct {
		name, method, path string
		hdr                []string
		status             int
		code               string
	}{
		{"no token", "GET", "/api/docs/team-a", nil, 401, "unauthorized"},
		{"bad token", "GET", "/api/docs/team-a", []string{"Authorization", "Bearer nope"}, 401, "unauthorized"},
		{"basic auth", "GET", "/api/docs", []string{"Authorization", "Basic YTpi"}, 401, "unauthorized"},
		{"viewer PUT", "PUT", "/api/docs/team-a", append([]string{"If-Match", "1"}, viewer...), 403, "forbidden"},
		{"viewer DELETE", "DELETE", "/api/docs/team-a", viewer, 403, "forbidden"},
		{"editor outside patterns", "GET", "/api/docs/secret", editor, 403, "forbidden"},
		{"editor PUT on view doc", "PUT", "/api/docs/pub", append([]string{"If-Match", "1"}, editor...), 403, "forbidden"},
		{"backup needs every doc", "GET", "/api/backup", editor, 403, "forbidden"},
		{"backup without token", "GET", "/api/backup", nil, 401, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, tc.method, tc.path, strings.NewReader("changed"), tc.hdr...)
			if r.status != tc.status || r.errCode(t) != tc.code {
				t.Fatalf("%d %s; want %d %s", r.status, r.body, tc.status, tc.code)
			}
		})
	}
	if _, text := f.get(t, "team-a", viewer...); text != "one" {
		t.Fatalf("viewer read %q", text)
	}
	var l struct{ Docs []docInfo }
	f.do(t, "GET", "/api/docs", nil, editor...).json(t, &l)
	if len(l.Docs) != 2 {
		t.Fatalf("editor lists %+v, want team-a and pub", l.Docs)
	}
	if r := f.do(t, "GET", "/api/backup", nil, admin...); r.status != 200 || len(r.body) == 0 {
		t.Fatalf("admin backup %d", r.status)
	}
	// health endpoints need no token.
	if r := f.do(t, "GET", "/healthz", nil); r.status != 200 {
		t.Fatalf("healthz with auth on: %d", r.status)
	}
}

// TestPutConvergesWithConcurrentSubmits runs PUTs based on stale revisions
// while other clients submit ops straight to the hub: every edit of both
// kinds must be in the final text exactly once.
func TestPutConvergesWithConcurrentSubmits(t *testing.T) {
	f := newFixture(t, nil, 0)
	const doc = "race"
	f.put(t, doc, "|start|", 0)
	const submitters, perSubmitter, putters, perPutter = 3, 15, 3, 8
	var wg sync.WaitGroup
	errc := make(chan error, submitters+putters)
	for s := range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := fmt.Sprintf("sock%d", s)
			for i := range perSubmitter {
				// Insert at the front, on the revision last seen.
				rev, _, err := f.hub.Text(context.Background(), doc)
				if err != nil {
					errc <- err
					return
				}
				op, _ := json.Marshal([]any{fmt.Sprintf("<s%d.%d>", s, i)})
				if _, err := f.hub.Submit(context.Background(), collab.Submission{
					Doc: doc, Client: client, Seq: uint64(i + 1), BaseRev: rev, Op: op,
				}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for p := range putters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPutter {
				rev, text := f.get(t, doc)
				// Append a marker to the text read; by the time the PUT
				// arrives other edits have usually been committed.
				next := text + fmt.Sprintf("<p%d.%d>", p, i)
				r := f.do(t, "PUT", "/api/docs/"+doc, strings.NewReader(next), "If-Match", fmt.Sprint(rev))
				if r.status != 200 {
					errc <- fmt.Errorf("PUT @%d: %d %s", rev, r.status, r.body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	rev, text := f.get(t, doc)
	if want := uint64(1 + submitters*perSubmitter + putters*perPutter); rev != want {
		t.Fatalf("head %d, want %d", rev, want)
	}
	for s := range submitters {
		for i := range perSubmitter {
			if n := strings.Count(text, fmt.Sprintf("<s%d.%d>", s, i)); n != 1 {
				t.Fatalf("<s%d.%d> appears %d times in %q", s, i, n, text)
			}
		}
	}
	for p := range putters {
		for i := range perPutter {
			if n := strings.Count(text, fmt.Sprintf("<p%d.%d>", p, i)); n != 1 {
				t.Fatalf("<p%d.%d> appears %d times in %q", p, i, n, text)
			}
		}
	}
	if strings.Count(text, "|start|") != 1 {
		t.Fatalf("base text damaged: %q", text)
	}
}

// BenchmarkPut measures one PUT appending a line to a growing document
// (diff, op, one commit with fsync, JSON answer) over loopback HTTP.
func BenchmarkPut(b *testing.B) {
	f := newFixture(b, nil, 0)
	text, rev := "", uint64(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		text += fmt.Sprintf("line %d\n", i)
		rev = f.put(b, "bench", text, rev)
	}
}
