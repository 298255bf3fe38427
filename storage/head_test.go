package storage

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// snapKeys counts doc's regular snapshots and head slots in the file,
// after a checkpoint.
func snapKeys(tb testing.TB, s *Bolt, doc string) (regular []uint64, heads int) {
	tb.Helper()
	if err := s.Checkpoint(context.Background()); err != nil {
		tb.Fatal(err)
	}
	err := s.dbView(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSnap).Cursor()
		p := docPrefix(doc)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			rev, _ := keyDocRev(k, doc)
			regular = append(regular, rev)
		}
		if tx.Bucket(bucketHead).Get([]byte(doc)) != nil {
			heads = 1
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return regular, heads
}

// TestHeadSlot commits two documents' histories in random batches, as the
// sequencer does: a regular snapshot on every multiple of 50, a head
// snapshot after most batches, a final head snapshot alone now and then
// (an eviction), sometimes at a revision an older snapshot already covers.
// After every commit the file holds the regular snapshots and at most one
// head slot per document, Load starts from the newest snapshot, and at the
// end (and after a reopen) TextAt is right at every revision and Check
// passes. With and without the journal.
func TestHeadSlot(t *testing.T) {
	for _, noJournal := range []bool{false, true} {
		t.Run(map[bool]string{false: "journal", true: "nojournal"}[noJournal], func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "collabd.db")
			opts := Options{NoJournal: noJournal, CheckpointBytes: 8 << 10, CheckpointInterval: time.Hour}
			s, err := OpenBolt(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close() }()
			docs := []string{"a", "a.b"}
			hist := map[string]*history{"a": makeHistory(t, 31, 400), "a.b": makeHistory(t, 32, 330)}
			next := map[string]int{} // records committed
			newest := map[string]uint64{}
			r := rand.New(rand.NewPCG(5, 6))
			for next["a"] < 400 || next["a.b"] < 330 {
				var ws []Write
				for _, d := range docs {
					h, i := hist[d], next[d]
					if i == len(h.recs) || r.IntN(4) == 0 {
						continue
					}
					w := Write{Doc: d, Records: h.recs[i:min(i+1+r.IntN(7), len(h.recs))]}
					last := w.Records[len(w.Records)-1].Rev
					for _, rec := range w.Records {
						if rec.Rev%50 == 0 {
							w.Snapshot = &Snapshot{Rev: rec.Rev, Text: h.texts[rec.Rev]}
						}
					}
					switch r.IntN(3) {
					case 0: // at the head
						w.HeadSnapshot = &Snapshot{Rev: last, Text: h.texts[last]}
					case 1: // older than what is there, or the regular one
						old := max(1, last-uint64(r.IntN(10)))
						w.HeadSnapshot = &Snapshot{Rev: old, Text: h.texts[old]}
					}
					for _, sn := range []*Snapshot{w.Snapshot, w.HeadSnapshot} {
						if sn != nil {
							newest[d] = max(newest[d], sn.Rev)
						}
					}
					next[d] += len(w.Records)
					ws = append(ws, w)
				}
				if len(ws) == 0 {
					continue
				}
				if err := s.Commit(ctx, ws); err != nil {
					t.Fatal(err)
				}
				if r.IntN(5) == 0 { // an eviction's final snapshot
					d := docs[r.IntN(2)]
					if rev := uint64(next[d]); rev > 0 {
						w := Write{Doc: d, HeadSnapshot: &Snapshot{Rev: rev, Text: hist[d].texts[rev]}}
						if err := s.Commit(ctx, []Write{w}); err != nil {
							t.Fatal(err)
						}
						newest[d] = max(newest[d], rev)
					}
				}
				for _, d := range docs {
					if next[d] == 0 {
						continue
					}
					regular, heads := snapKeys(t, s, d)
					for _, rev := range regular {
						if rev%50 != 0 {
							t.Fatalf("%s: regular snapshot at %d", d, rev)
						}
					}
					if len(regular) != next[d]/50 || heads > 1 {
						t.Fatalf("%s at %d: regular snapshots %v, %d head slots", d, next[d], regular, heads)
					}
					st, err := s.Load(ctx, d, 0)
					if err != nil {
						t.Fatal(err)
					}
					if st.Snapshot.Rev != newest[d] || st.Meta.SnapRev != newest[d] || st.Snapshot.Text != hist[d].texts[newest[d]] {
						t.Fatalf("%s: loaded snapshot %d (meta %d), want %d", d, st.Snapshot.Rev, st.Meta.SnapRev, newest[d])
					}
					if uint64(len(st.Records)) != st.Meta.Head-st.Snapshot.Rev {
						t.Fatalf("%s: %d records after the snapshot at %d, head %d", d, len(st.Records), st.Snapshot.Rev, st.Meta.Head)
					}
				}
			}
			verify := func() {
				t.Helper()
				if err := s.Check(ctx); err != nil {
					t.Fatal(err)
				}
				for _, d := range docs {
					for rev, want := range hist[d].texts {
						if got, err := s.TextAt(ctx, d, uint64(rev)); err != nil || got != want {
							t.Fatalf("%s: text at %d: %v", d, rev, err)
						}
					}
				}
			}
			verify()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = OpenBolt(path, opts); err != nil {
				t.Fatal(err)
			}
			verify()
		})
	}
}

// TestHeadSlotRules checks the slot's rules one by one: validation, a
// regular snapshot at or above the slot empties it, fold and delete, and
// that Check notices a slot that breaks the invariant.
func TestHeadSlotRules(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	h := makeHistory(t, 33, 120)
	commit := func(ws ...Write) error { return s.Commit(ctx, ws) }
	slot := func() uint64 {
		t.Helper()
		var rev uint64
		if err := s.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		s.dbView(func(tx *bolt.Tx) error {
			d, err := openDoc(tx, "d")
			if err == nil {
				rev, _, _ = d.headSlot()
			}
			return nil
		})
		return rev
	}
	if err := commit(Write{Doc: "d", HeadSnapshot: &Snapshot{Rev: 1, Text: "x"}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("head snapshot of a missing document: %v", err)
	}
	if err := commit(Write{Doc: "d", Records: h.recs[:10], HeadSnapshot: &Snapshot{Rev: 11, Text: "x"}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("head snapshot beyond the head: %v", err)
	}
	if err := commit(Write{Doc: "d", Delete: true, HeadSnapshot: &Snapshot{Rev: 1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("delete with a head snapshot: %v", err)
	}
	if err := commit(Write{Doc: "d", Records: h.recs[:10], HeadSnapshot: &Snapshot{Rev: 7, Text: h.texts[7]}}); err != nil {
		t.Fatal(err)
	}
	if got := slot(); got != 7 {
		t.Fatalf("slot at %d, want 7", got)
	}
	// A regular snapshot below the slot leaves it; at or above, empties it.
	if err := commit(Write{Doc: "d", Records: h.recs[10:20], Snapshot: &Snapshot{Rev: 5, Text: h.texts[5]}}); err != nil {
		t.Fatal(err)
	}
	if got := slot(); got != 7 {
		t.Fatalf("slot at %d after a regular snapshot below it, want 7", got)
	}
	if err := commit(Write{Doc: "d", Snapshot: &Snapshot{Rev: 7, Text: h.texts[7]}}); err != nil {
		t.Fatal(err)
	}
	if got := slot(); got != 0 {
		t.Fatalf("slot at %d after a regular snapshot at its revision", got)
	}
	// Both in one write: the head one above the regular one is kept.
	if err := commit(Write{Doc: "d", Records: h.recs[20:40], Snapshot: &Snapshot{Rev: 30, Text: h.texts[30]},
		HeadSnapshot: &Snapshot{Rev: 38, Text: h.texts[38]}}); err != nil {
		t.Fatal(err)
	}
	if got := slot(); got != 38 {
		t.Fatalf("slot at %d, want 38", got)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// A fold below the slot keeps it; at or above, its horizon's regular
	// snapshot replaces it.
	if _, err := s.Fold(ctx, "d", Retention{KeepRevs: 5}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := slot(); got != 38 {
		t.Fatalf("slot at %d after a fold to 35, want 38", got)
	}
	if _, err := s.Fold(ctx, "d", Retention{KeepRevs: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := slot(); got != 0 {
		t.Fatalf("slot at %d after a fold to 39", got)
	}
	if err := commit(Write{Doc: "d", Records: h.recs[40:60], HeadSnapshot: &Snapshot{Rev: 58, Text: h.texts[58]}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fold(ctx, "d", Retention{KeepRevs: 10}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := slot(); got != 58 {
		t.Fatalf("slot at %d after a fold to 50, want 58", got)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	for rev := uint64(50); rev <= 60; rev++ {
		if got, err := s.TextAt(ctx, "d", rev); err != nil || got != h.texts[rev] {
			t.Fatalf("text at %d after folds: %v", rev, err)
		}
	}
	// Check notices a slot below a regular snapshot, and one of no document.
	for _, bad := range []struct {
		key, val []byte
	}{
		{[]byte("d"), appendHead(nil, 49, h.texts[49])},
		{[]byte("nobody"), appendHead(nil, 1, "x")},
		{[]byte("d"), []byte{1, 2}},
	} {
		var old []byte
		s.dbUpdate(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketHead)
			old = bytes.Clone(b.Get([]byte("d")))
			return b.Put(bad.key, bad.val)
		})
		if err := s.Check(ctx); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("check with head slot %q -> %x: %v", bad.key, bad.val, err)
		}
		s.dbUpdate(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketHead)
			b.Delete(bad.key)
			return b.Put([]byte("d"), old)
		})
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := commit(Write{Doc: "d", Delete: true}); err != nil {
		t.Fatal(err)
	}
	if got := slot(); got != 0 {
		t.Fatalf("slot at %d after delete", got)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// oldPayload is a journal payload written by the encoder before the head
// slot existed (commit a489522): "old.doc" revisions 1-2 with a snapshot
// at 2, and a delete of "gone".
const oldPayload = "0102076f6c642e646f630202011c01018080af98cec4d2ee31050002633101755b2268c3a96c6c6f225d19010280a885d2d5c4d2ee31010002633101755b352c2221225d020768c3a96c6c6f2104676f6e650100"

// TestJournalOldFrames: a payload of the frame format before the head slot
// still decodes and replays, and the new encoder writes the same bytes for
// writes without a head snapshot.
func TestJournalOldFrames(t *testing.T) {
	p, err := hex.DecodeString(oldPayload)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := decodePayload(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].doc != "old.doc" || len(ws[0].recs) != 2 || ws[0].snap == nil || ws[0].snap.Rev != 2 ||
		string(ws[0].snapText) != "héllo!" || ws[0].head != nil || !ws[1].del {
		t.Fatalf("decoded %+v", ws)
	}
	back := []Write{{Doc: "old.doc", Snapshot: &Snapshot{Rev: 2, Text: "héllo!"}}, {Doc: "gone", Delete: true}}
	for j, v := range ws[0].recs {
		r, err := decodeRecord(uint64(j+1), v, true)
		if err != nil {
			t.Fatal(err)
		}
		back[0].Records = append(back[0].Records, r)
	}
	if got := appendPayload(nil, back); !bytes.Equal(got, p) {
		t.Fatalf("re-encoded:\n%x\nwant\n%x", got, p)
	}
	// Replayed into a file, as a crashed older server's journal would be.
	s := openTest(t, Options{NoJournal: true})
	if err := s.dbUpdate(func(tx *bolt.Tx) error {
		return applyFrames(tx, []journalFrame{{lsn: 1, payload: p}}, 1)
	}); err != nil {
		t.Fatal(err)
	}
	if txt, err := s.TextAt(context.Background(), "old.doc", 2); err != nil || txt != "héllo!" {
		t.Fatalf("text %q, %v", txt, err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A frame with a head snapshot round-trips; an unknown flag is refused.
	withHead := appendPayload(nil, []Write{{Doc: "n", HeadSnapshot: &Snapshot{Rev: 3, Text: "abc"}}})
	ws, err = decodePayload(withHead)
	if err != nil || len(ws) != 1 || ws[0].head == nil || ws[0].head.Rev != 3 || string(ws[0].headText) != "abc" || ws[0].snap != nil {
		t.Fatalf("head snapshot frame: %+v, %v", ws, err)
	}
	withHead[4] |= 8 // the flags byte after 1 version, 1 count, 1 length, "n"
	if _, err := decodePayload(withHead); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown flag: %v", err)
	}
}
