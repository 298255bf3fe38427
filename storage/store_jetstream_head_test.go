package storage

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestJetStreamHeadSlot: the JetStream store keeps a write's head snapshot
// in the document's head slot (one KV key), not in the index: each one
// replaces the last unless that one is newer (another node's), reads
// start from it when it is the newest at or below the revision asked, a
// fold never touches it and a delete purges it; a slot left by a deleted
// incarnation is ignored.
func TestJetStreamHeadSlot(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	other := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(t, 41, 80)
	commit := func(s *JetStream, w Write) error { return s.Commit(ctx, []Write{w}) }
	if err := commit(s, Write{Doc: "d", Records: h.recs[:10], HeadSnapshot: &Snapshot{Rev: 11, Text: "x"}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("head snapshot beyond the write: %v", err)
	}
	if err := commit(s, Write{Doc: "d", Delete: true, HeadSnapshot: &Snapshot{Rev: 1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("delete with a head snapshot: %v", err)
	}
	slot := func() uint64 {
		t.Helper()
		e, err := s.kvGet(ctx, headKey("d"))
		if err != nil {
			return 0
		}
		h, _, err := decodeJSHead(e.Value())
		if err != nil {
			t.Fatal(err)
		}
		return h.rev
	}
	steps := []struct {
		s            *JetStream
		w            Write
		slot, newest uint64
	}{
		{s, Write{Doc: "d", Records: h.recs[:20], HeadSnapshot: &Snapshot{Rev: 17, Text: h.texts[17]}}, 17, 17},
		{s, Write{Doc: "d", Records: h.recs[20:40], Snapshot: &Snapshot{Rev: 30, Text: h.texts[30]},
			HeadSnapshot: &Snapshot{Rev: 38, Text: h.texts[38]}}, 38, 38},
		// Below the write's regular snapshot: nothing to keep.
		{s, Write{Doc: "d", Records: h.recs[40:50], Snapshot: &Snapshot{Rev: 45, Text: h.texts[45]},
			HeadSnapshot: &Snapshot{Rev: 42, Text: h.texts[42]}}, 38, 45},
		{other, Write{Doc: "d", HeadSnapshot: &Snapshot{Rev: 50, Text: h.texts[50]}}, 50, 50}, // an eviction's
		{s, Write{Doc: "d", HeadSnapshot: &Snapshot{Rev: 48, Text: h.texts[48]}}, 50, 50},     // older than the slot's
		{s, Write{Doc: "d", Records: h.recs[50:70], HeadSnapshot: &Snapshot{Rev: 63, Text: h.texts[63]}}, 63, 63},
	}
	for i, st := range steps {
		if err := commit(st.s, st.w); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := slot(); got != st.slot {
			t.Fatalf("step %d: slot at %d, want %d", i, got, st.slot)
		}
		loaded, err := other.Load(ctx, "d", 0)
		if err != nil || loaded.Snapshot.Rev != st.newest || loaded.Snapshot.Text != h.texts[st.newest] {
			t.Fatalf("step %d: loaded snapshot %d, want %d (%v)", i, loaded.Snapshot.Rev, st.newest, err)
		}
		if uint64(len(loaded.Records)) != loaded.Meta.Head-loaded.Snapshot.Rev {
			t.Fatalf("step %d: %d records after %d, head %d", i, len(loaded.Records), loaded.Snapshot.Rev, loaded.Meta.Head)
		}
	}
	idx, _, err := s.snapIndex(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	var revs []uint64
	for _, e := range idx {
		revs = append(revs, e.rev)
	}
	if want := []uint64{30, 45}; !slices.Equal(revs, want) {
		t.Fatalf("index holds %v, want the regular snapshots %v", revs, want)
	}
	for rev := range uint64(71) {
		if got, err := other.TextAt(ctx, "d", rev); err != nil || got != h.texts[rev] {
			t.Fatalf("text at %d: %v", rev, err)
		}
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// A fold below the slot: reads still start there; past it: the
	// horizon's snapshot (an index entry) serves.
	for _, tc := range []struct{ keep, horizon, newest uint64 }{{15, 55, 63}, {2, 68, 68}} {
		if got, err := s.Fold(ctx, "d", Retention{KeepRevs: tc.keep}, time.Now()); err != nil || got != tc.horizon {
			t.Fatalf("fold: horizon %d, %v", got, err)
		}
		loaded, err := other.Load(ctx, "d", 0)
		if err != nil || loaded.Snapshot.Rev != tc.newest || loaded.Snapshot.Text != h.texts[tc.newest] {
			t.Fatalf("after a fold to %d: loaded snapshot %d, want %d (%v)", tc.horizon, loaded.Snapshot.Rev, tc.newest, err)
		}
		for rev := tc.horizon; rev <= 70; rev++ {
			if got, err := other.TextAt(ctx, "d", rev); err != nil || got != h.texts[rev] {
				t.Fatalf("after a fold to %d: text at %d: %v", tc.horizon, rev, err)
			}
		}
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A delete purges the slot. One written again with the deleted log's
	// sequence (a write that raced the delete) is ignored by the new log.
	e, err := s.kvGet(ctx, headKey("d"))
	if err != nil {
		t.Fatal(err)
	}
	stale := slices.Clone(e.Value())
	if err := commit(s, Write{Doc: "d", Delete: true}); err != nil {
		t.Fatal(err)
	}
	if got := slot(); got != 0 {
		t.Fatalf("slot at %d after delete", got)
	}
	if err := commit(s, Write{Doc: "d", Records: h.recs[:70]}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.kv.Put(ctx, headKey("d"), stale); err != nil {
		t.Fatal(err)
	}
	loaded, err := other.Load(ctx, "d", 0)
	if err != nil || loaded.Snapshot.Rev != 0 || len(loaded.Records) != 70 {
		t.Fatalf("load with a stale slot: snapshot %d, %d records, %v", loaded.Snapshot.Rev, len(loaded.Records), err)
	}
	if got, err := other.TextAt(ctx, "d", 70); err != nil || got != h.texts[70] {
		t.Fatalf("text at 70 with a stale slot: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// The next head snapshot replaces it.
	if err := commit(s, Write{Doc: "d", HeadSnapshot: &Snapshot{Rev: 40, Text: h.texts[40]}}); err != nil {
		t.Fatal(err)
	}
	if got := slot(); got != 40 {
		t.Fatalf("slot at %d, want 40", got)
	}
	if got, err := other.TextAt(ctx, "d", 70); err != nil || got != h.texts[70] {
		t.Fatalf("text at 70: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// Check compares the slot with the log.
	if e, err = s.kvGet(ctx, headKey("d")); err != nil {
		t.Fatal(err)
	}
	cur, _, _ := decodeJSHead(e.Value())
	if _, err := s.kv.Put(ctx, headKey("d"), appendJSHead(nil, cur.seq, Snapshot{Rev: 40, Text: "wrong"})); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("check with a wrong slot: %v", err)
	}
}
