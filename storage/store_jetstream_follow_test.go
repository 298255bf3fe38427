package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// feedLog collects what a follow feed delivers and checks, as it comes,
// that each document's records arrive in revision order without a gap
// (repeats only when allowed) and that fn never runs twice at once.
type feedLog struct {
	t       testing.TB
	repeats bool // records may come again (after a reconnection)

	mu       sync.Mutex
	heads    map[string]uint64
	recs     map[string][]Record
	calls    int
	repeated int
	errs     []string
	changed  chan struct{}
	inFn     atomic.Int32
}

func newFeedLog(t testing.TB, repeats bool) *feedLog {
	return &feedLog{t: t, repeats: repeats, heads: map[string]uint64{}, recs: map[string][]Record{}, changed: make(chan struct{}, 1)}
}

func (l *feedLog) fn(doc string, recs []Record) {
	if l.inFn.Add(1) != 1 {
		l.fail("fn called concurrently")
	}
	defer l.inFn.Add(-1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	head := l.heads[doc]
	for i, r := range recs {
		switch {
		case i > 0 && r.Rev != recs[i-1].Rev+1:
			l.errs = append(l.errs, fmt.Sprintf("%s: one delivery holds %d after %d", doc, r.Rev, recs[i-1].Rev))
		case r.Rev > head+1:
			l.errs = append(l.errs, fmt.Sprintf("%s: revision %d after %d: skipped", doc, r.Rev, head))
		case r.Rev <= head && !l.repeats:
			l.errs = append(l.errs, fmt.Sprintf("%s: revision %d again (head %d)", doc, r.Rev, head))
		case r.Rev <= head:
			l.repeated++
			if !sameRecord(l.recs[doc][r.Rev-1], r) {
				l.errs = append(l.errs, fmt.Sprintf("%s: revision %d came again, different", doc, r.Rev))
			}
		default:
			head = r.Rev
			l.recs[doc] = append(l.recs[doc], r)
		}
	}
	l.heads[doc] = head
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *feedLog) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, msg)
}

// waitHeads waits until every document in want has reached its head (or
// the feed broke a rule, or a minute passed: a failure either way).
func (l *feedLog) waitHeads(want map[string]uint64) {
	l.t.Helper()
	deadline := time.After(time.Minute)
	for {
		l.mu.Lock()
		errs := l.errs
		done := true
		for doc, h := range want {
			if l.heads[doc] < h {
				done = false
			}
		}
		heads := fmt.Sprint(l.heads)
		l.mu.Unlock()
		if len(errs) > 0 {
			l.t.Fatalf("feed: %v", errs)
		}
		if done {
			return
		}
		select {
		case <-l.changed:
		case <-deadline:
			l.t.Fatalf("feed stuck at %s, want %v", heads, want)
		}
	}
}

func (l *feedLog) check(doc string, want []Record) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 {
		l.t.Fatalf("feed: %v", l.errs)
	}
	got := l.recs[doc]
	if len(got) != len(want) {
		l.t.Fatalf("%s: %d records, want %d", doc, len(got), len(want))
	}
	for i := range want {
		if !sameRecord(got[i], want[i]) {
			l.t.Fatalf("%s: record %d is %+v, want %+v", doc, i+1, got[i], want[i])
		}
	}
}

func sameRecord(a, b Record) bool {
	return a.Rev == b.Rev && bytes.Equal(a.Op, b.Op) && a.Client == b.Client && a.Seq == b.Seq &&
		a.User == b.User && a.Time.Equal(b.Time) && a.Ins == b.Ins && a.Del == b.Del
}

// TestJetStreamFollow: one store follows from an empty stream while
// another commits to three documents concurrently (in batches of one to
// three records) and the follower appends to a fourth: every record of
// each document arrives once, in revision order, its own appends too;
// messages that do not decode are skipped and counted.
func TestJetStreamFollow(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	follower := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	writer := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	log := newFeedLog(t, false)
	stop, err := follower.Follow(ctx, log.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	// Not ops: a payload that does not decode, a subject that names no
	// document.
	if _, err := writer.js.Publish(ctx, writer.subject("junk"), []byte("not ops")); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.js.Publish(ctx, DefaultJetStreamSubject+".bad=41", appendOps(nil, []Record{rec(1, "c", 1, 0, "x")})); err != nil {
		t.Fatal(err)
	}

	docs := map[string]*history{"a": makeHistory(t, 21, 120), "b.2": makeHistory(t, 22, 90), "c~3": makeHistory(t, 23, 150)}
	var wg sync.WaitGroup
	for doc, h := range docs {
		wg.Go(func() {
			for i, n := 0, 0; i < len(h.recs); i += n {
				n = min(1+i%3, len(h.recs)-i)
				if err := writer.Commit(ctx, []Write{{Doc: doc, Records: h.recs[i : i+n]}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	own := makeHistory(t, 24, 40)
	commitHistory(t, follower, "own", own, 4, 0)
	wg.Wait()

	want := map[string]uint64{"own": 40}
	for doc, h := range docs {
		want[doc] = uint64(len(h.recs))
	}
	log.waitHeads(want)
	for doc, h := range docs {
		log.check(doc, h.recs)
	}
	log.check("own", own.recs)
	if n := follower.undecodable.Load(); n != 2 {
		t.Fatalf("%d undecodable messages counted, want 2", n)
	}
}

// TestJetStreamFollowStop: stop waits for fn to return, fn is not called
// after stop (nor after the context given to Follow ends), and stop is
// idempotent.
func TestJetStreamFollowStop(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})

	entered, release := make(chan struct{}), make(chan struct{})
	var running, calls atomic.Int32
	stop, err := s.Follow(ctx, func(doc string, recs []Record) {
		running.Store(1)
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		running.Store(0)
	})
	if err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	var ctxCalls atomic.Int32
	if _, err := s.Follow(fctx, func(string, []Record) { ctxCalls.Add(1) }); err != nil {
		t.Fatal(err)
	}

	h := makeHistory(t, 31, 6)
	commitHistory(t, s, "d", &history{texts: h.texts, recs: h.recs[:3]}, 1, 0)
	<-entered
	stopped := make(chan struct{})
	go func() {
		stop()
		if running.Load() != 0 {
			t.Error("stop returned while fn was running")
		}
		close(stopped)
	}()
	time.Sleep(20 * time.Millisecond) // let stop wait for fn (not an assertion)
	close(release)
	<-stopped
	stop()
	cancel()

	// A feed started now sees the next records; the stopped ones do not.
	control := newFeedLog(t, false)
	control.heads["d"] = 3
	stopControl, err := s.Follow(ctx, control.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stopControl()
	n, nctx := calls.Load(), ctxCalls.Load()
	commitHistory(t, s, "d", &history{texts: h.texts, recs: h.recs[3:]}, 1, 0)
	control.waitHeads(map[string]uint64{"d": 6})
	control.check("d", h.recs[3:])
	if calls.Load() != n || ctxCalls.Load() != nctx {
		t.Fatalf("stopped feeds were called: %d -> %d, %d -> %d", n, calls.Load(), nctx, ctxCalls.Load())
	}
}

// stopNATS shuts srv down and returns its port, for startNATSOn.
func stopNATS(srv *server.Server) int {
	port := srv.Addr().(*net.TCPAddr).Port
	srv.Shutdown()
	srv.WaitForShutdown()
	return port
}

// startNATSOn starts a server on port storing in dir (a restart: clients
// reconnect to the same URL).
func startNATSOn(tb testing.TB, dir string, port int) *server.Server {
	opts := natsOpts(dir, true)
	opts.Port = port
	return runNATS(tb, opts)
}

// TestJetStreamFollowRestart: the server is shut down and started again
// on the same store directory while a follower runs and a writer appends
// to three documents (retrying through the outage): every record arrives,
// in revision order per document; repeats are allowed, skips are not.
func TestJetStreamFollowRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv := runNATS(t, natsOpts(dir, true))
	cfg := JetStreamConfig{Timeout: 300 * time.Millisecond, Attempts: 2}
	follower := openJSTest(t, srv.ClientURL(), cfg)
	writer := openJSTest(t, srv.ClientURL(), cfg)
	log := newFeedLog(t, true)
	stop, err := follower.Follow(ctx, log.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	docs := map[string]*history{"r1": makeHistory(t, 41, 150), "r2": makeHistory(t, 42, 150), "r3": makeHistory(t, 43, 150)}
	var appended atomic.Int64 // records acknowledged, all documents
	var wg sync.WaitGroup
	for doc, h := range docs {
		wg.Go(func() {
			for i := 0; i < len(h.recs); {
				err := writer.Commit(ctx, []Write{{Doc: doc, Records: h.recs[i : i+1]}})
				var se *StaleError
				switch {
				case err == nil:
				case errors.As(err, &se) && se.Head > uint64(i):
					// An attempt of ours whose ack was lost in the outage.
				case errors.Is(err, ErrUnavailable):
					time.Sleep(20 * time.Millisecond)
					continue
				default:
					t.Errorf("%s: %v", doc, err)
					return
				}
				i++
				appended.Add(1)
			}
		})
	}
	for appended.Load() < 150 {
		time.Sleep(time.Millisecond)
	}
	port := stopNATS(srv)
	startNATSOn(t, dir, port)
	wg.Wait()

	want := map[string]uint64{}
	for doc, h := range docs {
		want[doc] = uint64(len(h.recs))
	}
	log.waitHeads(want)
	for doc, h := range docs {
		log.check(doc, h.recs)
	}
	t.Logf("%d records came twice", log.repeated)
}

// TestJetStreamUnavailable: with the server down, reads and commits fail
// with ErrUnavailable after their attempts (before the caller's context
// ends), as do OpenJetStream and Follow; once the server is back the
// same store instance works again.
func TestJetStreamUnavailable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv := runNATS(t, natsOpts(dir, true))
	cfg := JetStreamConfig{Timeout: 200 * time.Millisecond, Attempts: 2}
	js := connectJS(t, srv.ClientURL())
	s, err := OpenJetStream(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := makeHistory(t, 51, 12)
	commitHistory(t, s, "u", &history{texts: h.texts, recs: h.recs[:10]}, 2, 5)
	if err := s.Commit(ctx, []Write{{Doc: "v", Records: h.recs[:1]}}); err != nil {
		t.Fatal(err)
	}
	port := stopNATS(srv)

	// Bounded by Timeout*Attempts plus backoff; the generous context
	// only proves that the store gave up by itself.
	bound, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	unavailable := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnavailable) || bound.Err() != nil {
			t.Fatalf("%s with the server down: %v (context: %v)", what, err, bound.Err())
		}
	}
	_, err = s.Load(bound, "u", 0)
	unavailable("load", err)
	_, err = s.Records(bound, "u", 0, 5)
	unavailable("records", err)
	_, err = s.TextAt(bound, "u", 7)
	unavailable("text", err)
	err = s.Commit(bound, []Write{{Doc: "u", Records: h.recs[10:11]}})
	unavailable("commit", err)
	err = s.Commit(bound, []Write{{Doc: "u", Records: h.recs[10:11]}, {Doc: "v", Records: h.recs[1:2]}})
	var we *WriteErrors
	if !errors.As(err, &we) || len(we.Errs) != 2 {
		t.Fatalf("commit of two writes: %v", err)
	}
	for i, err := range we.Errs {
		unavailable(fmt.Sprint("write ", i), err)
	}
	_, err = s.Follow(bound, func(string, []Record) {})
	unavailable("follow", err)
	octx, ocancel := context.WithTimeout(ctx, time.Second)
	_, err = OpenJetStream(octx, js, cfg)
	ocancel()
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("open with the server down: %v", err)
	}

	startNATSOn(t, dir, port)
	// The connection reconnects by itself; the store needs nothing.
	var st State
	for i := 0; ; i++ {
		if st, err = s.Load(ctx, "u", 0); err == nil {
			break
		}
		if !errors.Is(err, ErrUnavailable) || i == 100 {
			t.Fatalf("load after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A commit of the outage may have been stored after all (its
	// outcome was unknown): it was revision 11 either way.
	if st.Meta.Head != 10 && st.Meta.Head != 11 {
		t.Fatalf("head %d after the restart", st.Meta.Head)
	}
	rest := h.recs[st.Meta.Head:]
	if err := s.Commit(ctx, []Write{{Doc: "u", Records: rest}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TextAt(ctx, "u", 12); err != nil || got != h.texts[12] {
		t.Fatalf("text after the restart: %q %v", got, err)
	}
}
