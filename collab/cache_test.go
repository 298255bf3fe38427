package collab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// logLen returns the number of entries doc keeps in memory (-1: not live).
func logLen(tb testing.TB, h *Hub, doc string) int {
	tb.Helper()
	sh := h.shard(doc)
	sh.mu.RLock()
	d := sh.docs[doc]
	sh.mu.RUnlock()
	if d == nil {
		return -1
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.log)
}

// storedOps returns doc's ops by revision (index 0 unused), from the store.
func storedOps(tb testing.TB, store storage.Store, doc string) []ot.Op {
	tb.Helper()
	recs, err := store.Records(context.Background(), doc, 0, 1<<20)
	if err != nil {
		tb.Fatal(err)
	}
	ops := make([]ot.Op, len(recs)+1)
	for _, r := range recs {
		if ops[r.Rev], err = ot.Parse(r.Op); err != nil {
			tb.Fatal(err)
		}
	}
	return ops
}

// TestSubmitBehindMemory submits ops made on revisions the in-memory log no
// longer holds: they are transformed over records read from the store, and
// a resubmission of an op applied long ago is still recognized.
func TestSubmitBehindMemory(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, "")
	h := newHub(t, Config{Store: store, Retain: 4})
	r := rand.New(rand.NewPCG(7, 8))
	const setup = 60
	setupOps := make([]ot.Op, setup+1) // by seq (= revision)
	text := ""
	for seq := uint64(1); seq <= setup; seq++ {
		op := randomOp(r, len([]rune(text)))
		b, _ := op.MarshalJSON()
		mustSubmit(t, h, Submission{Doc: "d", Client: "setup", Seq: seq, BaseRev: seq - 1, Op: b})
		text, _ = op.ApplyString(text)
		setupOps[seq] = op
	}
	if n := logLen(t, h, "d"); n > 5 {
		t.Fatalf("the log holds %d entries, Retain is 4 (trimmed past 5)", n)
	}

	t.Run("resubmissions", func(t *testing.T) {
		for _, tt := range []struct{ seq, base uint64 }{{3, 2}, {3, 0}, {40, 1}, {55, 50}, {59, 58}} {
			b, _ := setupOps[tt.seq].MarshalJSON()
			rev, err := h.Submit(ctx, Submission{Doc: "d", Client: "setup", Seq: tt.seq, BaseRev: tt.base, Op: b})
			if err != nil || rev != tt.seq {
				t.Fatalf("resubmission of seq %d on %d: rev %d, %v; want %d", tt.seq, tt.base, rev, err, tt.seq)
			}
		}
		if head, got := textOf(t, h, "d"); head != setup || got != text {
			t.Fatalf("resubmissions changed the document: rev %d", head)
		}
	})

	for i, base := range []uint64{0, 1, 17, 40, 61, 63} {
		t.Run(fmt.Sprint("new op on ", base), func(t *testing.T) {
			old, err := h.TextAt(ctx, "d", base)
			if base == 0 {
				old, err = "", nil
			}
			if err != nil {
				t.Fatal(err)
			}
			op := randomOp(r, len([]rune(old)))
			b, _ := op.MarshalJSON()
			head, before := textOf(t, h, "d")
			rev, err := h.Submit(ctx, Submission{Doc: "d", Client: "late", Seq: uint64(i + 1), BaseRev: base, Op: b})
			if err != nil || rev != head+1 {
				t.Fatalf("rev %d, %v; want %d", rev, err, head+1)
			}
			ops := storedOps(t, store, "d")
			want := op
			for rev := base + 1; rev <= head; rev++ {
				_, want, _ = ot.Transform(ops[rev], want)
			}
			if !ops[rev].Equal(want) {
				t.Fatalf("stored %v, want %v", ops[rev], want)
			}
			after, _ := want.ApplyString(before)
			if _, got := textOf(t, h, "d"); got != after {
				t.Fatalf("text %q, want %q", got, after)
			}
			// And once more: recognized, from memory or from the store.
			if again, err := h.Submit(ctx, Submission{Doc: "d", Client: "late", Seq: uint64(i + 1), BaseRev: base, Op: b}); err != nil || again != rev {
				t.Fatalf("resubmission: rev %d, %v; want %d", again, err, rev)
			}
		})
	}
	if n := logLen(t, h, "d"); n > 5 {
		t.Fatalf("the log holds %d entries, Retain is 4 (trimmed past 5)", n)
	}
	if err := store.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestIdleDocumentDropsLog checks that a subscribed document (never
// evicted) that has been quiet for a quarter of the idle timeout drops its
// in-memory log, and that everything the log served still works from the
// store.
func TestIdleDocumentDropsLog(t *testing.T) {
	store := openStore(t, "")
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		h, err := New(Config{Store: store, IdleTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close(ctx)
		var got []uint64
		s, err := h.Subscribe(ctx, "d", func(r storage.Record) { got = append(got, r.Rev) })
		if err != nil {
			t.Fatal(err)
		}
		defer s.Cancel()
		for i := range 10 {
			mustSubmit(t, h, sub("d", "a", uint64(i+1), uint64(i), `["ab"]`))
		}
		if n := logLen(t, h, "d"); n != 10 {
			t.Fatalf("%d entries in memory, want 10", n)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := logLen(t, h, "d"); n != 10 {
			t.Fatalf("%d entries in memory after 10 s, want 10", n)
		}
		time.Sleep(20 * time.Second) // quiet for more than 15 s
		synctest.Wait()
		if n := logLen(t, h, "d"); n != 0 {
			t.Fatalf("%d entries in memory after 30 quiet seconds, want 0", n)
		}
		if rev := mustSubmit(t, h, sub("d", "a", 2, 1, `["ab"]`)); rev != 2 {
			t.Fatalf("resubmission after the log was dropped got %d, want 2", rev)
		}
		recs, err := h.Records(ctx, "d", 4, 100)
		if err != nil || len(recs) != 6 || recs[0].Rev != 5 {
			t.Fatalf("records after 4: %d, %v", len(recs), err)
		}
		if rev := mustSubmit(t, h, sub("d", "b", 1, 1, `[2,"!"]`)); rev != 11 {
			t.Fatalf("op on revision 1 got %d, want 11", rev)
		}
		if rev, text := textOf(t, h, "d"); rev != 11 || text != "abababababababababab!" {
			t.Fatalf("text %q at %d", text, rev)
		}
		if len(got) != 11 || got[10] != 11 {
			t.Fatalf("subscriber got %v", got)
		}
	})
}
