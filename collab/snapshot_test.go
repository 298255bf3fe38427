package collab

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
	bolt "go.etcd.io/bbolt"
)

// cadenceDoc writes a text of length code points to doc, then n ops that
// each replace one code point, checking after each commit that the newest
// snapshot is at or below the head and holds the text of its revision. It
// returns the texts by revision and the revisions that got a snapshot.
func cadenceDoc(t *testing.T, h *Hub, store *storage.Bolt, doc string, length, n int, seed uint64) (texts []string, snaps []uint64) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 7))
	text := ot.NewText(strings.Repeat("a", length))
	texts = []string{"", text.String()}
	if _, err := h.Submit(ctx, Submission{Doc: doc, Client: "c", Seq: 1, Op: fmt.Appendf(nil, "[%q]", text.String())}); err != nil {
		t.Fatal(err)
	}
	for rev := uint64(1); rev <= uint64(n); rev++ {
		op := replaceOp(r.IntN(length), rune('a'+r.IntN(26)))
		parsed, err := ot.Parse(op)
		if err != nil {
			t.Fatal(err)
		}
		if text, err = parsed.Apply(text); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, text.String())
		if _, err := h.Submit(ctx, Submission{Doc: doc, Client: "c", Seq: rev + 1, BaseRev: rev, Op: op}); err != nil {
			t.Fatal(err)
		}
		st, err := store.Load(ctx, doc, 0)
		if err != nil {
			t.Fatal(err)
		}
		if st.Snapshot.Rev > st.Meta.Head || st.Snapshot.Rev != st.Meta.SnapRev {
			t.Fatalf("rev %d: snapshot %d, meta %+v", rev+1, st.Snapshot.Rev, st.Meta)
		}
		if st.Snapshot.Rev > 0 && st.Snapshot.Text != texts[st.Snapshot.Rev] {
			t.Fatalf("snapshot %d does not hold the text of its revision", st.Snapshot.Rev)
		}
		if len(snaps) == 0 || snaps[len(snaps)-1] != st.Snapshot.Rev {
			snaps = append(snaps, st.Snapshot.Rev)
		}
	}
	return texts, snaps
}

// TestSnapshotCadence checks that snapshots follow the replay cost: a
// document whose ops since its snapshot would cost more to replay than its
// text to read gets a snapshot, but not more often than every
// minSnapshotGap revisions, and one on every multiple of SnapshotEvery;
// and that the text at every revision is still right.
func TestSnapshotCadence(t *testing.T) {
	for _, tc := range []struct {
		name           string
		length         int
		minGap, maxGap uint64
	}{
		// About 272 bytes of replay cost per op: a 4 KiB text reaches it
		// after 15 ops, but snapshots stay 16 apart.
		{"4KiB", 4096, minSnapshotGap, minSnapshotGap},
		{"tiny", 10, minSnapshotGap, minSnapshotGap},
		// 16 KiB: about every 60 ops (op lengths vary by a few bytes).
		{"16KiB", 16 << 10, 55, 65},
		// 64 KiB: 100 ops cost less than reading it; every SnapshotEvery.
		{"64KiB", 64 << 10, DefaultSnapshotEvery, DefaultSnapshotEvery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := openStore(t, "")
			h := newHub(t, Config{Store: store})
			texts, snaps := cadenceDoc(t, h, store, "d", tc.length, 250, 1)
			if len(snaps) < 3 {
				t.Fatalf("snapshots at %v", snaps)
			}
			// The regular snapshots fall on every multiple of
			// SnapshotEvery whatever the gap; the head ones follow the
			// replay cost.
			for i := 1; i < len(snaps); i++ {
				regular := snaps[i]%DefaultSnapshotEvery == 0
				if gap := snaps[i] - snaps[i-1]; snaps[i-1] > 0 && !regular && (gap < tc.minGap || gap > tc.maxGap) {
					t.Fatalf("snapshots at %v: gap %d, want %d to %d", snaps, gap, tc.minGap, tc.maxGap)
				}
			}
			for rev := uint64(DefaultSnapshotEvery); rev <= 250; rev += DefaultSnapshotEvery {
				if !slices.Contains(snaps, rev) {
					t.Fatalf("snapshots at %v: none at %d", snaps, rev)
				}
			}
			for rev := 1; rev < len(texts); rev += 7 {
				got, err := h.TextAt(context.Background(), "d", uint64(rev))
				if err != nil || got != texts[rev] {
					t.Fatalf("text at %d: %v", rev, err)
				}
			}
		})
	}
}

// TestSnapshotCadenceAfterReload checks that a document loaded with ops
// after its newest snapshot (as after a crash) counts them: its next
// snapshot comes as soon as if it had stayed in memory.
func TestSnapshotCadenceAfterReload(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, "")
	first := newHub(t, Config{Store: store, IdleTimeout: -1})
	_, snaps := cadenceDoc(t, first, store, "d", 4096, 40, 2) // snapshots at 16 and 32
	if want := []uint64{0, 16, 32}; fmt.Sprint(snaps) != fmt.Sprint(want) {
		t.Fatalf("snapshots at %v, want %v", snaps, want)
	}
	// A second hub over the same file loads the document at 41, nine ops
	// past its snapshot; the first one writes nothing more. Seven more
	// make 16 since the snapshot.
	second := newHub(t, Config{Store: store, IdleTimeout: -1})
	head, text, err := second.Text(ctx, "d")
	if err != nil || head != 41 {
		t.Fatalf("head %d, %v", head, err)
	}
	for rev := head; rev < 48; rev++ {
		op := replaceOp(int(rev), 'z')
		if _, err := second.Submit(ctx, Submission{Doc: "d", Client: "c2", Seq: rev, BaseRev: rev, Op: op}); err != nil {
			t.Fatal(err)
		}
		parsed, _ := ot.Parse(op)
		if text, err = parsed.Apply(text); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Load(ctx, "d", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Snapshot.Rev != 48 || st.Snapshot.Text != text.String() {
		t.Fatalf("newest snapshot at %d, want 48 with the text at 48", st.Snapshot.Rev)
	}
}

// TestHeadSnapshotBounded writes a few hundred revisions to two documents
// of 4 KiB, evicting them now and then (a final snapshot each time), then
// closes the hub and counts the snapshots in the file: a regular one on
// every multiple of SnapshotEvery and at most one more per document, the
// head slot, holding the newest text; the text at every revision is right.
func TestHeadSnapshotBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "collabd.db")
	docs := []string{"p", "q"}
	texts := map[string][]string{}
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store, err := storage.OpenBolt(path, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		h, err := New(Config{Store: store, IdleTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(9, 9))
		for _, d := range docs {
			init := strings.Repeat("a", 4096)
			mustSubmit(t, h, Submission{Doc: d, Client: "c", Seq: 1, Op: fmt.Appendf(nil, "[%q]", init)})
			texts[d] = []string{"", init}
		}
		seq := uint64(1)
		for round := range 12 {
			for range 20 + r.IntN(30) {
				d := docs[r.IntN(len(docs))]
				rev := uint64(len(texts[d]) - 1)
				op := replaceOp(r.IntN(4096), rune('a'+r.IntN(26)))
				parsed, _ := ot.Parse(op)
				next, err := parsed.ApplyString(texts[d][rev])
				if err != nil {
					t.Fatal(err)
				}
				seq++
				if got := mustSubmit(t, h, Submission{Doc: d, Client: "c", Seq: seq, BaseRev: rev, Op: op}); got != rev+1 {
					t.Fatalf("round %d: got revision %d, want %d", round, got, rev+1)
				}
				texts[d] = append(texts[d], next)
			}
			if round%3 == 2 {
				time.Sleep(2 * time.Minute) // evicted: a final snapshot each
				synctest.Wait()
				if n := h.Stats().LiveDocs; n != 0 {
					t.Fatalf("%d live documents after the idle timeout", n)
				}
			}
		}
		for _, d := range docs {
			for rev, want := range texts[d] {
				if got, err := h.TextAt(ctx, d, uint64(rev)); err != nil || got != want {
					t.Fatalf("%s: text at %d: %v", d, rev, err)
				}
			}
		}
		if err := h.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := store.Check(ctx); err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			st, err := store.Load(ctx, d, 0)
			head := uint64(len(texts[d]) - 1)
			if err != nil || st.Meta.Head != head || st.Snapshot.Rev != head || st.Snapshot.Text != texts[d][head] {
				t.Fatalf("%s: after Close the newest snapshot is at %d (head %d): %v", d, st.Snapshot.Rev, st.Meta.Head, err)
			}
		}
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
	})
	// The file's layout (docs/architecture.md, "Storage layout"): snap/
	// holds the regular snapshots, head/ the slots.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		for _, d := range docs {
			head := uint64(len(texts[d]) - 1)
			var regular []uint64
			c := tx.Bucket([]byte("snap")).Cursor()
			prefix := append([]byte(d), 0)
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				regular = append(regular, binary.BigEndian.Uint64(k[len(prefix):]))
			}
			for i, rev := range regular {
				if rev != uint64(i+1)*DefaultSnapshotEvery {
					t.Errorf("%s (head %d): regular snapshots at %v", d, head, regular)
					break
				}
			}
			if want := int(head / DefaultSnapshotEvery); len(regular) != want {
				t.Errorf("%s (head %d): %d regular snapshots, want %d", d, head, len(regular), want)
			}
			slot := tx.Bucket([]byte("head")).Get([]byte(d))
			if head%DefaultSnapshotEvery != 0 && (len(slot) < 8 || binary.BigEndian.Uint64(slot) != head) {
				t.Errorf("%s: head slot %x, want one at the head %d", d, slot, head)
			}
		}
		if n := tx.Bucket([]byte("head")).Stats().KeyN; n > len(docs) {
			t.Errorf("%d head slots for %d documents", n, len(docs))
		}
		return nil
	})
}
