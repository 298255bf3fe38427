package storage

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// subjectMsgs counts the stream messages on doc's subject.
func subjectMsgs(tb testing.TB, s *JetStream, doc string) uint64 {
	tb.Helper()
	info, err := s.stream.Info(context.Background(), jetstream.WithSubjectFilter(s.subject(doc)))
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Subjects[s.subject(doc)]
}

// versionObjects counts the objects of the version text store.
func versionObjects(tb testing.TB, s *JetStream) int {
	tb.Helper()
	ctx := context.Background()
	obs, err := s.objects(ctx, false)
	if err != nil {
		tb.Fatal(err)
	}
	if obs == nil {
		return 0
	}
	list, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0
	}
	if err != nil {
		tb.Fatal(err)
	}
	return len(list)
}

// TestJetStreamNamedVersions is TestNamedVersions on JetStream: the same
// results and errors through the Store interface, read back by another
// instance.
func TestJetStreamNamedVersions(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	other := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(t, 3, 250)
	commitHistory(t, s, "doc.v", h, 9, 100)
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

	put := func(name string, rev uint64) error {
		return s.PutVersion(ctx, "doc.v", Version{Name: name, Rev: rev, User: "ann", Created: t0})
	}
	for _, v := range []struct {
		name string
		rev  uint64
	}{{"v1.2", 120}, {"Sent to client", 250}, {"early", 1}, {"also 120", 120}} {
		if err := put(v.name, v.rev); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		rev  uint64
		want error
	}{
		{"v1.2", 7, ErrExists},
		{"future", 251, ErrNotFound},
		{"zero", 0, ErrInvalid},
		{"bad\x00name", 3, ErrInvalid},
		{"", 3, ErrInvalid},
	} {
		if err := put(tc.name, tc.rev); !errors.Is(err, tc.want) {
			t.Errorf("PutVersion(%q, %d) = %v, want %v", tc.name, tc.rev, err, tc.want)
		}
	}
	if err := s.PutVersion(ctx, "nodoc", Version{Name: "x", Rev: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("version of a missing document: %v", err)
	}
	if n := versionObjects(t, s); n != 4 {
		t.Fatalf("%d version texts stored, want 4 (a refused name leaves none)", n)
	}

	vs, err := other.Versions(ctx, "doc.v")
	if err != nil || len(vs) != 4 || vs[0].Name != "Sent to client" || vs[1].Name != "also 120" ||
		vs[2].Name != "v1.2" || vs[3].Name != "early" {
		t.Fatalf("versions %+v %v", vs, err)
	}
	if vs[2].Rev != 120 || vs[2].User != "ann" || !vs[2].Created.Equal(t0) {
		t.Fatalf("version %+v", vs[2])
	}
	v, text, err := other.VersionText(ctx, "doc.v", "v1.2")
	if err != nil || v.Rev != 120 || text != h.texts[120] {
		t.Fatalf("text of v1.2: %+v %q %v", v, text, err)
	}

	if _, err := other.RenameVersion(ctx, "doc.v", "v1.2", "early"); !errors.Is(err, ErrExists) {
		t.Fatalf("rename onto a taken name: %v", err)
	}
	if _, err := other.RenameVersion(ctx, "doc.v", "nope", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rename of a missing version: %v", err)
	}
	if _, err := other.RenameVersion(ctx, "doc.v", "early", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rename to a bad name: %v", err)
	}
	if v, err := other.RenameVersion(ctx, "doc.v", "v1.2", "v1.2"); err != nil || v.Name != "v1.2" || v.Rev != 120 {
		t.Fatalf("rename to itself: %+v %v", v, err)
	}
	if v, err := other.RenameVersion(ctx, "doc.v", "v1.2", "v1.2 final"); err != nil || v.Name != "v1.2 final" || v.Rev != 120 {
		t.Fatalf("rename: %+v %v", v, err)
	}
	if _, _, err := s.VersionText(ctx, "doc.v", "v1.2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old name after rename: %v", err)
	}
	if _, text, err := s.VersionText(ctx, "doc.v", "v1.2 final"); err != nil || text != h.texts[120] {
		t.Fatalf("text under the new name: %v", err)
	}
	if err := s.DeleteVersion(ctx, "doc.v", "early"); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteVersion(ctx, "doc.v", "early"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if n := versionObjects(t, s); n != 3 {
		t.Fatalf("%d version texts after a delete, want 3", n)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}

	// A text missing from the object store is reported, never read as
	// empty.
	list, _, err := s.versionList(ctx, "doc.v")
	if err != nil || len(list) != 3 {
		t.Fatalf("list %+v %v", list, err)
	}
	obs, err := s.objects(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.Delete(ctx, versionObject("doc.v", list[0].id)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.VersionText(ctx, "doc.v", list[0].Name); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("version whose text is missing: %v", err)
	}

	// Deleting the document deletes its versions, their texts and its
	// retention policy; the id starts afresh.
	if err := s.SetRetention(ctx, "doc.v", &Retention{KeepRevs: 9}); err != nil {
		t.Fatal(err)
	}
	commitT(t, s, Write{Doc: "doc.v", Delete: true})
	commitT(t, other, Write{Doc: "doc.v", Records: h.recs[:1]})
	if vs, err := s.Versions(ctx, "doc.v"); err != nil || len(vs) != 0 {
		t.Fatalf("versions after delete: %+v %v", vs, err)
	}
	if n := versionObjects(t, s); n != 0 {
		t.Fatalf("%d version texts after the document's delete", n)
	}
	if p, err := s.DocRetention(ctx, "doc.v"); err != nil || p != nil {
		t.Fatalf("retention after delete: %+v %v", p, err)
	}
	if err := s.PutVersion(ctx, "doc.v", Version{Name: "v1.2", Rev: 1}); err != nil {
		t.Fatalf("a name of the deleted document, on the new one: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestJetStreamVersionNameRace: two nodes naming a version of one
// document with the same name at once: exactly one succeeds, the other
// gets ErrExists, and the list holds the name once.
func TestJetStreamVersionNameRace(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	a := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	b := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(t, 4, 40)
	commitHistory(t, a, "race", h, 10, 0)
	const rounds = 12
	for i := range rounds {
		name := "v" + string(rune('a'+i))
		var errs [2]error
		var wg sync.WaitGroup
		for j, s := range []*JetStream{a, b} {
			wg.Go(func() {
				errs[j] = s.PutVersion(ctx, "race", Version{Name: name, Rev: uint64(10 + 10*j), User: "node" + string(rune('0'+j))})
			})
		}
		wg.Wait()
		ok, exists := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrExists):
				exists++
			default:
				t.Fatalf("round %d: %v", i, err)
			}
		}
		if ok != 1 || exists != 1 {
			t.Fatalf("round %d: %v", i, errs)
		}
		// The winner's revision and text are the ones kept.
		v, text, err := b.VersionText(ctx, "race", name)
		winner := 0
		if errs[0] != nil {
			winner = 1
		}
		if err != nil || v.Rev != uint64(10+10*winner) || text != h.texts[v.Rev] {
			t.Fatalf("round %d: %+v %v, winner %d", i, v, err, winner)
		}
	}
	vs, err := a.Versions(ctx, "race")
	if err != nil || len(vs) != rounds {
		t.Fatalf("%d versions, %v", len(vs), err)
	}
	if n := versionObjects(t, a); n != rounds {
		t.Fatalf("%d texts kept, want %d (the losers' are removed)", n, rounds)
	}
	if err := a.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// checkFolded1000 checks a 1000-revision document folded to 700 with
// named versions at 150 and 900, as TestFoldKeepsRevisionsAndNamedVersions
// does for Bolt.
func checkFolded1000(t *testing.T, s *JetStream, doc string, h *history) {
	t.Helper()
	ctx := context.Background()
	m, err := s.Meta(ctx, doc)
	if err != nil || m.Folded != 700 || m.Head != 1000 || !m.Created.Equal(h.recs[0].Time) || !m.Updated.Equal(h.recs[999].Time) {
		t.Fatalf("meta %+v %v", m, err)
	}
	for _, rev := range []uint64{0, 150, 700, 701, 900, 1000} {
		if text, err := s.TextAt(ctx, doc, rev); err != nil || text != h.texts[rev] {
			t.Fatalf("text at %d: %v", rev, err)
		}
	}
	for _, rev := range []uint64{1, 149, 151, 699} {
		_, err := s.TextAt(ctx, doc, rev)
		wantGone(t, "text at a folded revision", err, 700)
	}
	if _, err := s.Diff(ctx, doc, 150, 900); err != nil {
		t.Fatalf("diff between named versions: %v", err)
	}
	_, err = s.Diff(ctx, doc, 100, 900)
	wantGone(t, "diff from a folded revision", err, 700)
	_, err = s.Records(ctx, doc, 699, 10)
	wantGone(t, "records after a folded revision", err, 700)
	_, err = s.Records(ctx, doc, 0, 10)
	wantGone(t, "records from the start", err, 700)
	if recs, err := s.Records(ctx, doc, 700, 5); err != nil || len(recs) != 5 || recs[0].Rev != 701 {
		t.Fatalf("records after the horizon: %d %v", len(recs), err)
	}
	// History pages down to one line for the folded range.
	var all []Revision
	for before := uint64(0); len(all) < 2000; {
		page, err := s.History(ctx, doc, before, 128)
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
	if page, err := s.History(ctx, doc, 701, 10); err != nil || len(page) != 1 || !page[0].Folded {
		t.Fatalf("history just above the horizon: %+v %v", page, err)
	}
	if !last.Time.Equal(h.recs[699].Time) {
		t.Fatalf("the folded line's time is %v, want that of revision 700, %v", last.Time, h.recs[699].Time)
	}
	st, err := s.Load(ctx, doc, 128)
	if err != nil || st.Snapshot.Rev != 1000 || len(st.Records) != 128 || st.Records[0].Rev != 873 || st.Meta.Folded != 700 {
		t.Fatalf("load: snapshot %d, %d records, %v", st.Snapshot.Rev, len(st.Records), err)
	}
	st, err = s.Load(ctx, doc, 500)
	if err != nil || st.Records[0].Rev != 701 || len(st.Records) != 300 {
		t.Fatalf("load keeping more than the log holds: %v", err)
	}
	for name, rev := range map[string]uint64{"at150": 150, "at900": 900} {
		if v, text, err := s.VersionText(ctx, doc, name); err != nil || v.Rev != rev || text != h.texts[rev] {
			t.Fatalf("version %s after the fold: %v", name, err)
		}
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestJetStreamFold: a fold purges the subject's messages below the
// horizon (the stream denies deletes, not purges), reads below it answer
// gone, named versions keep their texts, another node appends after it,
// and further folds by age and by both bounds move the horizon as Bolt's.
func TestJetStreamFold(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	other := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	if !s.stream.CachedInfo().Config.DenyDelete {
		t.Fatal("the op stream allows deletes")
	}
	const doc, batch = "fold.me", 13
	h := makeHistory(t, 5, 1000)
	commitHistory(t, s, doc, h, batch, 100)
	t0 := h.recs[0].Time.Add(-time.Second) // revision r is stamped t0 + r seconds
	for name, rev := range map[string]uint64{"at150": 150, "at900": 900} {
		if err := s.PutVersion(ctx, doc, Version{Name: name, Rev: rev}); err != nil {
			t.Fatal(err)
		}
	}
	before := subjectMsgs(t, s, doc)
	if before != (1000+batch-1)/batch {
		t.Fatalf("%d messages before the fold", before)
	}

	// A policy that keeps everything folds nothing.
	if horizon, err := s.Fold(ctx, doc, Retention{}, t0.Add(time.Hour)); err != nil || horizon != 0 {
		t.Fatalf("fold keeping all: %d %v", horizon, err)
	}
	// Keep the last 300 revisions' ops: the horizon is 700. Messages
	// wholly below the one holding 700 are purged; that one stays.
	horizon, err := other.Fold(ctx, doc, Retention{KeepRevs: 300}, t0.Add(time.Hour))
	if err != nil || horizon != 700 {
		t.Fatalf("fold: horizon %d, %v", horizon, err)
	}
	if after := subjectMsgs(t, s, doc); after != before-(700-1)/batch {
		t.Fatalf("%d messages after the fold, want %d", after, before-(700-1)/batch)
	}
	idx, _, err := s.snapIndex(ctx, doc)
	if err != nil || idx[0].rev != 700 || !idx[0].fold {
		t.Fatalf("index after the fold: %+v %v", idx, err)
	}
	if _, err := s.kv.Get(ctx, snapKey(doc, 600)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("snapshot below the horizon: %v", err)
	}
	checkFolded1000(t, s, doc, h)
	checkFolded1000(t, other, doc, h)

	// Nothing more to fold under the same policy.
	if horizon, err := s.Fold(ctx, doc, Retention{KeepRevs: 300}, t0.Add(time.Hour)); err != nil || horizon != 700 {
		t.Fatalf("second fold: %d %v", horizon, err)
	}
	// A name for a folded revision only where a version keeps its text.
	if err := s.PutVersion(ctx, doc, Version{Name: "again150", Rev: 150}); err != nil {
		t.Fatal(err)
	}
	err = s.PutVersion(ctx, doc, Version{Name: "at100", Rev: 100})
	wantGone(t, "a version of a folded revision", err, 700)

	// By age: ops are one second apart from t0; keeping 100 s at
	// t0+1000 s lets go of revisions up to 899.
	horizon, err = s.Fold(ctx, doc, Retention{KeepFor: 100 * time.Second}, t0.Add(1000*time.Second))
	if err != nil || horizon != 899 {
		t.Fatalf("fold by age: %d %v", horizon, err)
	}
	// Both bounds: an op is folded only outside both.
	horizon, err = other.Fold(ctx, doc, Retention{KeepRevs: 10, KeepFor: 50 * time.Second}, t0.Add(1000*time.Second))
	if err != nil || horizon != 949 {
		t.Fatalf("fold by count and age: %d %v", horizon, err)
	}
	if text, err := s.TextAt(ctx, doc, 900); err != nil || text != h.texts[900] {
		t.Fatalf("named version 900 after folding past it: %v", err)
	}
	if after := subjectMsgs(t, s, doc); after != before-(949-1)/batch {
		t.Fatalf("%d messages after the third fold, want %d", after, before-(949-1)/batch)
	}
	// Appends go on from both nodes: the compare-and-set anchor (the
	// subject's last message) was never purged.
	more := makeHistory(t, 5, 1010)
	commitT(t, other, Write{Doc: doc, Records: more.recs[1000:1005]})
	commitT(t, s, Write{Doc: doc, Records: more.recs[1005:1010], Snapshot: &Snapshot{Rev: 1010, Text: more.texts[1010]}})
	// Folding right up to the head keeps the last message.
	if horizon, err := s.Fold(ctx, doc, Retention{KeepFor: time.Nanosecond}, t0.Add(2000*time.Second)); err != nil || horizon != 1010 {
		t.Fatalf("fold to the head: %d %v", horizon, err)
	}
	if n := subjectMsgs(t, s, doc); n != 1 {
		t.Fatalf("%d messages after folding to the head", n)
	}
	commitT(t, other, Write{Doc: doc, Records: []Record{rec(1011, "z", 1, 0, "!")}})
	if text, err := s.TextAt(ctx, doc, 1011); err != nil || text != "!"+more.texts[1010] {
		t.Fatalf("text after an append past a fold to the head: %v", err)
	}
	if hist, err := s.History(ctx, doc, 0, 5); err != nil || len(hist) != 2 || hist[0].Rev != 1011 || !hist[1].Folded || hist[1].Rev != 1010 {
		t.Fatalf("history %+v %v", hist, err)
	}
	if err := other.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestJetStreamRetentionOverridesAndFoldAll is
// TestRetentionOverridesAndFoldAll on JetStream.
func TestJetStreamRetentionOverridesAndFoldAll(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	other := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(t, 9, 200)
	commitHistory(t, s, "a", h, 50, 100)
	commitHistory(t, s, "b", h, 50, 100)
	now := h.recs[199].Time.Add(time.Hour)
	if err := s.SetRetention(ctx, "nodoc", &Retention{KeepRevs: 1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("override of a missing document: %v", err)
	}
	if err := s.SetRetention(ctx, "b", &Retention{KeepFor: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative override: %v", err)
	}
	if err := s.SetRetention(ctx, "b", &Retention{KeepRevs: 50, KeepFor: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if p, err := other.DocRetention(ctx, "b"); err != nil || p == nil || p.KeepRevs != 50 || p.KeepFor != time.Minute {
		t.Fatalf("override %+v %v", p, err)
	}
	// The server's default keeps everything: only b folds.
	n, err := other.FoldAll(ctx, Retention{}, now)
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
	if n, err := s.FoldAll(ctx, Retention{KeepRevs: 20}, now); err != nil || n != 0 {
		t.Fatalf("a fold with nothing to do: %d %v", n, err)
	}
	if h, err := s.Fold(ctx, "a", Retention{KeepFor: 1000 * time.Hour}, now); err != nil || h != 180 {
		t.Fatalf("a fold by age with nothing old enough: %d %v", h, err)
	}
	if err := s.SetRetention(ctx, "b", nil); err != nil {
		t.Fatal(err)
	}
	if p, err := other.DocRetention(ctx, "b"); err != nil || p != nil {
		t.Fatalf("override after removal %+v %v", p, err)
	}
	// Deleting the document deletes its override and its horizon.
	if err := s.SetRetention(ctx, "a", &Retention{KeepRevs: 5}); err != nil {
		t.Fatal(err)
	}
	commitT(t, s, Write{Doc: "a", Delete: true})
	if p, err := s.DocRetention(ctx, "a"); err != nil || p != nil {
		t.Fatalf("override after delete %+v %v", p, err)
	}
	commitHistory(t, other, "a", h, 50, 0)
	if m, err := s.Meta(ctx, "a"); err != nil || m.Folded != 0 || m.Head != 200 {
		t.Fatalf("meta of the new document: %+v %v", m, err)
	}
	if text, err := s.TextAt(ctx, "a", 1); err != nil || text != h.texts[1] {
		t.Fatalf("text of the new document: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestJetStreamHistoryRestart: named versions, policies and fold
// horizons live in JetStream: they survive a server restart on the same
// store directory, and the log goes on.
func TestJetStreamHistoryRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv := runNATS(t, natsOpts(dir, true))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	const doc = "kept.history"
	h := makeHistory(t, 5, 1000)
	commitHistory(t, s, doc, h, 13, 100)
	t0 := h.recs[0].Time
	for name, rev := range map[string]uint64{"at150": 150, "at900": 900} {
		if err := s.PutVersion(ctx, doc, Version{Name: name, Rev: rev, User: "ann", Created: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetRetention(ctx, doc, &Retention{KeepRevs: 300}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.FoldAll(ctx, Retention{}, t0.Add(time.Hour)); err != nil || n != 700 {
		t.Fatalf("fold all: %d %v", n, err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()

	srv2 := runNATS(t, natsOpts(dir, true))
	s2 := openJSTest(t, srv2.ClientURL(), JetStreamConfig{})
	checkFolded1000(t, s2, doc, h)
	if p, err := s2.DocRetention(ctx, doc); err != nil || p == nil || p.KeepRevs != 300 {
		t.Fatalf("policy after restart: %+v %v", p, err)
	}
	if vs, err := s2.Versions(ctx, doc); err != nil || len(vs) != 2 || vs[0].User != "ann" || !vs[0].Created.Equal(t0) {
		t.Fatalf("versions after restart: %+v %v", vs, err)
	}
	more := makeHistory(t, 5, 1001)
	commitT(t, s2, Write{Doc: doc, Records: more.recs[1000:]})
	if text, err := s2.TextAt(ctx, doc, 1001); err != nil || text != more.texts[1001] {
		t.Fatalf("append after restart: %v", err)
	}
}

// TestJetStreamBackupNamesStreams: Backup stays unsupported, and its
// error tells the operator which streams to back up with the nats CLI.
func TestJetStreamBackupNamesStreams(t *testing.T) {
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{Stream: "OPS2", SnapshotBucket: "snaps2"})
	_, err := s.Backup(context.Background(), &strings.Builder{})
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("backup: %v", err)
	}
	for _, want := range []string{"nats stream backup", "OPS2", "KV_snaps2", "OBJ_snaps2_versions"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("backup error %q does not name %q", err, want)
		}
	}
}

// FuzzDecodeSnapIndex: the snapshot index decoder (with or without a fold
// header) never panics, and what it accepts encodes back to the same
// entries.
func FuzzDecodeSnapIndex(f *testing.F) {
	f.Add(appendSnapIndex(nil, []snapEntry{{rev: 3, seq: 9}, {rev: 7, seq: 20}}))
	f.Add(appendSnapIndex(nil, []snapEntry{{rev: 3, seq: 9, fold: true, created: -5}, {rev: 7, seq: 20}}))
	f.Add([]byte{snapIndexV2, 3, 0, snapIndexV2})
	f.Fuzz(func(t *testing.T, v []byte) {
		idx, err := decodeSnapIndex(v)
		if err != nil {
			return
		}
		again, err := decodeSnapIndex(appendSnapIndex(nil, idx))
		if err != nil || len(again) != len(idx) {
			t.Fatalf("%+v -> %+v %v", idx, again, err)
		}
		for i := range idx {
			if again[i] != idx[i] {
				t.Fatalf("%+v -> %+v", idx, again)
			}
		}
	})
}

// TestJetStreamConcurrentFolds: two nodes folding one document at once,
// round after round, both succeed with the same horizon, and the log
// stays whole above it.
func TestJetStreamConcurrentFolds(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	a := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	b := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(t, 6, 1000)
	commitHistory(t, a, "both", h, 7, 0) // no snapshots: each fold replays from the last horizon
	now := h.recs[999].Time.Add(time.Hour)
	for keep := uint64(900); keep >= 100; keep -= 100 {
		var horizons [2]uint64
		var errs [2]error
		var wg sync.WaitGroup
		for i, s := range []*JetStream{a, b} {
			wg.Go(func() { horizons[i], errs[i] = s.Fold(ctx, "both", Retention{KeepRevs: keep}, now) })
		}
		wg.Wait()
		for i := range errs {
			if errs[i] != nil || horizons[i] != 1000-keep {
				t.Fatalf("keep %d: node %d: horizon %d, %v", keep, i, horizons[i], errs[i])
			}
		}
	}
	if m, err := b.Meta(ctx, "both"); err != nil || m.Folded != 900 {
		t.Fatalf("meta %+v %v", m, err)
	}
	for _, rev := range []uint64{900, 950, 1000} {
		if text, err := a.TextAt(ctx, "both", rev); err != nil || text != h.texts[rev] {
			t.Fatalf("text at %d: %v", rev, err)
		}
	}
	if err := a.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestJetStreamReadsRacingFolds: reads on one node while another folds
// the document step by step: Load and the text at the head always work
// (a read whose messages a fold purged starts again), and a read of an
// older revision answers its text or gone, never a gap.
func TestJetStreamReadsRacingFolds(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	reader := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	folder := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(t, 8, 1000)
	commitHistory(t, folder, "busy", h, 7, 200)
	now := h.recs[999].Time.Add(time.Hour)

	done := make(chan struct{})
	var foldErr error
	go func() {
		defer close(done)
		for keep := uint64(975); keep >= 25; keep -= 25 {
			if _, err := folder.Fold(ctx, "busy", Retention{KeepRevs: keep}, now); err != nil {
				foldErr = err
				return
			}
		}
	}()
	gone, reads := 0, 0
	for i := 0; i < 5000; i++ {
		select {
		case <-done:
			i = 5000
		default:
		}
		reads++
		st, err := reader.Load(ctx, "busy", 16)
		if err != nil || st.Meta.Head != 1000 || len(st.Records) < 16 {
			t.Fatalf("load: %v", err)
		}
		rev := uint64(1 + (i*37)%1000)
		text, err := reader.TextAt(ctx, "busy", rev)
		switch {
		case errors.Is(err, ErrGone):
			gone++
		case err != nil || text != h.texts[rev]:
			t.Fatalf("text at %d: %v", rev, err)
		}
		recs, err := reader.Records(ctx, "busy", rev-1, 3)
		if err != nil && !errors.Is(err, ErrGone) || err == nil && (len(recs) == 0 || recs[0].Rev != rev) {
			t.Fatalf("records after %d: %d, %v", rev-1, len(recs), err)
		}
	}
	<-done
	if foldErr != nil {
		t.Fatal(foldErr)
	}
	if m, err := reader.Meta(ctx, "busy"); err != nil || m.Folded != 975 {
		t.Fatalf("meta %+v %v", m, err)
	}
	t.Logf("%d rounds of reads during the folds, %d texts gone", reads, gone)
}
