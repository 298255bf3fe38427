package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/internal/sioclient"
	"github.com/collabd/collabd/ot"
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
