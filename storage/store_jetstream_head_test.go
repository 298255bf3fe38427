package storage

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestJetStreamHeadSnapshot: the JetStream store, which has no head slot,
// keeps a write's head snapshot as a regular one, alone or beside the
// write's regular snapshot, and refuses one beyond the write.
func TestJetStreamHeadSnapshot(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(t, 41, 60)
	commit := func(w Write) error { return s.Commit(ctx, []Write{w}) }
	if err := commit(Write{Doc: "d", Records: h.recs[:10], HeadSnapshot: &Snapshot{Rev: 11, Text: "x"}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("head snapshot beyond the write: %v", err)
	}
	if err := commit(Write{Doc: "d", Delete: true, HeadSnapshot: &Snapshot{Rev: 1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("delete with a head snapshot: %v", err)
	}
	steps := []struct {
		w      Write
		newest uint64
	}{
		{Write{Doc: "d", Records: h.recs[:20], HeadSnapshot: &Snapshot{Rev: 17, Text: h.texts[17]}}, 17},
		{Write{Doc: "d", Records: h.recs[20:40], Snapshot: &Snapshot{Rev: 30, Text: h.texts[30]},
			HeadSnapshot: &Snapshot{Rev: 38, Text: h.texts[38]}}, 38},
		{Write{Doc: "d", Records: h.recs[40:50], Snapshot: &Snapshot{Rev: 45, Text: h.texts[45]},
			HeadSnapshot: &Snapshot{Rev: 42, Text: h.texts[42]}}, 45},
		{Write{Doc: "d", HeadSnapshot: &Snapshot{Rev: 50, Text: h.texts[50]}}, 50}, // an eviction's
	}
	for i, st := range steps {
		if err := commit(st.w); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		loaded, err := s.Load(ctx, "d", 0)
		if err != nil || loaded.Snapshot.Rev != st.newest || loaded.Snapshot.Text != h.texts[st.newest] {
			t.Fatalf("step %d: loaded snapshot %d, want %d (%v)", i, loaded.Snapshot.Rev, st.newest, err)
		}
	}
	// Every one is kept but the head one below the write's regular one.
	idx, _, err := s.snapIndex(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	var revs []uint64
	for _, e := range idx {
		revs = append(revs, e.rev)
	}
	if want := []uint64{17, 30, 38, 45, 50}; !slices.Equal(revs, want) {
		t.Fatalf("snapshots at %v, want %v", revs, want)
	}
	for rev := range uint64(51) {
		if got, err := s.TextAt(ctx, "d", rev); err != nil || got != h.texts[rev] {
			t.Fatalf("text at %d: %v", rev, err)
		}
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
