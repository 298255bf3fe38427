package collab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir) // never returns
	}
	goleak.VerifyTestMain(m)
}

// openStore opens a bbolt store in a temporary directory.
func openStore(tb testing.TB, path string) *storage.Bolt {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "collabd.db")
	}
	s, err := storage.OpenBolt(path, storage.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// newHub starts a hub over store (a new one when nil), closed at cleanup.
func newHub(tb testing.TB, cfg Config) *Hub {
	tb.Helper()
	if cfg.Store == nil {
		cfg.Store = openStore(tb, "")
	}
	h, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return h
}

func sub(doc, client string, seq, base uint64, op string) Submission {
	return Submission{Doc: doc, Client: client, Seq: seq, BaseRev: base, Op: json.RawMessage(op), User: "tester"}
}

func mustSubmit(tb testing.TB, h *Hub, s Submission) uint64 {
	tb.Helper()
	rev, err := h.Submit(context.Background(), s)
	if err != nil {
		tb.Fatalf("submit %s: %v", s.Op, err)
	}
	return rev
}

func textOf(tb testing.TB, h *Hub, doc string) (uint64, string) {
	tb.Helper()
	rev, t, err := h.Text(context.Background(), doc)
	if err != nil {
		tb.Fatal(err)
	}
	return rev, t.String()
}

func TestSubmitSequences(t *testing.T) {
	h := newHub(t, Config{})
	tests := []struct {
		name     string
		s        Submission
		wantRev  uint64
		wantText string
	}{
		{"first op creates the document", sub("d", "a", 1, 0, `["héllo"]`), 1, "héllo"},
		{"op on the head", sub("d", "a", 2, 1, `[5," wörld"]`), 2, "héllo wörld"},
		{"late op is transformed", sub("d", "b", 1, 1, `[1,-4,"ey"]`), 3, "hey wörld"},
		{"insert at the same place as an earlier op goes after it", sub("d", "c", 1, 1, `[5,"!"]`), 4, "hey wörld!"},
		{"emoji counts as one code point", sub("d", "a", 3, 4, `[3,"😀"]`), 5, "hey😀 wörld!"},
		{"op transformed to a no-op still gets a revision", sub("d", "e", 1, 4, `[3,-1]`), 6, "hey😀wörld!"},
		{"", sub("d", "f", 1, 5, `[3,-1]`), 7, "heywörld!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev := mustSubmit(t, h, tt.s)
			if rev != tt.wantRev {
				t.Fatalf("rev %d, want %d", rev, tt.wantRev)
			}
			if got, text := textOf(t, h, "d"); got != rev || text != tt.wantText {
				t.Fatalf("text %q at %d, want %q", text, got, tt.wantText)
			}
		})
	}
}

func TestSubmitErrors(t *testing.T) {
	h := newHub(t, Config{MaxDocBytes: 64, MaxOpBytes: 40, Retain: 3, MaxBehind: 7})
	for i := range 8 {
		mustSubmit(t, h, sub("d", "a", uint64(i+1), uint64(i), `["x"]`))
	}
	long := `["` + strings.Repeat("y", 50) + `"]`
	tests := []struct {
		name string
		s    Submission
		want contract.Code
	}{
		{"bad document id", sub("a b", "a", 1, 0, `["x"]`), contract.CodeBadRequest},
		{"empty document id", sub("", "a", 1, 0, `["x"]`), contract.CodeBadRequest},
		{"empty client", sub("d", "", 1, 9, `["x"]`), contract.CodeBadRequest},
		{"client too long", sub("d", strings.Repeat("c", 129), 1, 9, `["x"]`), contract.CodeBadRequest},
		{"user invalid UTF-8", Submission{Doc: "d", Client: "c", BaseRev: 9, Op: json.RawMessage(`["x"]`), User: "\xff"}, contract.CodeBadRequest},
		{"op not JSON", sub("d", "a", 9, 9, `[1,`), contract.CodeBadRequest},
		{"op not an array", sub("d", "a", 9, 9, `{"x":1}`), contract.CodeBadRequest},
		{"zero retain", sub("d", "a", 9, 9, `[0,"x"]`), contract.CodeBadRequest},
		{"fraction", sub("d", "a", 9, 9, `[1.5,"x"]`), contract.CodeBadRequest},
		{"empty insert", sub("d", "a", 9, 9, `[""]`), contract.CodeBadRequest},
		{"lone surrogate", sub("d", "a", 9, 9, `["\ud800"]`), contract.CodeBadRequest},
		{"op longer than the document", sub("d", "a", 9, 9, `[39,"x"]`), contract.CodeBadRequest},
		{"delete past the end", sub("d", "a", 9, 9, `[-39]`), contract.CodeBadRequest},
		{"op over the size limit", sub("d", "a", 9, 9, long), contract.CodeTooLarge},
		{"document over the size limit", sub("d", "a", 9, 9, `["`+strings.Repeat("z", 30)+`"]`), contract.CodeTooLarge},
		{"op fits the head but not its base", sub("d", "a", 9, 7, `[8,"x"]`), contract.CodeBadRequest},
		{"base revision ahead of head", sub("d", "a", 9, 10, `["x"]`), contract.CodeConflict},
		{"base revision further behind than MaxBehind", sub("d", "a", 9, 1, `["x"]`), contract.CodeConflict},
		{"op fits the head but not its base, from the store", sub("d", "a", 9, 3, `[8,"x"]`), contract.CodeBadRequest},
	}
	// Grow the document close to its limit first: 38 bytes at revision 9.
	mustSubmit(t, h, sub("d", "a", 100, 8, `["`+strings.Repeat("w", 30)+`"]`))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.Submit(context.Background(), tt.s)
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.want {
				t.Fatalf("got %v, want code %s", err, tt.want)
			}
			if rev, text := textOf(t, h, "d"); rev != 9 || len(text) != 38 {
				t.Fatalf("failed submit changed the document: rev %d, %d bytes", rev, len(text))
			}
		})
	}
	// A shrinking op on a document over the limit is fine.
	if _, err := h.Submit(context.Background(), sub("d", "a", 101, 9, `[-30]`)); err != nil {
		t.Fatal(err)
	}
}

func TestExactlyOnce(t *testing.T) {
	store := openStore(t, "")
	h := newHub(t, Config{Store: store})
	ctx := context.Background()
	r1 := mustSubmit(t, h, sub("d", "alice", 1, 0, `["abc"]`))
	mustSubmit(t, h, sub("d", "bob", 1, 1, `[3,"d"]`))
	// Same client and seq, base before the first application: same revision, nothing changes.
	for _, base := range []uint64{0, 0} {
		if rev := mustSubmit(t, h, sub("d", "alice", 1, base, `["abc"]`)); rev != r1 {
			t.Fatalf("resubmission got %d, want %d", rev, r1)
		}
	}
	// The same seq from another client is a different op.
	if rev := mustSubmit(t, h, sub("d", "carol", 1, 2, `["x"]`)); rev != 3 {
		t.Fatalf("other client got %d", rev)
	}
	if rev, text := textOf(t, h, "d"); rev != 3 || text != "xabcd" {
		t.Fatalf("text %q at %d", text, rev)
	}
	// Resubmissions are recognized after a restart too (the log is reloaded).
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h2 := newHub(t, Config{Store: store})
	if rev := mustSubmit(t, h2, sub("d", "bob", 1, 1, `[3,"d"]`)); rev != 2 {
		t.Fatalf("resubmission after restart got %d", rev)
	}
	if rev, text := textOf(t, h2, "d"); rev != 3 || text != "xabcd" {
		t.Fatalf("after restart: %q at %d", text, rev)
	}
	// Concurrent resubmissions of one op: one revision for all.
	var wg sync.WaitGroup
	revs := make([]uint64, 8)
	for i := range revs {
		wg.Go(func() {
			revs[i], _ = h2.Submit(ctx, sub("d", "dave", 7, 3, `[1,"!"]`))
		})
	}
	wg.Wait()
	for _, r := range revs {
		if r != 4 {
			t.Fatalf("concurrent resubmissions got %v", revs)
		}
	}
	if rev, _ := textOf(t, h2, "d"); rev != 4 {
		t.Fatalf("head %d after concurrent resubmissions", rev)
	}
}

func TestTieBreakFollowsSequencing(t *testing.T) {
	h := newHub(t, Config{})
	mustSubmit(t, h, sub("d", "a", 1, 0, `["ac"]`))
	mustSubmit(t, h, sub("d", "x", 1, 1, `[1,"1"]`))
	mustSubmit(t, h, sub("d", "y", 1, 1, `[1,"2"]`))
	mustSubmit(t, h, sub("d", "z", 1, 1, `[1,"3"]`))
	if _, text := textOf(t, h, "d"); text != "a123c" {
		t.Fatalf("text %q, want inserts in sequencing order", text)
	}
}

// TestConcurrentConvergence has many goroutines submit random ops with
// random base revisions to several documents, then checks every document
// against a reference built by replaying its stored log from scratch, and
// every acknowledged op against its stored record.
func TestConcurrentConvergence(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, "")
	h := newHub(t, Config{Store: store, Retain: 64, SnapshotEvery: 10})
	docs := []string{"d0", "d1", "d2"}
	type ack struct {
		doc, client string
		seq, rev    uint64
	}
	var (
		mu   sync.Mutex
		acks []ack
		wg   sync.WaitGroup
	)
	// Subscribers must see every committed revision once, in order.
	var subMu sync.Mutex
	subRevs := map[string][]uint64{}
	for _, doc := range docs {
		s, err := h.Subscribe(ctx, doc, func(r storage.Record) {
			subMu.Lock()
			subRevs[doc] = append(subRevs[doc], r.Rev)
			subMu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Cancel()
	}
	const workers, perWorker = 12, 25
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 99))
			client := fmt.Sprintf("w%d", w)
			for seq := uint64(1); seq <= perWorker; seq++ {
				doc := docs[r.IntN(len(docs))]
				head, _, err := h.Text(ctx, doc)
				if err != nil {
					t.Error(err)
					return
				}
				base := head - min(head, uint64(r.IntN(20)))
				text, err := h.TextAt(ctx, doc, base)
				if err != nil {
					t.Error(err)
					return
				}
				op, _ := randomOp(r, len([]rune(text))).MarshalJSON()
				s := Submission{Doc: doc, Client: client, Seq: seq, BaseRev: base, Op: op}
				rev, err := h.Submit(ctx, s)
				if err != nil {
					t.Errorf("submit: %v", err)
					return
				}
				if r.IntN(4) == 0 { // resend: must be recognized
					if again, err := h.Submit(ctx, s); err != nil || again != rev {
						t.Errorf("resubmission got %d, %v; want %d", again, err, rev)
					}
				}
				mu.Lock()
				acks = append(acks, ack{doc, client, seq, rev})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(acks) != workers*perWorker {
		t.Fatalf("%d acks", len(acks))
	}
	total := uint64(0)
	for _, doc := range docs {
		head, live := textOf(t, h, doc)
		total += head
		recs, err := store.Records(ctx, doc, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		ref := ""
		for _, rec := range recs {
			op, err := ot.Parse(rec.Op)
			if err != nil {
				t.Fatal(err)
			}
			if ref, err = op.ApplyString(ref); err != nil {
				t.Fatalf("%s record %d: %v", doc, rec.Rev, err)
			}
		}
		subMu.Lock()
		got := subRevs[doc]
		subMu.Unlock()
		for i, r := range got {
			if r != uint64(i+1) || len(got) != int(head) {
				t.Fatalf("%s: subscriber saw revisions %v, head %d", doc, got, head)
			}
		}
		if ref != live || uint64(len(recs)) != head {
			t.Fatalf("%s: live text at %d differs from the replayed log (%d records)", doc, head, len(recs))
		}
		for _, a := range acks {
			if a.doc == doc && (recs[a.rev-1].Client != a.client || recs[a.rev-1].Seq != a.seq) {
				t.Fatalf("ack %+v does not match record %+v", a, recs[a.rev-1])
			}
		}
	}
	if total != workers*perWorker {
		t.Fatalf("%d revisions for %d distinct ops", total, workers*perWorker)
	}
	if err := store.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// randomOp returns a random op on a text of n code points.
func randomOp(r *rand.Rand, n int) ot.Op {
	b := ot.NewBuilder()
	pos := 0
	if n > 0 {
		k := r.IntN(n + 1)
		b.Retain(k)
		pos = k
	}
	if pos < n && r.IntN(3) == 0 {
		b.Delete(1 + r.IntN(min(n-pos, 4)))
	}
	words := []string{"a", "ö", "日本", "😀", "e\u0301", " ", "\n"}
	b.Insert(words[r.IntN(len(words))] + words[r.IntN(len(words))])
	return b.Build()
}

func TestSubscribeAndRecords(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, "")
	h := newHub(t, Config{Store: store, Retain: 4})
	mustSubmit(t, h, sub("d", "a", 1, 0, `["x"]`))
	var mu sync.Mutex
	var got []uint64
	s, err := h.Subscribe(ctx, "d", func(r storage.Record) {
		mu.Lock()
		got = append(got, r.Rev)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Rev != 1 || s.Text.String() != "x" {
		t.Fatalf("subscription starts at %d %q", s.Rev, s.Text.String())
	}
	for i := range 20 {
		mustSubmit(t, h, sub("d", "a", uint64(i+2), uint64(i+1), `["y"]`))
	}
	s.Cancel()
	s.Cancel()
	mustSubmit(t, h, sub("d", "a", 30, 21, `["z"]`))
	mu.Lock()
	want := make([]uint64, 20)
	for i := range want {
		want[i] = uint64(i + 2)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("subscriber got %v", got)
	}
	mu.Unlock()
	for _, after := range []uint64{0, 5, 19, 21, 22} {
		recs, err := h.Records(ctx, "d", after, 3)
		if err != nil {
			t.Fatalf("after %d: %v", after, err)
		}
		wantN := min(3, 22-int(after))
		if len(recs) != wantN || (wantN > 0 && recs[0].Rev != after+1) {
			t.Fatalf("after %d: %d records", after, len(recs))
		}
	}
	if _, err := h.Records(ctx, "d", 23, 3); CodeOf(err) != contract.CodeNotFound {
		t.Fatalf("records beyond head: %v", err)
	}
}

// TestRecordsFromMemoryMatchStore: the records the hub serves from its
// in-memory log and hands to subscribers are, field by field, the ones the
// store keeps (the log holds them in a compact form of its own).
func TestRecordsFromMemoryMatchStore(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, "")
	h := newHub(t, Config{Store: store})
	var mu sync.Mutex
	var fed []storage.Record
	mustSubmit(t, h, Submission{Doc: "d", Client: "client-α", Seq: 1, User: "Zoë", Op: []byte(`["héllo wörld"]`)})
	s, err := h.Subscribe(ctx, "d", func(r storage.Record) {
		mu.Lock()
		fed = append(fed, r)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cancel()
	ops := []string{`[1,"→",-2]`, `[3,-1,"日本"]`, `[-1]`, `[2,"😀",4,"x"]`}
	for i, op := range ops {
		client := []string{"client-α", "client-β"}[i%2]
		mustSubmit(t, h, Submission{Doc: "d", Client: client, Seq: uint64(i + 2), BaseRev: uint64(i + 1), User: "u" + client, Op: []byte(op)})
	}
	mem, err := h.Records(ctx, "d", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := store.Records(ctx, "d", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(mem) != 1+len(ops) || !reflect.DeepEqual(mem, stored) {
		t.Fatalf("from memory:\n%+v\nfrom the store:\n%+v", mem, stored)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(fed, stored[1:]) {
		t.Fatalf("fed to the subscriber:\n%+v\nfrom the store:\n%+v", fed, stored[1:])
	}
	for i, r := range stored {
		if r.Rev != uint64(i+1) || r.Time.IsZero() || r.Time.Location() != time.UTC {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
}

// TestLogSharesClientIDs: the ops of one client share one copy of its id
// in the log, however many copies the submissions brought.
func TestLogSharesClientIDs(t *testing.T) {
	h := newHub(t, Config{Store: openStore(t, "")})
	for i := range 6 {
		client := strings.Clone([]string{"client-one", "client-two"}[i%2])
		mustSubmit(t, h, Submission{Doc: "d", Client: client, Seq: uint64(i + 1), BaseRev: uint64(i), Op: []byte(`["x"]`)})
	}
	d, err := h.acquire(context.Background(), "d")
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.log) != 6 {
		t.Fatalf("%d entries", len(d.log))
	}
	for i := 2; i < len(d.log); i++ {
		if unsafe.StringData(d.log[i].client) != unsafe.StringData(d.log[i-2].client) {
			t.Fatalf("entry %d holds its own copy of %q", i, d.log[i].client)
		}
	}
}

// failingStore wraps the real store; Commit fails while fail is set and
// blocks while gate is non-nil (until it is closed).
type failingStore struct {
	storage.Store
	mu   sync.Mutex
	fail bool
	gate chan struct{}
}

var errInjected = errors.New("injected commit failure")

func (f *failingStore) Commit(ctx context.Context, w []storage.Write) error {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errInjected
	}
	return f.Store.Commit(ctx, w)
}

func (f *failingStore) set(fail bool, gate chan struct{}) {
	f.mu.Lock()
	f.fail, f.gate = fail, gate
	f.mu.Unlock()
}

func TestCommitFailure(t *testing.T) {
	ctx := context.Background()
	real := openStore(t, "")
	fs := &failingStore{Store: real}
	h := newHub(t, Config{Store: fs})
	mustSubmit(t, h, sub("d", "a", 1, 0, `["abc"]`))
	mustSubmit(t, h, sub("e", "a", 1, 0, `["e"]`))

	// Batch 1 (d) blocks in Commit; the op sequenced on top of it in d
	// must fail with it (it was transformed against it), and e's op,
	// independent, fails in the next batch, which the store fails too.
	gate := make(chan struct{})
	fs.set(true, gate)
	errs := make(chan error, 3)
	go func() { _, err := h.Submit(ctx, sub("d", "a", 2, 1, `[3,"d"]`)); errs <- err }()
	waitFor(t, func() bool { r, _ := headOf(h, "d"); return r == 2 })
	go func() { _, err := h.Submit(ctx, sub("d", "b", 1, 1, `["0"]`)); errs <- err }()
	go func() { _, err := h.Submit(ctx, sub("e", "b", 1, 1, `["0"]`)); errs <- err }()
	waitFor(t, func() bool { r, _ := headOf(h, "d"); re, _ := headOf(h, "e"); return r == 3 && re == 2 })
	close(gate)
	for range 3 {
		if err := <-errs; CodeOf(err) != contract.CodeInternal || !errors.Is(err, errInjected) {
			t.Fatalf("submit during failed commit: %v", err)
		}
	}
	// Rolled back in memory and on disk.
	for doc, want := range map[string]string{"d": "abc", "e": "e"} {
		if rev, text := textOf(t, h, doc); rev != 1 || text != want {
			t.Fatalf("%s after failure: %q at %d", doc, text, rev)
		}
		if m, err := real.Meta(ctx, doc); err != nil || m.Head != 1 {
			t.Fatalf("%s stored head %d %v", doc, m.Head, err)
		}
	}
	// And it goes on once the store recovers.
	fs.set(false, nil)
	if rev := mustSubmit(t, h, sub("d", "a", 2, 1, `[3,"d"]`)); rev != 2 {
		t.Fatalf("after recovery rev %d", rev)
	}
	if _, text := textOf(t, h, "d"); text != "abcd" {
		t.Fatalf("text %q", text)
	}
	if err := real.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if h.Stats().FailedCommit != 2 {
		t.Fatalf("stats %+v", h.Stats())
	}
}

func TestStoreClosedUnderneath(t *testing.T) {
	store := openStore(t, "")
	h, err := New(Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	mustSubmit(t, h, sub("d", "a", 1, 0, `["abc"]`))
	store.Close()
	if _, err := h.Submit(context.Background(), sub("d", "a", 2, 1, `["x"]`)); CodeOf(err) != contract.CodeInternal || !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("submit on a closed store: %v", err)
	}
	if rev, text := textOf(t, h, "d"); rev != 1 || text != "abc" {
		t.Fatalf("text %q at %d", text, rev)
	}
	// The final snapshot cannot be written either, and Close says so.
	if err := h.Close(context.Background()); CodeOf(err) != contract.CodeInternal {
		t.Fatalf("close: %v", err)
	}
}

func headOf(h *Hub, doc string) (uint64, error) {
	d, err := h.acquire(context.Background(), doc)
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.head, nil
}

// waitFor polls cond (for states only another goroutine's progress makes true).
func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHistoryDiffRestoreDelete(t *testing.T) {
	ctx := context.Background()
	h := newHub(t, Config{SnapshotEvery: 3})
	texts := []string{"", "one", "one two", "one two three", "one 2 three", "1 2 three"}
	for i := 1; i < len(texts); i++ {
		op, _ := ot.OpFromTexts(texts[i-1], texts[i]).MarshalJSON()
		mustSubmit(t, h, Submission{Doc: "doc", Client: "c", Seq: uint64(i), BaseRev: uint64(i - 1), Op: op, User: "ann"})
	}
	for rev, want := range texts {
		if got, err := h.TextAt(ctx, "doc", uint64(rev)); err != nil || got != want {
			t.Fatalf("text at %d: %q %v", rev, got, err)
		}
	}
	revs, err := h.History(ctx, "doc", 0, 2)
	if err != nil || len(revs) != 2 || revs[0].Rev != 5 || revs[1].Rev != 4 || revs[0].User != "ann" || revs[0].Del != 3 || revs[0].Ins != 1 {
		t.Fatalf("history %+v %v", revs, err)
	}
	if revs, err := h.History(ctx, "doc", 2, 10); err != nil || len(revs) != 1 || revs[0].Rev != 1 {
		t.Fatalf("history before 2: %+v %v", revs, err)
	}
	diffs, err := h.Diff(ctx, "doc", 3, 5)
	want := []ot.Diff{{Op: -1, Text: "one two"}, {Op: 1, Text: "1 2"}, {Op: 0, Text: " three"}}
	if err != nil || !slices.Equal(diffs, want) {
		t.Fatalf("diff %+v %v", diffs, err)
	}
	rev, err := h.Restore(ctx, 2, Submission{Doc: "doc", Client: "c", Seq: 99})
	if err != nil || rev != 6 {
		t.Fatalf("restore: %d %v", rev, err)
	}
	if _, text := textOf(t, h, "doc"); text != "one two" {
		t.Fatalf("restored text %q", text)
	}
	if _, err := h.TextAt(ctx, "doc", 7); CodeOf(err) != contract.CodeNotFound {
		t.Fatalf("text beyond head: %v", err)
	}
	if _, err := h.Restore(ctx, 9, Submission{Doc: "doc", Client: "c", Seq: 100}); CodeOf(err) != contract.CodeNotFound {
		t.Fatalf("restore beyond head: %v", err)
	}
	mustSubmit(t, h, sub("other", "c", 1, 0, `["x"]`))
	docs, err := h.List(ctx)
	if err != nil || len(docs) != 2 || docs[0].ID != "doc" || docs[0].Head != 6 {
		t.Fatalf("list %+v %v", docs, err)
	}
	if err := h.Delete(ctx, "doc"); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete(ctx, "doc"); CodeOf(err) != contract.CodeNotFound {
		t.Fatalf("second delete: %v", err)
	}
	if rev, text := textOf(t, h, "doc"); rev != 0 || text != "" {
		t.Fatalf("deleted doc: %q at %d", text, rev)
	}
	if docs, _ := h.List(ctx); len(docs) != 1 {
		t.Fatalf("list after delete %+v", docs)
	}
	if rev := mustSubmit(t, h, sub("doc", "c", 1, 0, `["new"]`)); rev != 1 {
		t.Fatalf("new doc after delete got rev %d", rev)
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, "")
	h, err := New(Config{Store: store, SnapshotEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		mustSubmit(t, h, sub("d", "a", uint64(i+1), uint64(i), `["x"]`))
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal("second close:", err)
	}
	if _, err := h.Submit(ctx, sub("d", "a", 9, 5, `["x"]`)); CodeOf(err) != contract.CodeInternal || !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
	if m, err := store.Meta(ctx, "d"); err != nil || m.SnapRev != 5 {
		t.Fatalf("final snapshot: %+v %v", m, err)
	}
}

func TestNewNeedsStore(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a store")
	}
}

func FuzzSubmit(f *testing.F) {
	for _, s := range []string{`["abc"]`, `[1,"x",-1]`, `[-2]`, `[3]`, `["😀",1]`, `[1e3]`, `[2,"\u00e9"]`, `null`, `[[]]`} {
		f.Add(s, uint8(1))
	}
	h := newHub(f, Config{MaxDocBytes: 1 << 12})
	mustSubmit(f, h, sub("d", "seed", 1, 0, `["hello wörld"]`))
	var seq uint64
	f.Fuzz(func(t *testing.T, op string, back uint8) {
		rev, before := textOf(t, h, "d")
		seq++
		base := rev - min(rev, uint64(back%4))
		got, err := h.Submit(context.Background(), sub("d", "fuzz", seq, base, op))
		after, text := textOf(t, h, "d")
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok || CodeOf(err) == contract.CodeInternal {
				t.Fatalf("untyped or internal error %v", err)
			}
			if after != rev || text != before {
				t.Fatalf("failed submit changed the document")
			}
			return
		}
		if got != rev+1 || after != got {
			t.Fatalf("rev %d after %d", got, rev)
		}
	})
}

// TestCloseWhileSubmitting closes the hub under load: every Submit ends,
// either committed (and then stored) or failed with internal.
func TestCloseWhileSubmitting(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, "")
	h, err := New(Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string][]uint64{}
	for w := range 8 {
		doc := fmt.Sprintf("d%d", w%3)
		wg.Go(func() {
			for seq := uint64(1); ; seq++ {
				rev, err := h.Submit(ctx, sub(doc, fmt.Sprint(w), seq, 0, `["x"]`))
				if err != nil {
					if CodeOf(err) != contract.CodeInternal || !errors.Is(err, ErrClosed) {
						t.Errorf("submit during close: %v", err)
					}
					return
				}
				mu.Lock()
				acked[doc] = append(acked[doc], rev)
				mu.Unlock()
			}
		})
	}
	waitFor(t, func() bool { return h.Stats().CommittedOps > 50 })
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for doc, revs := range acked {
		m, err := store.Meta(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		if top := slices.Max(revs); top != m.Head || m.SnapRev != m.Head {
			t.Fatalf("%s: acked up to %d, stored head %d, final snapshot %d", doc, top, m.Head, m.SnapRev)
		}
	}
	if err := store.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestObserveCommit(t *testing.T) {
	type obs struct {
		records int
		took    time.Duration
	}
	var mu sync.Mutex
	var seen []obs
	real := openStore(t, "")
	fs := &failingStore{Store: real}
	h := newHub(t, Config{Store: fs, ObserveCommit: func(records int, took time.Duration) {
		mu.Lock()
		seen = append(seen, obs{records, took})
		mu.Unlock()
	}})
	observed := func() []obs {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
	mustSubmit(t, h, sub("d", "a", 1, 0, `["abc"]`))
	// Submit returns after the observer ran: it runs before the batch is
	// released.
	if got := observed(); len(got) != 1 || got[0].records != 1 || got[0].took <= 0 {
		t.Fatalf("after one commit: %+v", got)
	}

	// Hold a commit so that several ops, of two documents, pile up into
	// the next batch; the observer counts the records of every batch.
	gate := make(chan struct{})
	fs.set(false, gate)
	errs := make(chan error, 4)
	go func() { _, err := h.Submit(context.Background(), sub("d", "a", 2, 1, `["x"]`)); errs <- err }()
	waitFor(t, func() bool { r, _ := headOf(h, "d"); return r == 2 })
	for i, doc := range []string{"d", "e", "e"} {
		go func() {
			_, err := h.Submit(context.Background(), sub(doc, fmt.Sprint("c", i), 1, 0, `["y"]`))
			errs <- err
		}()
	}
	waitFor(t, func() bool { r, _ := headOf(h, "d"); re, _ := headOf(h, "e"); return r == 3 && re == 2 })
	close(gate)
	fs.set(false, nil)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := observed()
	total := 0
	for _, o := range got[1:] {
		total += o.records
	}
	if total != 4 || len(got) > 3 {
		t.Fatalf("observed %+v, want 4 more records in at most 2 commits", got)
	}

	// A failed commit is not observed.
	fs.set(true, nil)
	if _, err := h.Submit(context.Background(), sub("d", "z", 1, 3, `["q"]`)); CodeOf(err) != contract.CodeInternal {
		t.Fatalf("submit with failing store: %v", err)
	}
	if n := len(observed()); n != len(got) {
		t.Fatalf("failed commit observed: %d calls, was %d", n, len(got))
	}
	fs.set(false, nil)
}

// TestLateOps submits ops made far behind the head (beyond the inline
// transform run, so they are transformed outside the document lock, and
// with a small Retain older than the in-memory log, so read from the store) while
// other ops keep arriving at the head, and checks that each late op was
// stored as the step-wise transform of its op over every op sequenced
// between its base and its revision.
func TestLateOps(t *testing.T) {
	for _, retain := range []int{0, 8} {
		t.Run(fmt.Sprint("retain ", retain), func(t *testing.T) { testLateOps(t, retain) })
	}
}

func testLateOps(t *testing.T, retain int) {
	ctx := context.Background()
	store := openStore(t, "")
	h := newHub(t, Config{Store: store, Retain: retain})
	r := rand.New(rand.NewPCG(3, 4))
	text := ""
	for seq := uint64(1); seq <= 300; seq++ {
		op := randomOp(r, len([]rune(text)))
		b, _ := op.MarshalJSON()
		mustSubmit(t, h, Submission{Doc: "d", Client: "setup", Seq: seq, BaseRev: seq - 1, Op: b})
		text, _ = op.ApplyString(text)
	}
	type late struct {
		base, rev uint64
		op        ot.Op
	}
	var (
		mu     sync.Mutex
		lates  []late
		wg     sync.WaitGroup
		lateWG sync.WaitGroup
	)
	stop := make(chan struct{})
	wg.Go(func() { // keeps the head moving
		r := rand.New(rand.NewPCG(5, 6))
		for seq := uint64(1); seq <= 2000; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			head, cur, err := h.Text(ctx, "d")
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := randomOp(r, cur.Len()).MarshalJSON()
			if _, err := h.Submit(ctx, Submission{Doc: "d", Client: "head", Seq: seq, BaseRev: head, Op: b}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for w := range 4 {
		lateWG.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 8))
			for seq := uint64(1); seq <= 15; seq++ {
				head, _, err := h.Text(ctx, "d")
				if err != nil {
					t.Error(err)
					return
				}
				base := head - uint64(inlineTransform+1+r.IntN(200))
				old, err := h.TextAt(ctx, "d", base)
				if err != nil {
					t.Error(err)
					return
				}
				op := randomOp(r, len([]rune(old)))
				b, _ := op.MarshalJSON()
				rev, err := h.Submit(ctx, Submission{Doc: "d", Client: fmt.Sprint("late", w), Seq: seq, BaseRev: base, Op: b})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				lates = append(lates, late{base, rev, op})
				mu.Unlock()
			}
		})
	}
	lateWG.Wait()
	close(stop)
	wg.Wait()
	if len(lates) != 60 {
		t.Fatalf("%d late ops acknowledged", len(lates))
	}
	recs, err := store.Records(ctx, "d", 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ops := make([]ot.Op, len(recs)+1) // by revision
	for _, rec := range recs {
		if ops[rec.Rev], err = ot.Parse(rec.Op); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range lates {
		want := l.op
		for rev := l.base + 1; rev < l.rev; rev++ {
			_, want, _ = ot.Transform(ops[rev], want)
		}
		if !ops[l.rev].Equal(want) {
			t.Fatalf("late op %v on %d stored at %d as %v, want %v", l.op, l.base, l.rev, ops[l.rev], want)
		}
	}
	if err := store.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
