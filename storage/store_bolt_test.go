package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if path := os.Getenv(foldCrashEnv); path != "" {
		foldCrashChild(path)
		return
	}
	goleak.VerifyTestMain(m)
}

// testNoJournal makes openTest open stores without the journal (set by
// TestNoJournalSuite around the suite it reruns).
var testNoJournal bool

// openTest opens a store in a temporary directory, closed at cleanup.
func openTest(tb testing.TB, opts Options) *Bolt {
	tb.Helper()
	if testNoJournal {
		opts.NoJournal = true
	}
	s, err := OpenBolt(filepath.Join(tb.TempDir(), "collabd.db"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// history is a reference document: its texts at every revision and the
// records that produced them.
type history struct {
	texts []string // texts[r] is the text at revision r
	recs  []Record
}

var alphabet = []rune("abcdefgh ijk\n日本語😀é\u0301")

// randomOp returns a random op on a text of n code points.
func randomOp(r *rand.Rand, n int) ot.Op {
	b := ot.NewBuilder()
	pos := 0
	for pos < n && r.IntN(3) > 0 {
		k := 1 + r.IntN(n-pos)
		if r.IntN(3) == 0 {
			b.Delete(min(k, 3))
			pos += min(k, 3)
		} else {
			b.Retain(k)
			pos += k
		}
		if r.IntN(2) == 0 {
			break
		}
	}
	rs := make([]rune, 1+r.IntN(6))
	for i := range rs {
		rs[i] = alphabet[r.IntN(len(alphabet))]
	}
	b.Insert(string(rs))
	return b.Build()
}

// makeHistory builds n random revisions.
func makeHistory(tb testing.TB, seed uint64, n int) *history {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	h := &history{texts: []string{""}}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for rev := 1; rev <= n; rev++ {
		cur := h.texts[rev-1]
		op := randomOp(r, len([]rune(cur)))
		next, err := op.ApplyString(cur)
		if err != nil {
			tb.Fatal(err)
		}
		ins, del := op.Stats()
		h.texts = append(h.texts, next)
		h.recs = append(h.recs, Record{
			Rev: uint64(rev), Op: op.AppendJSON(nil), Client: fmt.Sprintf("c%d", rev%3),
			Seq: uint64(rev), User: "ünïcode user", Time: t0.Add(time.Duration(rev) * time.Second), Ins: ins, Del: del,
		})
	}
	return h
}

// commitHistory stores h's records in batches of batch, with a snapshot
// every snapEvery revisions.
func commitHistory(tb testing.TB, s Store, doc string, h *history, batch, snapEvery int) {
	tb.Helper()
	for i := 0; i < len(h.recs); i += batch {
		w := Write{Doc: doc, Records: h.recs[i:min(i+batch, len(h.recs))]}
		last := w.Records[len(w.Records)-1].Rev
		for rev := last; rev > uint64(i); rev-- {
			if snapEvery > 0 && rev%uint64(snapEvery) == 0 {
				w.Snapshot = &Snapshot{Rev: rev, Text: h.texts[rev]}
				break
			}
		}
		if err := s.Commit(context.Background(), []Write{w}); err != nil {
			tb.Fatal(err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	h := makeHistory(t, 1, 250)
	commitHistory(t, s, "doc-1", h, 7, 100)

	t.Run("meta", func(t *testing.T) {
		m, err := s.Meta(ctx, "doc-1")
		if err != nil {
			t.Fatal(err)
		}
		if m.Head != 250 || m.SnapRev != 200 || !m.Created.Equal(h.recs[0].Time) || !m.Updated.Equal(h.recs[249].Time) {
			t.Fatalf("meta %+v", m)
		}
	})
	t.Run("text at every revision", func(t *testing.T) {
		for rev := range h.texts {
			got, err := s.TextAt(ctx, "doc-1", uint64(rev))
			if err != nil {
				t.Fatalf("rev %d: %v", rev, err)
			}
			if got != h.texts[rev] {
				t.Fatalf("rev %d: got %q want %q", rev, got, h.texts[rev])
			}
		}
	})
	t.Run("records", func(t *testing.T) {
		got, err := s.Records(ctx, "doc-1", 240, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 5 || got[0].Rev != 241 || got[4].Rev != 245 {
			t.Fatalf("got %d records from %d", len(got), got[0].Rev)
		}
		want := h.recs[240]
		g := got[0]
		if !bytes.Equal(g.Op, want.Op) || g.Client != want.Client || g.Seq != want.Seq || g.User != want.User ||
			!g.Time.Equal(want.Time) || g.Ins != want.Ins || g.Del != want.Del {
			t.Fatalf("record %+v, want %+v", g, want)
		}
	})
	t.Run("load", func(t *testing.T) {
		for _, keep := range []int{0, 10, 80, 1000} {
			st, err := s.Load(ctx, "doc-1", keep)
			if err != nil {
				t.Fatal(err)
			}
			if st.Snapshot.Rev != 200 || st.Snapshot.Text != h.texts[200] || st.Meta.Head != 250 {
				t.Fatalf("keep %d: snapshot %d head %d", keep, st.Snapshot.Rev, st.Meta.Head)
			}
			first := min(201, max(1, 250-keep+1))
			if len(st.Records) != 250-first+1 || st.Records[0].Rev != uint64(first) {
				t.Fatalf("keep %d: %d records from %d", keep, len(st.Records), st.Records[0].Rev)
			}
		}
		st, err := s.Load(ctx, "never-written", 10)
		if err != nil || st.Meta.Head != 0 || len(st.Records) != 0 {
			t.Fatalf("empty load: %+v %v", st, err)
		}
	})
	t.Run("history paging", func(t *testing.T) {
		var all []Revision
		before := uint64(0)
		for {
			page, err := s.History(ctx, "doc-1", before, 32)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
			before = page[len(page)-1].Rev
		}
		if len(all) != 250 {
			t.Fatalf("%d revisions", len(all))
		}
		for i, r := range all {
			want := h.recs[249-i]
			if r.Rev != want.Rev || r.Client != want.Client || r.Ins != want.Ins || r.Del != want.Del || !r.Time.Equal(want.Time) {
				t.Fatalf("revision %d: %+v", i, r)
			}
		}
	})
	t.Run("diff", func(t *testing.T) {
		diffs, err := s.Diff(ctx, "doc-1", 40, 90)
		if err != nil {
			t.Fatal(err)
		}
		var a, b string
		for _, d := range diffs {
			if d.Op <= 0 {
				a += d.Text
			}
			if d.Op >= 0 {
				b += d.Text
			}
		}
		if a != h.texts[40] || b != h.texts[90] {
			t.Fatalf("diff does not rebuild both texts")
		}
		js, _ := json.Marshal(diffs[:1])
		var back []ot.Diff
		if err := json.Unmarshal(js, &back); err != nil || back[0] != diffs[0] {
			t.Fatalf("diff JSON %s: %v", js, err)
		}
	})
	t.Run("check", func(t *testing.T) {
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestQueryErrors(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	commitHistory(t, s, "d", makeHistory(t, 2, 10), 10, 0)
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"text beyond head", func() error { _, err := s.TextAt(ctx, "d", 11); return err }, ErrNotFound},
		{"text of missing doc", func() error { _, err := s.TextAt(ctx, "nope", 1); return err }, ErrNotFound},
		{"records beyond head", func() error { _, err := s.Records(ctx, "d", 11, 1); return err }, ErrNotFound},
		{"records zero limit", func() error { _, err := s.Records(ctx, "d", 0, 0); return err }, ErrInvalid},
		{"history of missing doc", func() error { _, err := s.History(ctx, "nope", 0, 1); return err }, ErrNotFound},
		{"bad id", func() error { _, err := s.Meta(ctx, "a/b"); return err }, ErrInvalid},
		{"diff beyond head", func() error { _, err := s.Diff(ctx, "d", 0, 12); return err }, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if got, err := s.TextAt(ctx, "nope", 0); err != nil || got != "" {
		t.Fatalf("text at 0 of a missing doc: %q %v", got, err)
	}
}

func TestCommitRejects(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	h := makeHistory(t, 3, 6)
	commitHistory(t, s, "d", &history{texts: h.texts[:4], recs: h.recs[:3]}, 3, 0)
	op := json.RawMessage(`["x"]`)
	tests := []struct {
		name   string
		writes []Write
		want   error
	}{
		{"gap after head", []Write{{Doc: "d", Records: h.recs[4:5]}}, ErrConflict},
		{"rewrite of a stored revision", []Write{{Doc: "d", Records: h.recs[2:3]}}, ErrConflict},
		{"not contiguous", []Write{{Doc: "d", Records: []Record{h.recs[3], h.recs[5]}}}, ErrInvalid},
		{"empty op", []Write{{Doc: "d", Records: []Record{{Rev: 4}}}}, ErrInvalid},
		{"bad id", []Write{{Doc: "", Records: []Record{{Rev: 1, Op: op}}}}, ErrInvalid},
		{"two writes for one doc", []Write{{Doc: "e", Records: []Record{{Rev: 1, Op: op}}}, {Doc: "e", Records: []Record{{Rev: 2, Op: op}}}}, ErrInvalid},
		{"snapshot beyond head", []Write{{Doc: "d", Snapshot: &Snapshot{Rev: 9, Text: "x"}}}, ErrConflict},
		{"snapshot of missing doc", []Write{{Doc: "f", Snapshot: &Snapshot{Rev: 1, Text: "x"}}}, ErrConflict},
		{"delete with records", []Write{{Doc: "d", Delete: true, Records: h.recs[3:4]}}, ErrInvalid},
		// All or nothing: the good write of "g" must not be stored either.
		{"batch with one bad write", []Write{{Doc: "g", Records: []Record{{Rev: 1, Op: op}}}, {Doc: "d", Records: h.recs[5:6]}}, ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Commit(ctx, tt.writes); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	docs, err := s.List(ctx)
	if err != nil || len(docs) != 1 || docs[0].ID != "d" || docs[0].Head != 3 {
		t.Fatalf("list after rejected writes: %+v %v", docs, err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestListDeleteBackup(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	for i, id := range []string{"b", "a", "c"} {
		commitHistory(t, s, id, makeHistory(t, uint64(i), 5+i), 2, 3)
	}
	docs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	if !slices.Equal(ids, []string{"a", "b", "c"}) || docs[0].Head != 6 {
		t.Fatalf("list %+v", docs)
	}
	if err := s.Commit(ctx, []Write{{Doc: "b", Delete: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Meta(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted doc: %v", err)
	}
	// The id is free again: a new log starts at revision 1.
	commitHistory(t, s, "b", makeHistory(t, 9, 2), 2, 0)

	path := filepath.Join(t.TempDir(), "backup.db")
	if err := s.BackupFile(ctx, path); err != nil {
		t.Fatal(err)
	}
	if err := s.BackupFile(ctx, path); err == nil {
		t.Fatal("backup overwrote an existing file")
	}
	b, err := OpenBolt(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := b.List(ctx)
	if len(got) != 3 || got[1].ID != "b" || got[1].Head != 2 {
		t.Fatalf("backup list %+v", got)
	}
	want, _ := s.TextAt(ctx, "c", 7)
	if txt, err := b.TextAt(ctx, "c", 7); err != nil || txt != want {
		t.Fatalf("backup text %q %v", txt, err)
	}
}

func TestClosed(t *testing.T) {
	s := openTest(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if _, err := s.List(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("list after close: %v", err)
	}
	if err := s.Commit(context.Background(), []Write{{Doc: "a", Records: []Record{{Rev: 1, Op: []byte(`["x"]`)}}}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after close: %v", err)
	}
}

// TestCheckFindsBrokenInvariants breaks the layout behind the store's back
// and expects Check to say so.
func TestCheckFindsBrokenInvariants(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(tx *bboltTx) error
	}{
		{"gap in the log", func(tx *bboltTx) error { return logB(tx).Delete(docKey("d", 3)) }},
		{"head beyond log", func(tx *bboltTx) error {
			return metaB(tx).Put([]byte("d"), appendMeta(nil, &Meta{Head: 9, SnapRev: 4}))
		}},
		{"record does not decode", func(tx *bboltTx) error { return logB(tx).Put(docKey("d", 2), []byte{9}) }},
		{"op does not parse", func(tx *bboltTx) error {
			r := Record{Rev: 2, Op: []byte(`[0]`)}
			return logB(tx).Put(docKey("d", 2), appendRecord(nil, &r))
		}},
		{"snapshot invalid UTF-8", func(tx *bboltTx) error {
			return snapB(tx).Put(docKey("d", 4), []byte{snapV1, 0xff})
		}},
		{"snapshot beyond head", func(tx *bboltTx) error {
			return snapB(tx).Put(docKey("d", 7), appendSnapshot(nil, "x"))
		}},
		{"log record of no document", func(tx *bboltTx) error {
			r := Record{Rev: 1, Op: []byte(`["x"]`)}
			return logB(tx).Put(docKey("ghost", 1), appendRecord(nil, &r))
		}},
		{"snapshot of no document", func(tx *bboltTx) error {
			return snapB(tx).Put(docKey("e", 1), appendSnapshot(nil, "x"))
		}},
		{"named version of no document", func(tx *bboltTx) error {
			b, err := tx.CreateBucketIfNotExists(bucketVer)
			if err != nil {
				return err
			}
			return b.Put(verKey("ghost", "v1"), appendVersion(nil, &Version{Name: "v1", Rev: 1}, "x"))
		}},
		{"named version beyond the head", func(tx *bboltTx) error {
			b, err := tx.CreateBucketIfNotExists(bucketVer)
			if err != nil {
				return err
			}
			return b.Put(verKey("d", "v1"), appendVersion(nil, &Version{Name: "v1", Rev: 7}, "x"))
		}},
		{"retention policy of no document", func(tx *bboltTx) error {
			b, err := tx.CreateBucketIfNotExists(bucketRet)
			if err != nil {
				return err
			}
			return b.Put([]byte("ghost"), appendRetention(Retention{KeepRevs: 3}))
		}},
		{"fold horizon without its snapshot", func(tx *bboltTx) error {
			if err := logB(tx).Delete(docKey("d", 1)); err != nil {
				return err
			}
			return metaB(tx).Put([]byte("d"), appendMeta(nil, &Meta{Head: 6, SnapRev: 4, Folded: 1}))
		}},
		{"snapshot below the fold horizon", func(tx *bboltTx) error {
			for rev := uint64(1); rev <= 4; rev++ {
				if err := logB(tx).Delete(docKey("d", rev)); err != nil {
					return err
				}
			}
			if err := snapB(tx).Put(docKey("d", 2), appendSnapshot(nil, "x")); err != nil {
				return err
			}
			return metaB(tx).Put([]byte("d"), appendMeta(nil, &Meta{Head: 6, SnapRev: 4, Folded: 4}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, Options{})
			commitHistory(t, s, "d", makeHistory(t, 4, 6), 6, 4)
			if err := s.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := s.db.Update(func(tx *bboltTx) error { return tt.breakIt(tx) }); err != nil {
				t.Fatal(err)
			}
			if err := s.Check(context.Background()); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("check: %v", err)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range makeHistory(f, 5, 5).recs {
		f.Add(appendRecord(nil, &r))
	}
	f.Add([]byte{recordV1, 0x80})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeRecord(1, v, true)
		if err != nil {
			return
		}
		again, err := decodeRecord(1, appendRecord(nil, &r), true)
		if err != nil || again.Client != r.Client || again.User != r.User || !bytes.Equal(again.Op, r.Op) || again.Seq != r.Seq {
			t.Fatalf("re-encoding changed %+v into %+v (%v)", r, again, err)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(appendMeta(nil, &Meta{Head: 5, SnapRev: 3, Created: time.Unix(1, 2)}))
	f.Add([]byte{metaV1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		m, err := decodeMeta(v)
		if err != nil {
			return
		}
		if again, err := decodeMeta(appendMeta(nil, &m)); err != nil || again.Head != m.Head || again.SnapRev != m.SnapRev {
			t.Fatalf("re-encoding changed %+v into %+v", m, again)
		}
	})
}

// TestPrefixIDsDoNotMix stores documents whose ids are prefixes of each
// other (the flat layout keys records by id, zero byte, revision).
func TestPrefixIDsDoNotMix(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	ids := []string{"ab", "a", "ab.c", "ab-", "abc", "b"}
	hs := map[string]*history{}
	for i, id := range ids {
		hs[id] = makeHistory(t, uint64(100+i), 20+i*3)
		commitHistory(t, s, id, hs[id], 4, 5)
	}
	check := func(t *testing.T, live []string) {
		t.Helper()
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
		for _, id := range live {
			h := hs[id]
			head := uint64(len(h.recs))
			if txt, err := s.TextAt(ctx, id, head); err != nil || txt != h.texts[head] {
				t.Fatalf("%s: text at head: %v", id, err)
			}
			recs, err := s.Records(ctx, id, 0, 1000)
			if err != nil || len(recs) != len(h.recs) {
				t.Fatalf("%s: %d records, want %d (%v)", id, len(recs), len(h.recs), err)
			}
			revs, err := s.History(ctx, id, 0, 1000)
			if err != nil || len(revs) != len(h.recs) || revs[len(revs)-1].Rev != 1 {
				t.Fatalf("%s: history %d (%v)", id, len(revs), err)
			}
		}
	}
	check(t, ids)
	if err := s.Commit(ctx, []Write{{Doc: "ab", Delete: true}}); err != nil {
		t.Fatal(err)
	}
	check(t, []string{"a", "ab.c", "ab-", "abc", "b"})
	if _, err := s.Records(ctx, "ab", 0, 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
}
