package collab

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/storage"
)

// wantGone checks that err is gone with the given earliest revision.
func wantGone(tb testing.TB, what string, err error, earliest uint64) {
	tb.Helper()
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Code != contract.CodeGone || e.Earliest != earliest {
		tb.Fatalf("%s: %v, want gone with earliest %d", what, err, earliest)
	}
}

// TestExactlyOnceAcrossFolding: an op whose base lies behind the fold
// horizon is refused with gone (never dropped, never applied twice),
// whether the hub still holds the document or loads it afresh.
func TestExactlyOnceAcrossFolding(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "collabd.db"))
	h1, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	mustSubmit(t, h1, sub("d", "c1", 1, 0, `["x"]`))
	for i := uint64(2); i <= 300; i++ {
		mustSubmit(t, h1, sub("d", "c1", i, i-1, fmt.Sprintf(`[%d,"x"]`, i-1)))
	}
	horizon, err := st.Fold(ctx, "d", storage.Retention{KeepRevs: 50}, time.Now())
	if err != nil || horizon != 250 {
		t.Fatalf("fold: %d %v", horizon, err)
	}
	check := func(t *testing.T, h *Hub) {
		// A resubmission of an op applied long ago, now folded.
		_, err := h.Submit(ctx, sub("d", "c1", 10, 9, `[9,"x"]`))
		wantGone(t, "resubmission behind the horizon", err, 250)
		// A new op on a folded base cannot be transformed any more.
		_, err = h.Submit(ctx, sub("d", "c2", 1, 100, `["y"]`))
		wantGone(t, "new op behind the horizon", err, 250)
		// A resubmission after the horizon is still recognized.
		if rev, err := h.Submit(ctx, sub("d", "c1", 280, 279, `[279,"x"]`)); err != nil || rev != 280 {
			t.Fatalf("resubmission after the horizon: %d %v", rev, err)
		}
		if rev, _ := textOf(t, h, "d"); rev != 300 {
			t.Fatalf("head moved to %d", rev)
		}
		_, err = h.TextAt(ctx, "d", 100)
		wantGone(t, "text at a folded revision", err, 250)
		_, err = h.Diff(ctx, "d", 100, 300)
		wantGone(t, "diff from a folded revision", err, 250)
		_, err = h.Records(ctx, "d", 10, 10)
		wantGone(t, "records behind the horizon", err, 250)
		revs, err := h.History(ctx, "d", 252, 10)
		if err != nil || len(revs) != 2 || revs[0].Rev != 251 || !revs[1].Folded || revs[1].From != 1 || revs[1].Rev != 250 {
			t.Fatalf("history across the horizon: %+v %v", revs, err)
		}
	}
	t.Run("live document", func(t *testing.T) { check(t, h1) })
	if err := h1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h2 := newHub(t, Config{Store: st})
	t.Run("loaded after the fold", func(t *testing.T) { check(t, h2) })
	// Editing goes on from the head.
	if rev := mustSubmit(t, h2, sub("d", "c2", 2, 300, `[300,"z"]`)); rev != 301 {
		t.Fatalf("next op got %d", rev)
	}
	if err := st.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
