package storage

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func wantGone(tb testing.TB, what string, err error, earliest uint64) {
	tb.Helper()
	g, ok := errors.AsType[*GoneError](err)
	if !ok || !errors.Is(err, ErrGone) || g.Earliest != earliest {
		tb.Fatalf("%s: %v, want gone with earliest %d", what, err, earliest)
	}
}

func TestFoldKeepsRevisionsAndNamedVersions(t *testing.T) {
	ctx := context.Background()
	defer func(n uint64) { foldChunk = n }(foldChunk)
	foldChunk = 64 // several transactions per fold
	path := filepath.Join(t.TempDir(), "collabd.db")
	s := openPath(t, path, Options{})
	h := makeHistory(t, 5, 1000)
	commitHistory(t, s, "doc", h, 13, 100)
	t0 := h.recs[0].Time.Add(-time.Second) // revision r is stamped t0 + r seconds
	for _, rev := range []uint64{150, 900} {
		if err := s.PutVersion(ctx, "doc", Version{Name: "v" + h.recs[rev-1].Client + string(rune('a'+rev%26)), Rev: rev}); err != nil {
			t.Fatal(err)
		}
	}
	before, beforeRuns := s.FoldedRevisions()

	// Keep the last 300 revisions' ops: the horizon is 700.
	horizon, err := s.Fold(ctx, "doc", Retention{KeepRevs: 300}, t0.Add(time.Hour))
	if err != nil || horizon != 700 {
		t.Fatalf("fold: horizon %d, %v", horizon, err)
	}
	if n, runs := s.FoldedRevisions(); n-before != 700 || runs-beforeRuns < 700/64 {
		t.Fatalf("folded %d revisions in %d transactions", n-before, runs-beforeRuns)
	}
	m, err := s.Meta(ctx, "doc")
	if err != nil || m.Folded != 700 || m.Head != 1000 {
		t.Fatalf("meta %+v %v", m, err)
	}
	check := func(t *testing.T, s *Bolt) {
		for _, rev := range []uint64{0, 150, 700, 701, 900, 1000} {
			if text, err := s.TextAt(ctx, "doc", rev); err != nil || text != h.texts[rev] {
				t.Fatalf("text at %d: %v", rev, err)
			}
		}
		for _, rev := range []uint64{1, 149, 151, 699} {
			_, err := s.TextAt(ctx, "doc", rev)
			wantGone(t, "text at a folded revision", err, 700)
		}
		if _, err := s.Diff(ctx, "doc", 150, 900); err != nil {
			t.Fatalf("diff between named versions: %v", err)
		}
		_, err := s.Diff(ctx, "doc", 100, 900)
		wantGone(t, "diff from a folded revision", err, 700)
		_, err = s.Records(ctx, "doc", 699, 10)
		wantGone(t, "records after a folded revision", err, 700)
		if recs, err := s.Records(ctx, "doc", 700, 5); err != nil || len(recs) != 5 || recs[0].Rev != 701 {
			t.Fatalf("records after the horizon: %d %v", len(recs), err)
		}
		// History pages down to one line for the folded range.
		var all []Revision
		for before := uint64(0); ; {
			page, err := s.History(ctx, "doc", before, 128)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
			before = page[len(page)-1].Rev
		}
		last := all[len(all)-1]
		if len(all) != 301 || !last.Folded || last.From != 1 || last.Rev != 700 || all[len(all)-2].Rev != 701 {
			t.Fatalf("history: %d lines, last %+v", len(all), last)
		}
		// The folded line keeps the time of its newest op.
		if want := t0.Add(700 * time.Second); !last.Time.Equal(want) {
			t.Fatalf("folded line's time %v, want %v", last.Time, want)
		}
		st, err := s.Load(ctx, "doc", 128)
		if err != nil || st.Snapshot.Rev != 1000 || len(st.Records) != 128 || st.Records[0].Rev != 873 {
			t.Fatalf("load: snapshot %d, %d records, %v", st.Snapshot.Rev, len(st.Records), err)
		}
		st, err = s.Load(ctx, "doc", 500)
		if err != nil || st.Records[0].Rev != 701 {
			t.Fatalf("load keeping more than the log holds: %v", err)
		}
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check(t, s)

	// Nothing more to fold under the same policy; new ops go on as usual.
	if horizon, err := s.Fold(ctx, "doc", Retention{KeepRevs: 300}, t0.Add(time.Hour)); err != nil || horizon != 700 {
		t.Fatalf("second fold: %d %v", horizon, err)
	}
	// A crash right after: the horizon is durable.
	crash(s)
	s = openPath(t, path, Options{})
	check(t, s)

	// By age: ops are one second apart from t0; keeping 100 s at
	// t0+1000 s lets go of revisions up to 899 (time t0+899 s).
	horizon, err = s.Fold(ctx, "doc", Retention{KeepFor: 100 * time.Second}, t0.Add(1000*time.Second))
	if err != nil || horizon != 899 {
		t.Fatalf("fold by age: %d %v", horizon, err)
	}
	// Both bounds: an op is folded only outside both.
	horizon, err = s.Fold(ctx, "doc", Retention{KeepRevs: 10, KeepFor: 50 * time.Second}, t0.Add(1000*time.Second))
	if err != nil || horizon != 949 {
		t.Fatalf("fold by count and age: %d %v", horizon, err)
	}
	if page, err := s.History(ctx, "doc", 951, 5); err != nil || len(page) != 2 || !page[1].Folded || !page[1].Time.Equal(t0.Add(949*time.Second)) {
		t.Fatalf("history after a second fold: %+v %v", page, err)
	}
	if text, err := s.TextAt(ctx, "doc", 900); err != nil || text != h.texts[900] {
		t.Fatalf("named version 900 after folding past it: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// New records continue the log after the horizon.
	more := makeHistory(t, 5, 1001)
	commitT(t, s, Write{Doc: "doc", Records: more.recs[1000:]})
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMetaFoldedTime checks the meta encoding of the fold horizon's time,
// and that a value written before it was kept still decodes (zero time).
func TestMetaFoldedTime(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123, time.UTC)
	for _, m := range []Meta{
		{Head: 9, SnapRev: 5},
		{Head: 9, SnapRev: 5, Folded: 5},
		{Head: 9, SnapRev: 5, Folded: 5, FoldedTime: at},
	} {
		got, err := decodeMeta(appendMeta(nil, &m))
		if err != nil || got.Head != m.Head || got.Folded != m.Folded || !got.FoldedTime.Equal(m.FoldedTime) {
			t.Fatalf("%+v decodes as %+v, %v", m, got, err)
		}
	}
}

func TestRetentionOverridesAndFoldAll(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	h := makeHistory(t, 9, 200)
	commitHistory(t, s, "a", h, 50, 100)
	commitHistory(t, s, "b", h, 50, 100)
	now := h.recs[199].Time.Add(time.Hour)
	if err := s.SetRetention(ctx, "nodoc", &Retention{KeepRevs: 1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("override of a missing document: %v", err)
	}
	if err := s.SetRetention(ctx, "b", &Retention{KeepRevs: 50}); err != nil {
		t.Fatal(err)
	}
	if p, err := s.DocRetention(ctx, "b"); err != nil || p == nil || p.KeepRevs != 50 {
		t.Fatalf("override %+v %v", p, err)
	}
	// The server's default keeps everything: only b folds.
	n, err := s.FoldAll(ctx, Retention{}, now)
	if err != nil || n != 150 {
		t.Fatalf("fold all: %d %v", n, err)
	}
	ma, _ := s.Meta(ctx, "a")
	mb, _ := s.Meta(ctx, "b")
	if ma.Folded != 0 || mb.Folded != 150 {
		t.Fatalf("horizons %d %d", ma.Folded, mb.Folded)
	}
	// With a server policy a folds too; b keeps its own.
	if n, err := s.FoldAll(ctx, Retention{KeepRevs: 20}, now); err != nil || n != 180 {
		t.Fatalf("fold all with a default: %d %v", n, err)
	}
	// Nothing left to fold: no write transaction (each costs an fsync).
	txid := func() (id int) {
		s.db.View(func(tx *bboltTx) error { id = tx.ID(); return nil })
		return id
	}
	before := txid()
	if n, err := s.FoldAll(ctx, Retention{KeepRevs: 20}, now); err != nil || n != 0 || txid() != before {
		t.Fatalf("a fold with nothing to do: %d folded, %v, transaction %d -> %d", n, err, before, txid())
	}
	if h, err := s.Fold(ctx, "a", Retention{KeepFor: 1000 * time.Hour}, now); err != nil || h != 180 || txid() != before {
		t.Fatalf("a fold by age with nothing old enough: horizon %d, %v, transaction %d -> %d", h, err, before, txid())
	}
	if err := s.SetRetention(ctx, "b", nil); err != nil {
		t.Fatal(err)
	}
	if p, err := s.DocRetention(ctx, "b"); err != nil || p != nil {
		t.Fatalf("override after removal %+v %v", p, err)
	}
	// Deleting the document deletes its override.
	if err := s.SetRetention(ctx, "a", &Retention{KeepRevs: 5}); err != nil {
		t.Fatal(err)
	}
	commitT(t, s, Write{Doc: "a", Delete: true})
	if p, err := s.DocRetention(ctx, "a"); err != nil || p != nil {
		t.Fatalf("override after delete %+v %v", p, err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
