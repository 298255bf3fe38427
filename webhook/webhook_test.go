package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/webhook"
)

const secret = "webhook-test-secret"

// got is one delivery the receiver accepted.
type got struct {
	ev      webhook.Event
	attempt int
	at      time.Time
}

// receiver is a real HTTP endpoint that checks every signature.
type receiver struct {
	t   testing.TB
	srv *httptest.Server
	// status answers the n-th request (1-based); nil: 200.
	status func(n int) int
	hang   chan struct{} // when non-nil, requests block until it is closed

	mu       sync.Mutex // guards n and received
	n        int
	received []got
}

func newReceiver(t testing.TB, status func(n int) int) *receiver {
	r := &receiver{t: t, status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		if r.hang != nil {
			select {
			case <-r.hang:
			default:
				close(r.hang)
			}
		}
		r.srv.Close()
	})
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if r.hang != nil {
		select {
		case <-r.hang:
		case <-req.Context().Done():
		}
		return
	}
	if err := webhook.Verify([]byte(secret), req.Header.Get(webhook.HeaderSignature), body, time.Now(), webhook.DefaultTolerance); err != nil {
		r.t.Errorf("delivery with a bad signature: %v (%s)", err, req.Header.Get(webhook.HeaderSignature))
		w.WriteHeader(400)
		return
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		r.t.Errorf("body %s: %v", body, err)
	}
	if req.Header.Get(webhook.HeaderDelivery) != ev.ID || req.Header.Get(webhook.HeaderEvent) != ev.Type {
		r.t.Errorf("headers %v for event %+v", req.Header, ev)
	}
	attempt, _ := strconv.Atoi(req.Header.Get(webhook.HeaderAttempt))
	r.mu.Lock()
	r.n++
	n, status := r.n, r.status
	r.mu.Unlock()
	code := 200
	if status != nil {
		code = status(n)
	}
	if code == 200 {
		r.mu.Lock()
		r.received = append(r.received, got{ev, attempt, time.Now()})
		r.mu.Unlock()
	}
	w.WriteHeader(code)
}

func (r *receiver) events() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.received)
}

// waitFor waits until cond holds on the received events.
func (r *receiver) waitFor(d time.Duration, what string, cond func([]got) bool) []got {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for {
		evs := r.events()
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: not within %v; received %+v", what, d, evs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ofType(evs []got, typ string) []got {
	var out []got
	for _, g := range evs {
		if g.ev.Type == typ {
			out = append(out, g)
		}
	}
	return out
}

// stack is a real hub over bbolt with a notifier fed by its hooks.
type stack struct {
	store *storage.Bolt
	hub   *collab.Hub
	n     *webhook.Notifier
	once  sync.Once
}

func newStack(t testing.TB, dir string, cfg webhook.Config) *stack {
	t.Helper()
	st, err := storage.OpenBolt(filepath.Join(dir, "collabd.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{store: st}
	cfg.Outbox = st
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	s.n, err = webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.hub, err = collab.New(collab.Config{Store: st, OnCommitted: s.n.Committed, OnDeleted: s.n.Deleted})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close(t) })
	return s
}

func (s *stack) close(t testing.TB) {
	s.once.Do(func() {
		ctx := context.Background()
		if err := s.hub.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := s.n.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := s.store.Close(); err != nil {
			t.Error(err)
		}
	})
}

func (s *stack) submit(t testing.TB, doc, client, user string, seq, base uint64, op string) uint64 {
	t.Helper()
	rev, err := s.hub.Submit(context.Background(), collab.Submission{Doc: doc, Client: client, Seq: seq, BaseRev: base, Op: json.RawMessage(op), User: user})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// TestDebouncedEvents: a burst of edits gives a created event at once and
// one change event after the document is quiet, covering the whole range
// with its authors; later edits a new event starting where it ended.
func TestDebouncedEvents(t *testing.T) {
	r := newReceiver(t, nil)
	s := newStack(t, t.TempDir(), webhook.Config{URLs: []string{r.srv.URL}, Debounce: 300 * time.Millisecond, MaxWait: 10 * time.Second})
	start := time.Now()
	for i := range 5 {
		user := "ann"
		if i%2 == 1 {
			user = "bob"
		}
		op := `["x"]`
		if i > 0 {
			op = fmt.Sprintf(`[%d,"x"]`, i)
		}
		s.submit(t, "d", "c-"+user, user, uint64(i+1), uint64(i), op)
	}
	evs := r.waitFor(5*time.Second, "change event", func(g []got) bool { return len(ofType(g, webhook.TypeChanged)) == 1 })
	ch := ofType(evs, webhook.TypeChanged)[0]
	if ch.at.Sub(start) < 300*time.Millisecond {
		t.Fatalf("change event %v after the first edit, before the debounce", ch.at.Sub(start))
	}
	e := ch.ev
	if e.Doc != "d" || e.FromRev != 1 || e.ToRev != 5 || e.Ops != 5 || e.Ins != 5 || e.ID == "" {
		t.Fatalf("change event %+v", e)
	}
	sort.Slice(e.Authors, func(i, j int) bool { return e.Authors[i].User < e.Authors[j].User })
	if len(e.Authors) != 2 || e.Authors[0] != (webhook.Author{User: "ann", Ops: 3, Ins: 3}) || e.Authors[1] != (webhook.Author{User: "bob", Ops: 2, Ins: 2}) {
		t.Fatalf("authors %+v", e.Authors)
	}
	cr := ofType(evs, webhook.TypeCreated)
	if len(cr) != 1 || cr[0].ev.ToRev != 1 || !cr[0].at.Before(ch.at) {
		t.Fatalf("created events %+v", cr)
	}
	if e.Text != nil {
		t.Fatal("text without Config.Text")
	}
	// Quiet: nothing more.
	time.Sleep(500 * time.Millisecond)
	if n := len(r.events()); n != 2 {
		t.Fatalf("%d events after a quiet period, want 2", n)
	}
	s.submit(t, "d", "c-ann", "ann", 10, 5, `["y"]`)
	evs = r.waitFor(5*time.Second, "second change event", func(g []got) bool { return len(ofType(g, webhook.TypeChanged)) == 2 })
	if e := ofType(evs, webhook.TypeChanged)[1].ev; e.FromRev != 6 || e.ToRev != 6 || e.ID == ch.ev.ID {
		t.Fatalf("second change event %+v", e)
	}
}

// TestMaxWaitAndText: a document that never goes quiet still gets events
// at least every MaxWait, with contiguous ranges, and the text when asked.
func TestMaxWaitAndText(t *testing.T) {
	r := newReceiver(t, nil)
	var s *stack
	s = newStack(t, t.TempDir(), webhook.Config{URLs: []string{r.srv.URL}, Debounce: 400 * time.Millisecond, MaxWait: 700 * time.Millisecond,
		Text: func(ctx context.Context, doc string, rev uint64) (string, error) { return s.hub.TextAt(ctx, doc, rev) }})
	var rev uint64
	for i := range 25 { // 2.5 s, never quiet for 400 ms
		rev = s.submit(t, "busy", "c", "ann", uint64(i+1), rev, `["z"]`)
		time.Sleep(100 * time.Millisecond)
	}
	evs := r.waitFor(5*time.Second, "all revisions reported", func(g []got) bool {
		ch := ofType(g, webhook.TypeChanged)
		return len(ch) > 0 && ch[len(ch)-1].ev.ToRev == rev
	})
	ch := ofType(evs, webhook.TypeChanged)
	if len(ch) < 3 {
		t.Fatalf("%d change events over 2.5 s with MaxWait 700 ms", len(ch))
	}
	next := uint64(1)
	for _, g := range ch {
		if g.ev.FromRev != next || g.ev.ToRev < g.ev.FromRev {
			t.Fatalf("ranges not contiguous: %+v", ch)
		}
		next = g.ev.ToRev + 1
		if g.ev.Text == nil || len([]rune(*g.ev.Text)) != int(g.ev.ToRev) {
			t.Fatalf("text of event to %d: %v", g.ev.ToRev, g.ev.Text)
		}
	}
}

// TestRetryAfterFailure: a receiver answering 500 and then 200 gets the
// same event again, signed afresh.
func TestRetryAfterFailure(t *testing.T) {
	r := newReceiver(t, func(n int) int {
		if n == 1 {
			return 500
		}
		return 200
	})
	s := newStack(t, t.TempDir(), webhook.Config{URLs: []string{r.srv.URL}, Debounce: 50 * time.Millisecond, MinBackoff: 100 * time.Millisecond})
	s.submit(t, "r", "c", "ann", 1, 0, `["a"]`) // created (answered 500, retried), then changed
	evs := r.waitFor(10*time.Second, "retried delivery", func(g []got) bool { return len(g) == 2 })
	if evs[0].ev.Type != webhook.TypeCreated || evs[0].attempt != 2 {
		t.Fatalf("first accepted delivery %+v, want the created event's second attempt", evs[0])
	}
	if evs[1].ev.Type != webhook.TypeChanged || evs[1].attempt != 1 {
		t.Fatalf("second delivery %+v", evs[1])
	}
	// The notifier counts a delivery once it has the answer, which may
	// come after the receiver saw the event.
	waitDelivered(t, s, 2)
	st := s.n.Stats()
	if st.Failures != 1 || st.Delivered != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// waitDelivered waits (at most 5 s) until s's notifier has recorded n
// deliveries as answered.
func waitDelivered(tb testing.TB, s *stack, n uint64) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.n.Stats().Delivered < n {
		if time.Now().After(deadline) {
			tb.Fatalf("deliveries recorded: %d, want %d", s.n.Stats().Delivered, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHangingReceiverDoesNotSlowEdits: an endpoint that never answers
// leaves the edits' latency as it is without webhooks, and the queue stays
// within its bound (older change events coalesced).
func TestHangingReceiverDoesNotSlowEdits(t *testing.T) {
	r := newReceiver(t, nil)
	r.hang = make(chan struct{})
	measure := func(s *stack) time.Duration {
		var lat []time.Duration
		var rev uint64
		for i := range 300 {
			doc := fmt.Sprintf("h%d", i%30) // 30 documents: many events
			start := time.Now()
			rev2, err := s.hub.Submit(context.Background(), collab.Submission{Doc: doc, Client: "c", Seq: uint64(i + 1), BaseRev: 0, Op: json.RawMessage(`["q"]`), User: "ann"})
			if err != nil {
				t.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			rev = rev2
			if i%10 == 9 {
				time.Sleep(30 * time.Millisecond) // let debounced events out
			}
		}
		_ = rev
		slices.Sort(lat)
		return lat[len(lat)/2]
	}
	plain, err := storage.OpenBolt(filepath.Join(t.TempDir(), "collabd.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := collab.New(collab.Config{Store: plain})
	if err != nil {
		t.Fatal(err)
	}
	base := measure(&stack{hub: hub})
	hub.Close(context.Background())
	plain.Close()

	s := newStack(t, t.TempDir(), webhook.Config{URLs: []string{r.srv.URL}, Debounce: 20 * time.Millisecond, MaxQueue: 8, Timeout: time.Minute})
	with := measure(s)
	t.Logf("Submit p50: %v without webhooks, %v with a hanging endpoint", base, with)
	if with > 3*base+2*time.Millisecond {
		t.Fatalf("Submit p50 %v with a hanging endpoint, %v without", with, base)
	}
	st := s.n.Stats()
	if st.Queued > 8 || st.Coalesced+st.Dropped == 0 || st.Delivered != 0 {
		t.Fatalf("stats %+v: queue not bounded", st)
	}
}

// TestRestartDeliversPending: deliveries pending when the server stops
// (failing endpoint, and changes still inside their debounce) are sent
// after a restart over the same data, with their event ids.
func TestRestartDeliversPending(t *testing.T) {
	dir := t.TempDir()
	down := newReceiver(t, func(int) int { return 503 })
	s := newStack(t, dir, webhook.Config{URLs: []string{down.srv.URL}, Debounce: 50 * time.Millisecond, MinBackoff: time.Hour})
	s.submit(t, "p", "c", "ann", 1, 0, `["a"]`)
	s.submit(t, "p", "c", "ann", 2, 1, `[1,"b"]`)
	time.Sleep(300 * time.Millisecond) // created + changed 1..2 queued, first attempt failed
	s.n.Close(context.Background())
	// A commit after the notifier stopped sees no sender; Close persisted
	// what it had.
	s.close(t)

	// The same URL, now answering: the test swaps the handler behind it.
	down.mu.Lock()
	down.status = nil
	down.mu.Unlock()
	s2 := newStack(t, dir, webhook.Config{URLs: []string{down.srv.URL}, Debounce: 50 * time.Millisecond})
	evs := down.waitFor(10*time.Second, "pending deliveries after restart", func(g []got) bool { return len(g) >= 2 })
	if evs[0].ev.Type != webhook.TypeCreated || evs[1].ev.Type != webhook.TypeChanged || evs[1].ev.FromRev != 1 || evs[1].ev.ToRev != 2 {
		t.Fatalf("after restart %+v", evs)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(down.events()); n != 2 {
		t.Fatalf("%d deliveries after restart, want 2", n)
	}
	waitDelivered(t, s2, 2)
	if st := s2.n.Stats(); st.Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
	got, err := s2.store.Outbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if strings.HasPrefix(e.Key, "webhook/") {
			t.Fatalf("delivery %s left in the outbox", e.Key)
		}
		if e.Key == "webhook-mark/p" && string(e.Value) != "2" {
			t.Fatalf("mark of p: %s", e.Value)
		}
	}
}

// TestDeleteAndRestoreEvents: doc.deleted after a deletion, doc.restored
// for a restore, both to every URL.
func TestDeleteAndRestoreEvents(t *testing.T) {
	r1, r2 := newReceiver(t, nil), newReceiver(t, nil)
	s := newStack(t, t.TempDir(), webhook.Config{URLs: []string{r1.srv.URL, r2.srv.URL}, Debounce: 50 * time.Millisecond})
	s.submit(t, "x", "c", "ann", 1, 0, `["one"]`)
	s.submit(t, "x", "c", "ann", 2, 1, `[3," two"]`)
	if _, err := s.hub.Restore(context.Background(), 1, collab.Submission{Doc: "x", Client: "~restore.sock1", Seq: 1, User: "ann"}); err != nil {
		t.Fatal(err)
	}
	if err := s.hub.Delete(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*receiver{r1, r2} {
		evs := r.waitFor(5*time.Second, "deleted event", func(g []got) bool { return len(ofType(g, webhook.TypeDeleted)) == 1 })
		rs := ofType(evs, webhook.TypeRestored)
		if len(rs) != 1 || rs[0].ev.ToRev != 3 {
			t.Fatalf("restored events %+v", rs)
		}
		if ch := ofType(evs, webhook.TypeChanged); len(ch) == 0 || ch[len(ch)-1].ev.ToRev != 3 {
			t.Fatalf("change events before the deletion %+v", ch)
		}
		if last := evs[len(evs)-1]; last.ev.Type != webhook.TypeDeleted || last.ev.Doc != "x" {
			t.Fatalf("last event %+v", last)
		}
	}
	if a, b := r1.events(), r2.events(); a[0].ev.ID != b[0].ev.ID {
		t.Fatalf("one event, two ids: %s %s", a[0].ev.ID, b[0].ev.ID)
	}
}

func TestSignVerify(t *testing.T) {
	now := time.Now()
	body := []byte(`{"id":"1"}`)
	h := webhook.Sign([]byte("k"), now, body)
	if err := webhook.Verify([]byte("k"), h, body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"tampered body": webhook.Verify([]byte("k"), h, []byte(`{"id":"2"}`), now, time.Minute),
		"other secret":  webhook.Verify([]byte("j"), h, body, now, time.Minute),
		"replayed late": webhook.Verify([]byte("k"), h, body, now.Add(10*time.Minute), time.Minute),
		"no header":     webhook.Verify([]byte("k"), "", body, now, time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCrashReportsUnsentChanges: changes still inside their debounce when
// the process dies (the notifier abandoned, nothing persisted at the end)
// are reported after the restart from the store: the revisions after the
// last event queued, with their authors; a document deleted meanwhile gets
// its deleted event. The first start with webhooks reports nothing old.
func TestCrashReportsUnsentChanges(t *testing.T) {
	dir := t.TempDir()
	r := newReceiver(t, nil)
	// Documents written before webhooks were on: not reported.
	{
		st, err := storage.OpenBolt(filepath.Join(dir, "collabd.db"), storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		hub, err := collab.New(collab.Config{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range []string{"old", "gone"} {
			if _, err := hub.Submit(context.Background(), collab.Submission{Doc: doc, Client: "c", Seq: 1, Op: json.RawMessage(`["x"]`), User: "ann"}); err != nil {
				t.Fatal(err)
			}
		}
		hub.Close(context.Background())
		st.Close()
	}
	s := newStack(t, dir, webhook.Config{URLs: []string{r.srv.URL}, Debounce: 50 * time.Millisecond})
	s.submit(t, "new", "c", "ann", 1, 0, `["a"]`)
	r.waitFor(5*time.Second, "first events", func(g []got) bool { return len(ofType(g, webhook.TypeChanged)) == 1 })
	if evs := r.events(); len(evs) != 2 || evs[1].ev.Doc != "new" {
		t.Fatalf("first start reported %+v", evs)
	}
	// The receiver has both; the notifier records a delivery only once it
	// has the answer, so wait for that too (else the crash below comes
	// first and the event is rightly sent again after it).
	waitDelivered(t, s, 2)
	// The crash: the notifier stops, the edits after it are never seen by
	// it, and a deletion neither.
	s.n.Abandon()
	s.submit(t, "new", "c", "bob", 2, 1, `[1,"b"]`)
	s.submit(t, "new", "c", "bob", 3, 2, `[2,"c"]`)
	s.submit(t, "old", "c", "ann", 2, 1, `[1,"y"]`)
	s.submit(t, "fresh", "c", "cy", 1, 0, `["f"]`)
	if err := s.hub.Delete(context.Background(), "new"); err != nil {
		t.Fatal(err)
	}
	s.close(t)

	newStack(t, dir, webhook.Config{URLs: []string{r.srv.URL}, Debounce: time.Hour})
	r.waitFor(5*time.Second, "recovered events", func(g []got) bool { return len(g) >= 6 })
	time.Sleep(200 * time.Millisecond)
	evs := r.events()[2:]
	for _, g := range r.events() {
		t.Logf("%s %s %s %d..%d", g.ev.ID, g.ev.Type, g.ev.Doc, g.ev.FromRev, g.ev.ToRev)
	}
	if len(evs) != 4 {
		t.Fatalf("recovered %+v", evs)
	}
	byDoc := map[string][]webhook.Event{}
	for _, g := range evs {
		byDoc[g.ev.Doc] = append(byDoc[g.ev.Doc], g.ev)
	}
	if o := byDoc["old"]; len(o) != 1 || o[0].Type != webhook.TypeChanged || o[0].FromRev != 2 || o[0].ToRev != 2 || o[0].Authors[0].User != "ann" {
		t.Fatalf("old: %+v", o)
	}
	if f := byDoc["fresh"]; len(f) != 2 || f[0].Type != webhook.TypeCreated || f[1].FromRev != 1 || f[1].ToRev != 1 || f[1].Authors[0].User != "cy" {
		t.Fatalf("fresh: %+v (all %+v)", f, evs)
	}
	if n := byDoc["new"]; len(n) != 1 || n[0].Type != webhook.TypeDeleted || n[0].Doc != "new" {
		t.Fatalf("new: %+v", n)
	}
	if _, ok := byDoc["gone"]; ok {
		t.Fatalf("gone reported: %+v", byDoc["gone"])
	}
}
