package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/internal/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsOpts are the options of an embedded JetStream server storing in dir.
func natsOpts(dir string, syncAlways bool) *server.Options {
	return natstest.Options(dir, -1, syncAlways)
}

// runNATS starts an embedded nats-server, shut down at cleanup.
func runNATS(tb testing.TB, opts *server.Options) *server.Server {
	tb.Helper()
	return natstest.Run(tb, opts)
}

// connectJS opens a NATS connection to url (closed at cleanup).
func connectJS(tb testing.TB, url string) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// openJSTest opens a JetStream store on its own connection to url.
func openJSTest(tb testing.TB, url string, cfg JetStreamConfig) *JetStream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := OpenJetStream(ctx, connectJS(tb, url), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestJetStreamDocEncoding(t *testing.T) {
	ids := []string{"a", "notes.v2", "~", ".", "..", "a~b.c-d_e", "A-Z", strings.Repeat(".~", 64)}
	seen := map[string]string{}
	for _, id := range ids {
		enc := encodeDoc(id)
		if strings.ContainsAny(enc, ".~*> \t") {
			t.Fatalf("%q encodes to %q: not a subject token or KV key", id, enc)
		}
		if other, dup := seen[enc]; dup {
			t.Fatalf("%q and %q both encode to %q", id, other, enc)
		}
		seen[enc] = id
		back, ok := decodeDoc(enc)
		if !ok || back != id {
			t.Fatalf("%q -> %q -> %q %v", id, enc, back, ok)
		}
	}
	for _, bad := range []string{"a=2e", "a=41", "a=2", "=", "a=ZZ", ""} {
		if doc, ok := decodeDoc(bad); ok {
			t.Fatalf("%q decodes to %q", bad, doc)
		}
	}
	// Every id character but '.' and '~' is kept as is.
	if enc := encodeDoc(contract.DocIDChars); strings.Count(enc, "=") != 2 {
		t.Fatalf("alphabet encodes to %q", enc)
	}
}

func TestJetStreamRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(t, 1, 250)
	commitHistory(t, s, "doc.1~x", h, 7, 100)

	m, err := s.Meta(ctx, "doc.1~x")
	if err != nil {
		t.Fatal(err)
	}
	if m.Head != 250 || m.SnapRev != 200 || !m.Created.Equal(h.recs[0].Time) || !m.Updated.Equal(h.recs[249].Time) {
		t.Fatalf("meta %+v", m)
	}
	// Another instance (another node) reads the same things.
	other := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	for _, st := range []*JetStream{s, other} {
		for rev := range h.texts {
			got, err := st.TextAt(ctx, "doc.1~x", uint64(rev))
			if err != nil || got != h.texts[rev] {
				t.Fatalf("rev %d: %q %v, want %q", rev, got, err, h.texts[rev])
			}
		}
	}
	got, err := other.Records(ctx, "doc.1~x", 240, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].Rev != 241 || got[4].Rev != 245 {
		t.Fatalf("got %d records", len(got))
	}
	if g, w := got[0], h.recs[240]; !bytes.Equal(g.Op, w.Op) || g.Client != w.Client || g.Seq != w.Seq ||
		g.User != w.User || !g.Time.Equal(w.Time) || g.Ins != w.Ins || g.Del != w.Del {
		t.Fatalf("record %+v, want %+v", g, w)
	}
	if got, err := other.Records(ctx, "doc.1~x", 250, 5); err != nil || len(got) != 0 {
		t.Fatalf("records at head: %v %v", got, err)
	}
	for _, keep := range []int{0, 10, 80, 1000} {
		st, err := other.Load(ctx, "doc.1~x", keep)
		if err != nil {
			t.Fatal(err)
		}
		if st.Snapshot.Rev != 200 || st.Snapshot.Text != h.texts[200] || st.Meta.Head != 250 || st.Meta.SnapRev != 200 {
			t.Fatalf("keep %d: snapshot %d head %d", keep, st.Snapshot.Rev, st.Meta.Head)
		}
		first := min(201, max(1, 250-keep+1))
		if len(st.Records) != 250-first+1 || st.Records[0].Rev != uint64(first) {
			t.Fatalf("keep %d: %d records from %d", keep, len(st.Records), st.Records[0].Rev)
		}
	}
	if st, err := s.Load(ctx, "never-written", 10); err != nil || st.Meta.Head != 0 || len(st.Records) != 0 {
		t.Fatalf("empty load: %+v %v", st, err)
	}
	var all []Revision
	for before := uint64(0); ; {
		page, err := other.History(ctx, "doc.1~x", before, 32)
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
		w := h.recs[249-i]
		if r.Rev != w.Rev || r.Client != w.Client || r.Ins != w.Ins || r.Del != w.Del || !r.Time.Equal(w.Time) {
			t.Fatalf("revision %d: %+v", i, r)
		}
	}
	diffs, err := other.Diff(ctx, "doc.1~x", 40, 230)
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
	if a != h.texts[40] || b != h.texts[230] {
		t.Fatal("diff does not rebuild both texts")
	}
	if err := other.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Backup(ctx, &bytes.Buffer{}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("backup: %v", err)
	}
}

func TestJetStreamQueryAndCommitErrors(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(t, 2, 10)
	commitHistory(t, s, "d", h, 10, 0)
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
		{"meta of missing doc", func() error { _, err := s.Meta(ctx, "nope"); return err }, ErrNotFound},
		{"bad id", func() error { _, err := s.Meta(ctx, "a/b"); return err }, ErrInvalid},
		{"diff beyond head", func() error { _, err := s.Diff(ctx, "d", 0, 12); return err }, ErrNotFound},
		{"gap", func() error {
			return s.Commit(ctx, []Write{{Doc: "d", Records: []Record{{Rev: 12, Op: []byte(`["x"]`)}}}})
		}, ErrConflict},
		{"snapshot beyond head", func() error {
			return s.Commit(ctx, []Write{{Doc: "d", Snapshot: &Snapshot{Rev: 11}}})
		}, ErrConflict},
		{"snapshot of a missing doc", func() error {
			return s.Commit(ctx, []Write{{Doc: "nope", Snapshot: &Snapshot{Rev: 1}}})
		}, ErrConflict},
		{"empty write to a missing doc", func() error {
			return s.Commit(ctx, []Write{{Doc: "nope"}})
		}, ErrConflict},
		{"two writes of one doc", func() error {
			return s.Commit(ctx, []Write{{Doc: "e", Delete: true}, {Doc: "e", Delete: true}})
		}, ErrInvalid},
		{"not contiguous", func() error {
			return s.Commit(ctx, []Write{{Doc: "d", Records: []Record{{Rev: 11, Op: []byte(`["x"]`)}, {Rev: 13, Op: []byte(`["x"]`)}}}})
		}, ErrInvalid},
		{"old revision", func() error {
			return s.Commit(ctx, []Write{{Doc: "d", Records: []Record{{Rev: 10, Op: []byte(`["x"]`)}}}})
		}, ErrStale},
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
	if got, err := s.TextAt(ctx, "d", 10); err != nil || got != h.texts[10] {
		t.Fatalf("a failed write changed the log: %q %v", got, err)
	}
	s.Close()
	if _, err := s.Meta(ctx, "d"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// rec is a record inserting text at position pos.
func rec(rev uint64, client string, seq uint64, pos int, text string) Record {
	op := fmt.Sprintf(`[%q]`, text)
	if pos > 0 {
		op = fmt.Sprintf(`[%d,%q]`, pos, text)
	}
	return Record{Rev: rev, Op: []byte(op), Client: client, Seq: seq, Time: time.Now(), Ins: len([]rune(text))}
}

// TestJetStreamCASRace: two nodes (two connections, two store instances)
// append at the same revision; exactly one wins, the loser gets ErrStale
// with what it needs to catch up, and its retry at the next revision
// lands.
func TestJetStreamCASRace(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	a := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	b := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	// Another document between the appends, so that stream sequences and
	// revisions differ (the compare-and-set is on stream sequences).
	noise := func(i int) {
		if err := a.Commit(ctx, []Write{{Doc: "noise", Records: []Record{rec(uint64(i+1), "n", uint64(i+1), i, "n")}}}); err != nil {
			t.Fatal(err)
		}
	}
	var head uint64
	for round := range 20 {
		noise(round)
		for _, s := range []*JetStream{a, b} {
			st, err := s.Load(ctx, "race", 0)
			if err != nil || st.Meta.Head != head {
				t.Fatalf("round %d: load head %d, want %d: %v", round, st.Meta.Head, head, err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*JetStream{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Commit(ctx, []Write{{Doc: "race", Records: []Record{rec(head+1, fmt.Sprint("node", i), uint64(round), 0, fmt.Sprint(i))}}})
			}()
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: both appends won", round)
				}
				winner = i
			case errors.Is(err, ErrStale):
				var se *StaleError
				if !errors.As(err, &se) || se.Rev != head+1 || se.Head != head+1 || se.Seq == 0 || se.Doc != "race" {
					t.Fatalf("round %d: stale error %+v", round, se)
				}
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody won: %v", round, errs)
		}
		head++
		// The loser catches up and appends at the next revision, without
		// loading again: the conflict taught it the stream sequence.
		loser := []*JetStream{a, b}[1-winner]
		got, err := loser.Records(ctx, "race", head-1, 10)
		if err != nil || len(got) != 1 || got[0].Client != fmt.Sprint("node", winner) {
			t.Fatalf("round %d: catch-up %+v %v", round, got, err)
		}
		if err := loser.Commit(ctx, []Write{{Doc: "race", Records: []Record{rec(head+1, fmt.Sprint("node", 1-winner), uint64(round), 0, "L")}}}); err != nil {
			t.Fatalf("round %d: retry: %v", round, err)
		}
		head++
	}
	recs, err := b.Records(ctx, "race", 0, 1000)
	if err != nil || len(recs) != int(head) {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for i, r := range recs {
		if r.Rev != uint64(i+1) {
			t.Fatalf("record %d has revision %d", i, r.Rev)
		}
	}
}

// TestJetStreamGapFreeAcrossInstances: writers on two instances append to
// one document as fast as they can, each retrying after a lost race with
// its catch-up; the log ends gap-free with every (client, seq) once.
func TestJetStreamGapFreeAcrossInstances(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	stores := []*JetStream{openJSTest(t, srv.ClientURL(), JetStreamConfig{}), openJSTest(t, srv.ClientURL(), JetStreamConfig{})}
	const writers, each = 4, 25
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			client := fmt.Sprint("w", w)
			head := uint64(0)
			for seq := uint64(1); seq <= each; {
				// Two records per write: messages carry batches.
				err := s.Commit(ctx, []Write{{Doc: "shared", Records: []Record{rec(head+1, client, seq, 0, "a"), rec(head+2, client, seq+1, 0, "b")}}})
				var se *StaleError
				switch {
				case err == nil:
					head += 2
					seq += 2
				case errors.As(err, &se):
					head = se.Head
				default:
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	recs, err := stores[0].Records(ctx, "shared", 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, r := range recs {
		if r.Rev != uint64(i+1) {
			t.Fatalf("record %d has revision %d", i, r.Rev)
		}
		k := fmt.Sprint(r.Client, "/", r.Seq)
		if seen[k] {
			t.Fatalf("%s twice", k)
		}
		seen[k] = true
	}
	if want := writers * (each + 1); len(recs) != want {
		t.Fatalf("%d records, want %d", len(recs), want)
	}
}

// TestJetStreamTextAtStartsAtSnapshot proves that a read after a snapshot
// does not replay the log from revision 0: it counts the stream messages
// the store reads.
func TestJetStreamTextAtStartsAtSnapshot(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(t, 3, 300)
	commitHistory(t, s, "long", h, 1, 100) // one message per record
	reader := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	for _, tc := range []struct {
		rev      uint64
		maxReads int64
	}{{210, 12}, {300, 1}, {200, 1}, {99, 99}, {150, 52}} { // a check of the snapshot's message, then the scan
		before := reader.gets.Load()
		got, err := reader.TextAt(ctx, "long", tc.rev)
		if err != nil || got != h.texts[tc.rev] {
			t.Fatalf("rev %d: %v", tc.rev, err)
		}
		if n := reader.gets.Load() - before; n > tc.maxReads {
			t.Fatalf("text at %d read %d messages, want at most %d", tc.rev, n, tc.maxReads)
		}
	}
	before := reader.gets.Load()
	st, err := reader.Load(ctx, "long", 0)
	if err != nil || st.Snapshot.Rev != 300 || len(st.Records) != 0 {
		t.Fatalf("load: %d %d %v", st.Snapshot.Rev, len(st.Records), err)
	}
	if n := reader.gets.Load() - before; n > 2 { // the first message (Created) and the snapshot's
		t.Fatalf("load at a snapshot read %d messages", n)
	}
	// A snapshot stored apart from records (as eviction does), at a
	// revision this instance learned from Load.
	if err := reader.Commit(ctx, []Write{{Doc: "long", Snapshot: &Snapshot{Rev: 300, Text: h.texts[300]}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, []Write{{Doc: "long", Snapshot: &Snapshot{Rev: 250, Text: h.texts[250]}}}); err != nil {
		t.Fatal(err)
	}
	if m, err := reader.Meta(ctx, "long"); err != nil || m.SnapRev != 300 {
		t.Fatalf("meta %+v %v", m, err)
	}
	before = reader.gets.Load()
	if got, err := reader.TextAt(ctx, "long", 255); err != nil || got != h.texts[255] {
		t.Fatalf("text at 255: %v", err)
	}
	if n := reader.gets.Load() - before; n > 7 {
		t.Fatalf("text at 255 read %d messages after a snapshot at 250", n)
	}
	if err := reader.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestJetStreamChunks(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{MaxMessageBytes: 1000})
	h := makeHistory(t, 4, 120)
	commitHistory(t, s, "big", h, 120, 50)
	info, err := s.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs < 3 {
		t.Fatalf("one write of 120 records in %d messages", info.State.Msgs)
	}
	other := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	for rev := range h.texts {
		if got, err := other.TextAt(ctx, "big", uint64(rev)); err != nil || got != h.texts[rev] {
			t.Fatalf("rev %d: %v", rev, err)
		}
	}
	if err := s.Commit(ctx, []Write{{Doc: "big", Records: []Record{rec(121, "c", 1, 0, strings.Repeat("x", 2000))}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("record over the message size: %v", err)
	}
}

func TestJetStreamListDelete(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	other := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	h := makeHistory(t, 5, 30)
	ids := []string{"b.x", "a~1", "a", "ab", "c"}
	for _, id := range ids {
		commitHistory(t, s, id, h, 4, 10)
	}
	docs, err := other.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.ID)
		if d.Head != 30 || d.SnapRev != 30 {
			t.Fatalf("%s: %+v", d.ID, d.Meta)
		}
	}
	if want := "a ab a~1 b.x c"; strings.Join(got, " ") != want {
		t.Fatalf("list %q, want %q", got, want)
	}
	// other learned "a~1"'s position; s deletes it.
	if _, err := other.Load(ctx, "a~1", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, []Write{{Doc: "a~1", Delete: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Meta(ctx, "a~1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("meta after delete: %v", err)
	}
	if docs, _ := other.List(ctx); len(docs) != 4 {
		t.Fatalf("list after delete: %v", docs)
	}
	// A node that has not seen the delete cannot continue the old log.
	if err := other.Commit(ctx, []Write{{Doc: "a~1", Records: []Record{rec(31, "c", 1, 0, "x")}}}); !errors.Is(err, ErrStale) && !errors.Is(err, ErrConflict) {
		t.Fatalf("append to a deleted log: %v", err)
	}
	// The id names a new, empty document, without the old snapshots.
	h2 := makeHistory(t, 6, 15)
	commitHistory(t, other, "a~1", h2, 3, 0)
	for rev := range h2.texts {
		if got, err := s.TextAt(ctx, "a~1", uint64(rev)); err != nil || got != h2.texts[rev] {
			t.Fatalf("rev %d: %q %v", rev, got, err)
		}
	}
	if m, err := s.Meta(ctx, "a~1"); err != nil || m.Head != 15 || m.SnapRev != 0 {
		t.Fatalf("meta %+v %v", m, err)
	}
	// "a" and "ab" do not share subjects or keys.
	if got, err := s.TextAt(ctx, "ab", 30); err != nil || got != h.texts[30] {
		t.Fatalf("ab: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestJetStreamPartialCommit: documents of one Commit succeed or fail on
// their own, and the error says which.
func TestJetStreamPartialCommit(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	if err := s.Commit(ctx, []Write{{Doc: "x", Records: []Record{rec(1, "c", 1, 0, "x")}}}); err != nil {
		t.Fatal(err)
	}
	err := s.Commit(ctx, []Write{
		{Doc: "x", Records: []Record{rec(1, "c", 2, 0, "again")}},
		{Doc: "y", Records: []Record{rec(1, "c", 1, 0, "y")}},
	})
	var we *WriteErrors
	if !errors.As(err, &we) || !errors.Is(err, ErrStale) || we.Errs[1] != nil || !errors.Is(we.Errs[0], ErrStale) {
		t.Fatalf("got %v", err)
	}
	if got, err := s.TextAt(ctx, "y", 1); err != nil || got != "y" {
		t.Fatalf("y: %q %v", got, err)
	}
}

// TestJetStreamOpenConcurrently: nodes starting at once against a fresh
// JetStream all come up on one stream and one bucket.
func TestJetStreamOpenConcurrently(t *testing.T) {
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	const n = 8
	jss := make([]jetstream.JetStream, n)
	for i := range jss {
		jss[i] = connectJS(t, srv.ClientURL())
	}
	stores := make([]*JetStream, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stores[i], errs[i] = OpenJetStream(ctx, jss[i], JetStreamConfig{})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	ctx := context.Background()
	for i, s := range stores {
		if err := s.Commit(ctx, []Write{{Doc: fmt.Sprint("d", i), Records: []Record{rec(1, "c", 1, 0, "x")}}}); err != nil {
			t.Fatal(err)
		}
	}
	if docs, err := stores[0].List(ctx); err != nil || len(docs) != n {
		t.Fatalf("%d docs: %v", len(docs), err)
	}
	// An existing stream that would drop records is refused.
	js := jss[0]
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LIMITED", Subjects: []string{"lim.>"}, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJetStream(ctx, js, JetStreamConfig{Stream: "LIMITED", Subject: "lim"}); err == nil {
		t.Fatal("opened a stream with MaxAge")
	}
}

// TestJetStreamRestart: every acknowledged record survives a server
// shutdown and a start on the same store directory (SyncAlways).
func TestJetStreamRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := natsOpts(dir, true)
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	s, err := OpenJetStream(ctx, js, JetStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h := makeHistory(t, 7, 60)
	commitHistory(t, s, "kept", h, 3, 25)
	nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()

	srv2 := runNATS(t, natsOpts(dir, true))
	s2 := openJSTest(t, srv2.ClientURL(), JetStreamConfig{})
	st, err := s2.Load(ctx, "kept", 100)
	if err != nil {
		t.Fatal(err)
	}
	if st.Meta.Head != 60 || st.Snapshot.Rev != 50 || len(st.Records) != 60 {
		t.Fatalf("after restart: head %d snapshot %d records %d", st.Meta.Head, st.Snapshot.Rev, len(st.Records))
	}
	for rev := range h.texts {
		if got, err := s2.TextAt(ctx, "kept", uint64(rev)); err != nil || got != h.texts[rev] {
			t.Fatalf("rev %d: %v", rev, err)
		}
	}
	// The log continues where it was.
	if err := s2.Commit(ctx, []Write{{Doc: "kept", Records: []Record{rec(61, "c", 1, 0, "z")}}}); err != nil {
		t.Fatal(err)
	}
}

// TestJetStreamSnapshotOfDeletedLog: a snapshot written by a node that
// raced a delete names a message of the purged log; reads of the new log
// with the same id do not use it.
func TestJetStreamSnapshotOfDeletedLog(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	old := makeHistory(t, 8, 30)
	commitHistory(t, s, "re", old, 5, 0)
	if err := s.Commit(ctx, []Write{{Doc: "re", Snapshot: &Snapshot{Rev: 20, Text: old.texts[20]}}}); err != nil {
		t.Fatal(err)
	}
	stale, _, err := s.snapIndex(ctx, "re")
	if err != nil || len(stale) != 1 {
		t.Fatalf("index %v %v", stale, err)
	}
	if err := s.Commit(ctx, []Write{{Doc: "re", Delete: true}}); err != nil {
		t.Fatal(err)
	}
	// The racing node's writes land after the delete.
	if _, err := s.kv.Put(ctx, snapKey("re", 20), appendSnapshot(nil, old.texts[20])); err != nil {
		t.Fatal(err)
	}
	if _, err := s.kv.Put(ctx, snapIndexKey("re"), appendSnapIndex(nil, stale)); err != nil {
		t.Fatal(err)
	}
	h := makeHistory(t, 9, 30)
	commitHistory(t, s, "re", h, 5, 0)
	other := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	for rev := range h.texts {
		if got, err := other.TextAt(ctx, "re", uint64(rev)); err != nil || got != h.texts[rev] {
			t.Fatalf("rev %d: %q %v, want %q", rev, got, err, h.texts[rev])
		}
	}
	if st, err := other.Load(ctx, "re", 0); err != nil || st.Snapshot.Rev != 0 || len(st.Records) != 30 {
		t.Fatalf("load: snapshot %d, %d records, %v", st.Snapshot.Rev, len(st.Records), err)
	}
	// A snapshot of the new log at the same revision replaces the entry.
	if err := other.Commit(ctx, []Write{{Doc: "re", Snapshot: &Snapshot{Rev: 20, Text: h.texts[20]}}}); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Load(ctx, "re", 0); err != nil || st.Snapshot.Rev != 20 || st.Snapshot.Text != h.texts[20] {
		t.Fatalf("load: snapshot %d, %v", st.Snapshot.Rev, err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestJetStreamLostAck: an append whose ack was lost and whose retry finds
// the slot taken tells its own earlier attempt (same Nats-Msg-Id: success
// at that sequence) from another node's message (a *StaleError).
func TestJetStreamLostAck(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	if err := s.Commit(ctx, []Write{{Doc: "ack", Records: []Record{rec(1, "c", 1, 0, "a")}}}); err != nil {
		t.Fatal(err)
	}
	p, _, err := s.last(ctx, "ack")
	if err != nil {
		t.Fatal(err)
	}
	data := appendOps(nil, []Record{rec(2, "c", 2, 1, "b")})
	// The first attempt reached the stream; its ack did not reach us.
	ack, err := s.js.Publish(ctx, s.subject("ack"), data, jetstream.WithMsgID("attempt-1"), jetstream.WithExpectLastSequencePerSubject(p.seq))
	if err != nil {
		t.Fatal(err)
	}
	// An append with another id finds another node's message; the
	// retry of an attempt whose compare-and-set fails (the first attempt
	// took the slot) is recognized as ours. (appendID looks for its own
	// id only when retrying: a first attempt's id is on no message.)
	seq, err := s.appendID(ctx, "ack", "attempt-1x", data, 2, p, false)
	var se *StaleError
	if !errors.As(err, &se) || se.Head != 2 {
		t.Fatalf("another id: %d %v", seq, err)
	}
	seq, err = s.lostRace(ctx, "ack", "attempt-1", 2, p, true)
	if err != nil || seq != ack.Sequence {
		t.Fatalf("own id: %d %v, want %d", seq, err, ack.Sequence)
	}
	if _, err = s.lostRace(ctx, "ack", "attempt-2", 2, p, true); !errors.As(err, &se) || se.Head != 2 {
		t.Fatalf("a retry of another id: %v", err)
	}
	if got, err := s.TextAt(ctx, "ack", 2); err != nil || got != "ab" {
		t.Fatalf("text %q %v", got, err)
	}
}

// TestJetStreamAsyncLostAnswer: a message Commit published asynchronously
// (sendFirst) whose answer never comes is sent again with the same id once
// Timeout passes; when the first one was stored, the retry finds it and
// the write succeeds at its sequence instead of failing as stale.
func TestJetStreamAsyncLostAnswer(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{Timeout: 300 * time.Millisecond})
	if err := s.Commit(ctx, []Write{{Doc: "lost", Records: []Record{rec(1, "c", 1, 0, "a")}}}); err != nil {
		t.Fatal(err)
	}
	p, _, err := s.last(ctx, "lost")
	if err != nil {
		t.Fatal(err)
	}
	data := appendOps(nil, []Record{rec(2, "c", 2, 1, "b")})
	// The message reached the stream...
	ack, err := s.js.Publish(ctx, s.subject("lost"), data, jetstream.WithMsgID("async-1"), jetstream.WithExpectLastSequencePerSubject(p.seq))
	if err != nil {
		t.Fatal(err)
	}
	// ...and its answer is lost: a future on a subject that a silent
	// subscriber takes and never answers.
	nc := s.js.Conn()
	sub, err := nc.SubscribeSync("silent.sink")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	fut, err := s.js.PublishMsgAsync(&nats.Msg{Subject: "silent.sink", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	m := &sent{id: "async-1", data: data, p: p, fut: fut}
	start := time.Now()
	seq, err := s.awaitSent(ctx, "lost", m, 2)
	if err != nil || seq != ack.Sequence {
		t.Fatalf("awaitSent: %d %v, want the stored message's sequence %d", seq, err, ack.Sequence)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatalf("answered before Timeout without an answer to wait for")
	}
	// And a batch commits through sendFirst: two documents, one write each.
	if err := s.Commit(ctx, []Write{
		{Doc: "lost", Records: []Record{rec(3, "c", 3, 2, "c")}},
		{Doc: "other", Records: []Record{rec(1, "d", 1, 0, "x")}},
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TextAt(ctx, "lost", 3); err != nil || got != "abc" {
		t.Fatalf("text %q %v", got, err)
	}
}

// TestJetStreamLargeRecord: by default a message may be as large as the
// server's max_payload allows (less the headers): a record of 900 KB
// (a big paste, or the PUT of a new document) and a snapshot of that text
// are stored under the default 1 MiB, and another store instance loads
// the document from the snapshot.
func TestJetStreamLargeRecord(t *testing.T) {
	ctx := context.Background()
	srv := runNATS(t, natsOpts(t.TempDir(), false))
	s := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	if got, want := s.MaxMessageBytes(), int(s.js.Conn().MaxPayload())-4096; got != want || want < 1<<19 {
		t.Fatalf("MaxMessageBytes %d, want max_payload less 4 KiB (%d)", got, want)
	}
	text := strings.Repeat("0123456789", 90_000)
	w := Write{Doc: "large", Records: []Record{rec(1, "c", 1, 0, text)}, Snapshot: &Snapshot{Rev: 1, Text: text}}
	if err := s.Commit(ctx, []Write{w}); err != nil {
		t.Fatal(err)
	}
	other := openJSTest(t, srv.ClientURL(), JetStreamConfig{})
	st, err := other.Load(ctx, "large", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Meta.Head != 1 || st.Snapshot.Rev != 1 || st.Snapshot.Text != text {
		t.Fatalf("load: head %d, snapshot at %d of %d bytes", st.Meta.Head, st.Snapshot.Rev, len(st.Snapshot.Text))
	}
	// A record beyond the message still fails with ErrInvalid, unsent.
	huge := strings.Repeat("y", s.MaxMessageBytes())
	if err := s.Commit(ctx, []Write{{Doc: "large", Records: []Record{rec(2, "c", 2, 0, huge)}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("record over the message size: %v", err)
	}
}
