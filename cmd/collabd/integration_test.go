package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/internal/sioclient"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/webhook"
)

// watcher is a socket member of a document that applies every record it
// receives, in order, to its own copy of the text.
type watcher struct {
	mu   sync.Mutex // guards the fields below
	rev  uint64
	text string
	recs []wireRec
	err  error
}

type wireRec struct {
	Doc    string
	Rev    uint64
	Op     json.RawMessage
	Client string
	Seq    uint64
	User   string
}

func (w *watcher) onEvent(name string, args []byte) {
	if name != "doc:op" {
		return
	}
	var recs []wireRec
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := json.Unmarshal(args, &recs); err != nil || len(recs) == 0 {
		w.err = fmt.Errorf("record %s: %v", args, err)
		return
	}
	r := recs[0]
	if r.Rev != w.rev+1 {
		w.err = fmt.Errorf("record %d after %d", r.Rev, w.rev)
		return
	}
	op, err := ot.Parse(r.Op)
	if err == nil {
		w.text, err = op.ApplyString(w.text)
	}
	if err != nil {
		w.err = fmt.Errorf("record %d: %v", r.Rev, err)
		return
	}
	w.rev = r.Rev
	w.recs = append(w.recs, r)
}

func (w *watcher) state() (uint64, string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rev, w.text, w.err
}

func postJSON(tb testing.TB, url string, body any, hdr ...string) (int, uint64, string) {
	tb.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	code, resp, _ := httpDo(tb, "POST", url, string(b), append([]string{"Content-Type", "application/json"}, hdr...)...)
	var v struct{ Rev uint64 }
	_ = json.Unmarshal([]byte(resp), &v)
	return code, v.Rev, resp
}

// TestOpWritesRaceSocketEditors: op writes over HTTP (POST /ops, each sent
// twice, and POST /append) racing a socket editor converge: every edit is
// in the text exactly once, and a live member that applies the records it
// receives ends with the server's text, the HTTP writes among them as
// normal records.
func TestOpWritesRaceSocketEditors(t *testing.T) {
	p := start(t, "", nil)
	const doc = "race"
	putDoc(t, p, doc, "|base|", 0)

	w := &watcher{}
	wc, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: p.addr, OnEvent: w.onEvent})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	w.mu.Lock()
	ack := call(t, wc, "doc:join", map[string]any{"doc": doc, "client": "watcher"})
	w.rev, w.text = uint64(ack["rev"].(float64)), ack["text"].(string)
	w.mu.Unlock()

	ed, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: p.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer ed.Close()
	ack = call(t, ed, "doc:join", map[string]any{"doc": doc, "client": "sock-1"})
	sockRev := uint64(ack["rev"].(float64))

	const sockOps, httpOps, appends = 30, 20, 10
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= sockOps; i++ {
			raw, err := ed.Call(10*time.Second, "doc:op", map[string]any{"doc": doc, "client": "sock-1", "seq": i, "rev": sockRev, "op": []any{fmt.Sprintf("<s%d>", i)}})
			if err != nil {
				done <- err
				return
			}
			var a []struct {
				OK  bool
				Rev uint64
			}
			if json.Unmarshal(raw, &a) != nil || len(a) == 0 || !a[0].OK {
				done <- fmt.Errorf("op %d ack %s", i, raw)
				return
			}
			sockRev = a[0].Rev
		}
		done <- nil
	}()
	for i := 1; i <= httpOps; i++ {
		rev, text := getDoc(t, p, doc)
		body := map[string]any{"rev": rev, "op": []any{utf8.RuneCountInString(text), fmt.Sprintf("<h%d>", i)}, "client": "http-w", "seq": i}
		code, first, resp := postJSON(t, p.url+"api/docs/"+doc+"/ops", body)
		if code != 200 {
			t.Fatalf("POST ops %d: %d %s", i, code, resp)
		}
		// The caller did not see the answer: it sends the op again.
		code, again, resp := postJSON(t, p.url+"api/docs/"+doc+"/ops", body)
		if code != 200 || again != first {
			t.Fatalf("resubmitted op %d: %d %s, first rev %d", i, code, resp, first)
		}
		if i <= appends {
			if code, _, resp := postJSON(t, p.url+"api/docs/"+doc+"/append", map[string]any{"text": fmt.Sprintf("<a%d>", i)}); code != 200 {
				t.Fatalf("append %d: %d %s", i, code, resp)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	head, text := getDoc(t, p, doc)
	if want := uint64(1 + sockOps + httpOps + appends); head != want {
		t.Fatalf("head %d, want %d", head, want)
	}
	for _, m := range []struct {
		prefix string
		n      int
	}{{"s", sockOps}, {"h", httpOps}, {"a", appends}} {
		for i := 1; i <= m.n; i++ {
			if c := strings.Count(text, fmt.Sprintf("<%s%d>", m.prefix, i)); c != 1 {
				t.Fatalf("<%s%d> %d times in %q", m.prefix, i, c, text)
			}
		}
	}
	if strings.Count(text, "|base|") != 1 {
		t.Fatalf("base damaged: %q", text)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rev, wtext, err := w.state()
		if err != nil {
			t.Fatal(err)
		}
		if rev == head {
			if wtext != text {
				t.Fatalf("watcher text %q, server %q", wtext, text)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watcher at %d, head %d", rev, head)
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := 0
	for _, r := range w.recs {
		if r.Client == "http-w" {
			seen++
			if r.Seq < 1 || r.Seq > httpOps {
				t.Fatalf("http record seq %d", r.Seq)
			}
		}
	}
	if seen != httpOps {
		t.Fatalf("watcher saw %d records of client http-w, want %d", seen, httpOps)
	}
}

// events collects a socket's server events.
type events struct {
	ch chan [2]string // name, first argument
}

func newEvents() *events { return &events{ch: make(chan [2]string, 1024)} }

func (e *events) on(name string, args []byte) {
	var arr []json.RawMessage
	first := ""
	if json.Unmarshal(args, &arr) == nil && len(arr) > 0 {
		first = string(arr[0])
	}
	select {
	case e.ch <- [2]string{name, first}:
	default:
	}
}

// wait returns the first argument of the next event name within d.
func (e *events) wait(tb testing.TB, name string, d time.Duration) string {
	tb.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-e.ch:
			if ev[0] == name {
				return ev[1]
			}
		case <-deadline:
			tb.Fatalf("no %s within %v", name, d)
			return ""
		}
	}
}

// TestTokenLifetimeOnOpenConnections: against a real server with auth, an
// admin secret and --metrics-auth: a token's expiry ends its socket's
// access at exp; a refresh on the open connection keeps an op in flight;
// a revocation through the admin endpoint (by jti and by user) reaches open
// connections and HTTP, and survives a restart; /metrics needs a token.
func TestTokenLifetimeOnOpenConnections(t *testing.T) {
	const secret, adminSecret = "lifetime-test-secret-0123456789", "admin-test-secret-0123456789"
	data := t.TempDir()
	args := []string{"--auth-secret", secret, "--admin-secret", adminSecret, "--metrics-auth"}
	p := start(t, data, nil, args...)
	authority, err := auth.New([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	mint := func(user, jti string, ttl time.Duration) string {
		c := auth.Claims{User: user, ID: jti, Edit: []string{"*"}}
		if ttl > 0 {
			c.Expires = time.Now().Add(ttl)
		}
		tok, err := authority.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	dial := func(tok string) (*sioclient.Client, *events) {
		ev := newEvents()
		c, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: p.addr, Auth: map[string]any{"token": tok}, OnEvent: ev.on})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c, ev
	}

	// /metrics and /admin need their credentials.
	if code, _, _ := httpDo(t, "GET", p.url+"metrics", ""); code != 401 {
		t.Fatalf("metrics without token: %d", code)
	}
	if code, _, _ := httpDo(t, "GET", p.url+"metrics", "", "Authorization", "Bearer "+adminSecret); code != 200 {
		t.Fatalf("metrics with the admin secret: %d", code)
	}
	if code, _, _ := httpDo(t, "GET", p.url+"metrics", "", "Authorization", "Bearer "+mint("ops", "m1", time.Hour)); code != 200 {
		t.Fatalf("metrics with a token: %d", code)
	}
	if code, _, _ := httpDo(t, "GET", p.url+"admin/revocations", "", "Authorization", "Bearer "+mint("ops", "m2", time.Hour)); code != 401 {
		t.Fatalf("admin with a user token: %d", code)
	}

	// Expiry: the socket is told at exp and cannot edit after it.
	shortTok := mint("ann", "short", 2*time.Second)
	ann, annEv := dial(shortTok)
	if a := call(t, ann, "doc:join", map[string]any{"doc": "life", "client": "ann-1"}); a["ok"] != true {
		t.Fatalf("join: %v", a)
	}
	if a := call(t, ann, "doc:op", map[string]any{"doc": "life", "client": "ann-1", "seq": 1, "rev": 0, "op": []any{"a"}}); a["ok"] != true {
		t.Fatalf("op: %v", a)
	}
	if ev := annEv.wait(t, "auth:expired", 5*time.Second); !strings.Contains(ev, `"reason":"expired"`) || !strings.Contains(ev, `"life"`) {
		t.Fatalf("auth:expired %s", ev)
	}
	if a := call(t, ann, "doc:op", map[string]any{"doc": "life", "client": "ann-1", "seq": 2, "rev": 1, "op": []any{1, "b"}}); errCode(a) != "forbidden" {
		t.Fatalf("op after expiry: %v", a)
	}
	if a := call(t, ann, "auth:refresh", map[string]any{"token": mint("ann", "long", time.Hour)}); a["ok"] != true {
		t.Fatalf("refresh: %v", a)
	}
	if a := call(t, ann, "doc:join", map[string]any{"doc": "life", "client": "ann-1", "rev": 1}); a["ok"] != true {
		t.Fatalf("rejoin: %v", a)
	}

	// A refresh right behind an op in flight: the op is acknowledged.
	bobTok := mint("bob", "bob-1", 3*time.Second)
	bob, bobEv := dial(bobTok)
	if a := call(t, bob, "doc:join", map[string]any{"doc": "life", "client": "bob-1"}); a["ok"] != true {
		t.Fatalf("bob join: %v", a)
	}
	acked := make(chan string, 1)
	if err := bob.EmitAck(func(args []byte) { acked <- string(args) }, "doc:op", map[string]any{"doc": "life", "client": "bob-1", "seq": 1, "rev": 1, "op": []any{"B"}}); err != nil {
		t.Fatal(err)
	}
	if a := call(t, bob, "auth:refresh", map[string]any{"token": mint("bob", "bob-2", time.Hour)}); a["ok"] != true {
		t.Fatalf("bob refresh: %v", a)
	}
	select {
	case a := <-acked:
		if !strings.Contains(a, `"ok":true`) {
			t.Fatalf("op in flight: %s", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("op in flight never acknowledged")
	}

	// Revocation by jti reaches the open socket and HTTP.
	code, body, _ := httpDo(t, "POST", p.url+"admin/revocations", `{"jti":["bob-2"]}`, "Authorization", "Bearer "+adminSecret)
	if code != 200 || !strings.Contains(body, "bob-2") {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if ev := bobEv.wait(t, "auth:expired", 3*time.Second); !strings.Contains(ev, `"reason":"revoked"`) {
		t.Fatalf("bob auth:expired %s", ev)
	}
	if code, _, _ := httpDo(t, "GET", p.url+"api/docs/life", "", "Authorization", "Bearer "+mint("bob", "bob-2", time.Hour)); code != 401 {
		t.Fatalf("HTTP with a revoked jti: %d", code)
	}
	// Revocation by user: ann's tokens issued until now.
	time.Sleep(1100 * time.Millisecond) // iat has whole seconds
	code, body, _ = httpDo(t, "POST", p.url+"admin/revocations", `{"users":["ann"]}`, "Authorization", "Bearer "+adminSecret)
	if code != 200 || !strings.Contains(body, `"ann"`) {
		t.Fatalf("revoke user: %d %s", code, body)
	}
	if ev := annEv.wait(t, "auth:expired", 3*time.Second); !strings.Contains(ev, `"reason":"revoked"`) {
		t.Fatalf("ann auth:expired %s", ev)
	}
	time.Sleep(1100 * time.Millisecond)
	fresh := mint("ann", "after", time.Hour)
	if a := call(t, ann, "auth:refresh", map[string]any{"token": fresh}); a["ok"] != true {
		t.Fatalf("refresh with a token issued after the not-before: %v", a)
	}

	// The revocations survive a restart.
	p.stop(t, syscall.SIGTERM)
	p = start(t, data, nil, args...)
	if _, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: p.addr, Auth: map[string]any{"token": mint("bob", "bob-2", time.Hour)}}); !errors.Is(err, sioclient.ErrConnectRefused) {
		t.Fatalf("revoked jti after restart: %v", err)
	}
	c, _ := dial(fresh)
	if a := call(t, c, "doc:join", map[string]any{"doc": "life", "client": "ann-2"}); a["ok"] != true {
		t.Fatalf("join after restart: %v", a)
	}
	p.stop(t, syscall.SIGTERM)
}

// TestWebhookFlags: --webhook-url from the environment, the secret from a
// flag: a PUT reaches a real receiver as signed created and changed events,
// and the metrics count them.
func TestWebhookFlags(t *testing.T) {
	const secret = "flags-webhook-secret"
	var mu sync.Mutex
	var evs []webhook.Event
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(400)
			return
		}
		var ev webhook.Event
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		evs = append(evs, ev)
		mu.Unlock()
	}))
	defer rcv.Close()
	p := start(t, "", []string{"COLLABD_WEBHOOK_URL=" + rcv.URL}, "--webhook-secret", secret, "--webhook-debounce", "100ms", "--webhook-text")
	putDoc(t, p, "wh", "hello", 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(evs)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	if evs[0].Type != webhook.TypeCreated || evs[1].Type != webhook.TypeChanged || evs[1].ToRev != 1 || evs[1].Text == nil || *evs[1].Text != "hello" {
		t.Fatalf("events %+v", evs)
	}
	mu.Unlock()
	_, body, _ := httpDo(t, "GET", p.url+"metrics", "")
	if v := metricValue(t, body, "collabd_webhook_deliveries_total"); v != 2 {
		t.Fatalf("collabd_webhook_deliveries_total %v", v)
	}
	p.stop(t, syscall.SIGTERM)
	if _, _, code := collabd(t, nil, "serve", "--webhook-url", rcv.URL, "--data", t.TempDir(), "--addr", "127.0.0.1:0"); code == 0 {
		t.Fatal("--webhook-url without a secret started")
	}
}
