package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/collabd/collabd/internal/crashtest"
)

// noCheckpoints keeps every frame pending until a read, Close or an
// explicit Checkpoint.
var noCheckpoints = Options{CheckpointBytes: 1 << 40, CheckpointInterval: time.Hour}

// openPath opens the store at path, closed at cleanup.
func openPath(tb testing.TB, path string, opts Options) *Bolt {
	tb.Helper()
	s, err := OpenBolt(path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// waitSpare waits until the zero-filled spare segment the open prepares
// is ready, so that the first commit does not make a sparse segment that
// the next ones leave.
func waitSpare(tb testing.TB, s *Bolt) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); !s.journal.spareReady(1); {
		if time.Now().After(deadline) {
			tb.Fatal("no spare segment 10 s after the open")
		}
		time.Sleep(time.Millisecond)
	}
}

func commitT(tb testing.TB, s Store, writes ...Write) {
	tb.Helper()
	if err := s.Commit(context.Background(), writes); err != nil {
		tb.Fatal(err)
	}
}

// TestNoJournalSuite runs the store's suite again without the journal.
func TestNoJournalSuite(t *testing.T) {
	testNoJournal = true
	t.Cleanup(func() { testNoJournal = false })
	for name, fn := range map[string]func(*testing.T){
		"RoundTrip": TestRoundTrip, "QueryErrors": TestQueryErrors, "CommitRejects": TestCommitRejects,
		"ListDeleteBackup": TestListDeleteBackup, "Closed": TestClosed, "CheckFindsBrokenInvariants": TestCheckFindsBrokenInvariants,
		"PrefixIDsDoNotMix": TestPrefixIDsDoNotMix, "Validation": TestJournalValidation,
	} {
		t.Run(name, fn)
	}
	s := openTest(t, Options{})
	if st := s.JournalStats(); st.Enabled || s.journal != nil {
		t.Fatalf("NoJournal store has a journal: %+v", st)
	}
}

// frameSpan is where one frame lies in a segment file.
type frameSpan struct {
	seg        string
	lsn        uint64
	start, end int
}

// journalFrames lists the frames of the current epoch in the journal of
// the store at path, in LSN order.
func journalFrames(tb testing.TB, path string) []frameSpan {
	tb.Helper()
	dir := journalDir(path)
	epoch, err := readEpoch(dir)
	if err != nil {
		tb.Fatal(err)
	}
	nums, err := listSegments(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []frameSpan
	for _, num := range nums {
		b := readFile(tb, segName(dir, num))
		for off := 0; ; {
			lsn, _, n, ok := parseFrame(b[off:], epoch)
			if !ok {
				break
			}
			out = append(out, frameSpan{segName(dir, num), lsn, off, off + n})
			off += n
		}
	}
	for i := 1; i < len(out); i++ {
		if out[i].lsn < out[i-1].lsn {
			tb.Fatalf("frames out of order: %+v", out)
		}
	}
	return out
}

// editFile rewrites a file through fn.
func editFile(tb testing.TB, path string, fn func([]byte) []byte) {
	tb.Helper()
	if err := os.WriteFile(path, fn(readFile(tb, path)), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// TestJournalTornTail: a crash leaves the journal's tail in every state a
// torn or interrupted write can produce; reopening keeps exactly the
// frames before the damage.
func TestJournalTornTail(t *testing.T) {
	h := makeHistory(t, 21, 60)
	tests := []struct {
		name string
		// tear damages the segment bytes b; fs are the frames in it
		// (LSN 1, checkpointed, then LSNs 2..6, pending).
		tear func(t *testing.T, b []byte, fs []frameSpan) []byte
		head uint64
	}{
		{"intact", func(t *testing.T, b []byte, fs []frameSpan) []byte { return b }, 60},
		{"last frame garbled", func(t *testing.T, b []byte, fs []frameSpan) []byte {
			f := fs[5]
			b[(f.start+f.end)/2] ^= 0x40
			return b
		}, 50},
		{"last frame cut short (file truncated)", func(t *testing.T, b []byte, fs []frameSpan) []byte {
			f := fs[5]
			return b[:(f.start+f.end)/2]
		}, 50},
		{"half-written header", func(t *testing.T, b []byte, fs []frameSpan) []byte {
			f := fs[5]
			clear(b[f.start+12 : f.end])
			return b
		}, 50},
		{"last frame all zeros", func(t *testing.T, b []byte, fs []frameSpan) []byte {
			f := fs[5]
			clear(b[f.start:f.end])
			return b
		}, 50},
		{"a middle frame garbled", func(t *testing.T, b []byte, fs []frameSpan) []byte {
			b[fs[2].start+frameHeaderSize+1] ^= 1
			return b
		}, 20},
		{"stale checkpointed frame after the tail", func(t *testing.T, b []byte, fs []frameSpan) []byte {
			copy(b[fs[5].end:], b[fs[0].start:fs[0].end]) // LSN 1 again
			return b
		}, 60},
		{"frame of an older epoch with the next LSN after the tail", func(t *testing.T, b []byte, fs []frameSpan) []byte {
			var rec Record = h.recs[0]
			rec.Rev = 61
			payload := appendPayload(nil, []Write{{Doc: "d", Records: []Record{rec}}})
			epoch, err := readEpoch(filepath.Dir(fs[0].seg))
			if err != nil {
				t.Fatal(err)
			}
			copy(b[fs[5].end:], appendFrame(nil, epoch+1, 7, payload))
			return b
		}, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "d.db")
			s, err := OpenBolt(path, noCheckpoints)
			if err != nil {
				t.Fatal(err)
			}
			waitSpare(t, s) // all six frames in one segment
			commitT(t, s, Write{Doc: "d", Records: h.recs[:10]})
			if err := s.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			for i := 10; i < 60; i += 10 {
				commitT(t, s, Write{Doc: "d", Records: h.recs[i : i+10]})
			}
			crash(s)
			fs := journalFrames(t, path)
			if len(fs) != 6 || fs[0].lsn != 1 || fs[5].lsn != 6 || fs[5].seg != fs[0].seg {
				t.Fatalf("frames %+v", fs)
			}
			editFile(t, fs[0].seg, func(b []byte) []byte { return tt.tear(t, b, fs) })
			s = reopenAt(t, path, h, tt.head)
			if got := s.JournalStats().Replayed; got != (tt.head-10)/10 {
				t.Fatalf("replayed %d frames", got)
			}
			// The store continues from there, through a new crash.
			if tt.head < 60 {
				commitT(t, s, Write{Doc: "d", Records: h.recs[tt.head:]})
			}
			crash(s)
			reopenAt(t, path, h, 60)
		})
	}
}

// TestJournalValidation: Commit validates against bbolt plus the frames
// not yet checkpointed, so that every error is reported at Commit time.
func TestJournalValidation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	opts := noCheckpoints
	if testNoJournal {
		opts.NoJournal = true
	}
	s := openPath(t, path, opts)
	h := makeHistory(t, 31, 10)
	h2 := makeHistory(t, 32, 4)
	commitT(t, s, Write{Doc: "d", Records: h.recs[:3]})
	rejects := func(t *testing.T, stage string) {
		t.Helper()
		for _, w := range []Write{
			{Doc: "d", Records: h.recs[:1]},
			{Doc: "d", Records: h.recs[4:5]},
			{Doc: "d", Snapshot: &Snapshot{Rev: 9, Text: "x"}},
			{Doc: "d", Snapshot: &Snapshot{Rev: 0, Text: "x"}},
			{Doc: "nope", Snapshot: &Snapshot{Rev: 1, Text: "x"}},
			{Doc: "nope", Records: h.recs[1:2]},
		} {
			if err := s.Commit(ctx, []Write{w}); !errors.Is(err, ErrConflict) {
				t.Fatalf("%s: %+v: got %v, want ErrConflict", stage, w, err)
			}
		}
		if m, err := s.Meta(ctx, "d"); err != nil || m.Head != 3 || !m.Created.Equal(h.recs[0].Time) || !m.Updated.Equal(h.recs[2].Time) {
			t.Fatalf("%s: meta %+v %v", stage, m, err)
		}
	}
	rejects(t, "pending")
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	rejects(t, "checkpointed")

	// Pending: more records, a snapshot, a delete, then a new log.
	commitT(t, s, Write{Doc: "d", Records: h.recs[3:6], Snapshot: &Snapshot{Rev: 5, Text: h.texts[5]}})
	commitT(t, s, Write{Doc: "d", Snapshot: &Snapshot{Rev: 6, Text: h.texts[6]}})
	if m, err := s.Meta(ctx, "d"); err != nil || m.Head != 6 || m.SnapRev != 6 {
		t.Fatalf("meta %+v %v", m, err)
	}
	commitT(t, s, Write{Doc: "d", Delete: true})
	if _, err := s.Meta(ctx, "d"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("meta of a deleted document: %v", err)
	}
	for _, w := range []Write{{Doc: "d", Records: h.recs[6:7]}, {Doc: "d", Snapshot: &Snapshot{Rev: 1, Text: "x"}}} {
		if err := s.Commit(ctx, []Write{w}); !errors.Is(err, ErrConflict) {
			t.Fatalf("write to a deleted document: %v", err)
		}
	}
	commitT(t, s, Write{Doc: "d", Records: h2.recs[:2]}, Write{Doc: "e", Records: h.recs[:1]})
	// All or nothing, also in the pending state: "e" must not advance.
	if err := s.Commit(ctx, []Write{{Doc: "e", Records: h.recs[1:2]}, {Doc: "d", Records: h2.recs[3:4]}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("batch with one bad write: %v", err)
	}
	verify := func(t *testing.T, s *Bolt) {
		t.Helper()
		m, err := s.Meta(ctx, "d")
		if err != nil || m.Head != 2 || m.SnapRev != 0 || !m.Created.Equal(h2.recs[0].Time) {
			t.Fatalf("recreated meta %+v %v", m, err)
		}
		if txt, err := s.TextAt(ctx, "d", 2); err != nil || txt != h2.texts[2] {
			t.Fatalf("recreated text %q %v", txt, err)
		}
		if m, err := s.Meta(ctx, "e"); err != nil || m.Head != 1 {
			t.Fatalf("e: %+v %v", m, err)
		}
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	verify(t, s)
	commitT(t, s, Write{Doc: "d", Records: h2.recs[2:3]}, Write{Doc: "d2", Records: h.recs[:1]})
	commitT(t, s, Write{Doc: "d", Delete: true})
	commitT(t, s, Write{Doc: "d", Records: h2.recs[:2]})
	if testNoJournal {
		return
	}
	if st := s.JournalStats(); st.CheckpointErrors != 0 || st.PendingFrames != 3 {
		t.Fatalf("stats %+v", st)
	}
	// The same state after a crash, by replay of the delete and the new log.
	crash(s)
	s = openPath(t, path, opts)
	if got := s.JournalStats().Replayed; got != 3 {
		t.Fatalf("replayed %d", got)
	}
	verify(t, s)
}

// TestJournalCloseAndReadOnly: Close leaves one complete bbolt file; a
// crashed store's journal makes a read-only open refuse until a
// read-write open has replayed it.
func TestJournalCloseAndReadOnly(t *testing.T) {
	ctx := context.Background()
	h := makeHistory(t, 41, 30)
	t.Run("close", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.db")
		s, err := OpenBolt(path, noCheckpoints)
		if err != nil {
			t.Fatal(err)
		}
		commitHistory(t, s, "d", h, 4, 7)
		if st := s.JournalStats(); st.PendingFrames == 0 || st.Checkpoints != 0 {
			t.Fatalf("stats before close %+v", st)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(journalDir(path)); err != nil {
			t.Fatal(err)
		}
		r, err := OpenBolt(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if txt, err := r.TextAt(ctx, "d", 30); err != nil || txt != h.texts[30] {
			t.Fatalf("text %v", err)
		}
		if err := r.Check(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("read-only after a crash", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.db")
		s, err := OpenBolt(path, noCheckpoints)
		if err != nil {
			t.Fatal(err)
		}
		commitHistory(t, s, "d", h, 4, 7)
		crash(s)
		if r, err := OpenBolt(path, Options{ReadOnly: true}); !errors.Is(err, ErrJournalPending) {
			if err == nil {
				r.Close()
			}
			t.Fatalf("read-only open of a crashed store: %v", err)
		}
		s, err = OpenBolt(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		reopenAt(t, path, h, 30).Close()
		r, err := OpenBolt(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	})
}

// TestJournalSegments: small segments fill, rotate and are recycled after
// checkpoints; a commit larger than a segment gets one of its own; a
// crash replays across segments.
func TestJournalSegments(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	opts := Options{JournalSegmentSize: 8 << 10, CheckpointBytes: 16 << 10, CheckpointInterval: time.Hour}
	s, err := OpenBolt(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	h := makeHistory(t, 51, 600)
	maxSegs := 0
	for i := range 500 {
		// A snapshot in every commit: the frames total far more than the
		// segments could hold without reuse.
		commitT(t, s, Write{Doc: "d", Records: h.recs[i : i+1], Snapshot: &Snapshot{Rev: uint64(i + 1), Text: h.texts[i+1]}})
		maxSegs = max(maxSegs, s.JournalStats().Segments)
	}
	st := s.JournalStats()
	if st.Checkpoints == 0 || st.Frames != 500 || st.LSN != 500 || st.Bytes < 4*14*8<<10 {
		t.Fatalf("stats %+v", st)
	}
	// 4 x CheckpointBytes of back pressure in 8 KiB segments, plus the
	// active one and a spare.
	t.Logf("%d segments at most for %d bytes of frames, %d checkpoints", maxSegs, st.Bytes, st.Checkpoints)
	if maxSegs > 14 {
		t.Fatalf("%d segments: not recycled", maxSegs)
	}
	big := strings.Repeat("x", 20<<10)
	commitT(t, s, Write{Doc: "big", Records: []Record{{Rev: 1, Op: fmt.Appendf(nil, `[%q]`, big), Time: h.recs[0].Time}}, Snapshot: &Snapshot{Rev: 1, Text: big}})
	for i := 500; i < 600; i++ {
		commitT(t, s, Write{Doc: "d", Records: h.recs[i : i+1]})
	}
	crash(s)
	s = reopenAt(t, path, h, 600)
	if txt, err := s.TextAt(ctx, "big", 1); err != nil || txt != big {
		t.Fatalf("big: %v", err)
	}
}

// TestJournalPoison: a failed journal write fails that Commit and every
// later one; what was acknowledged before stays.
func TestJournalPoison(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s, err := OpenBolt(path, noCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	h := makeHistory(t, 61, 5)
	waitSpare(t, s) // the next commits stay in the first commit's segment
	commitT(t, s, Write{Doc: "d", Records: h.recs[:2]})
	s.commitMu.Lock()
	s.journal.active.f.Close() // the next write fails
	s.commitMu.Unlock()
	err1 := s.Commit(context.Background(), []Write{{Doc: "d", Records: h.recs[2:3]}})
	err2 := s.Commit(context.Background(), []Write{{Doc: "e", Records: h.recs[:1]}})
	if err1 == nil || err2 == nil || !errors.Is(err2, os.ErrClosed) || !s.JournalStats().Poisoned {
		t.Fatalf("after a failed write: %v, then %v", err1, err2)
	}
	if m, err := s.Meta(context.Background(), "d"); err != nil || m.Head != 2 {
		t.Fatalf("meta %+v %v", m, err)
	}
	s.Close() // checkpoints the acknowledged frame; the closed file's error is expected
	reopenAt(t, path, h, 2)
}

// TestJournalReadBarrier: right after a Commit returns, every read sees
// it, while other commits and background checkpoints run.
func TestJournalReadBarrier(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{CheckpointInterval: 4 * time.Millisecond, CheckpointBytes: 4 << 10})
	const docs, revs = 4, 120
	hs := make([]*history, docs)
	acked := make([]atomic.Uint64, docs)
	var wg sync.WaitGroup
	errs := make(chan error, docs+1)
	for d := range docs {
		hs[d] = makeHistory(t, uint64(70+d), revs)
		wg.Go(func() {
			id := fmt.Sprintf("doc-%d", d)
			h := hs[d]
			for rev := 1; rev <= revs; rev++ {
				if err := s.Commit(ctx, []Write{{Doc: id, Records: h.recs[rev-1 : rev]}}); err != nil {
					errs <- err
					return
				}
				acked[d].Store(uint64(rev))
				var err error
				switch rev % 4 {
				case 0:
					var hist []Revision
					if hist, err = s.History(ctx, id, 0, 1); err == nil && (len(hist) != 1 || hist[0].Rev != uint64(rev)) {
						err = fmt.Errorf("%s: history %+v after commit %d", id, hist, rev)
					}
				case 1:
					var txt string
					if txt, err = s.TextAt(ctx, id, uint64(rev)); err == nil && txt != h.texts[rev] {
						err = fmt.Errorf("%s: text at %d", id, rev)
					}
				case 2:
					var recs []Record
					if recs, err = s.Records(ctx, id, uint64(rev-1), 5); err == nil && (len(recs) != 1 || recs[0].Rev != uint64(rev)) {
						err = fmt.Errorf("%s: records after %d: %d", id, rev-1, len(recs))
					}
				case 3:
					var st State
					if st, err = s.Load(ctx, id, 0); err == nil && st.Meta.Head != uint64(rev) {
						err = fmt.Errorf("%s: load head %d after commit %d", id, st.Meta.Head, rev)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; ; i++ {
			done := true
			want := make([]uint64, docs)
			for d := range docs {
				want[d] = acked[d].Load()
				done = done && want[d] == revs
			}
			var heads map[string]uint64
			if i%5 == 4 {
				var buf bytes.Buffer
				if _, err := s.Backup(ctx, &buf); err != nil {
					errs <- err
					return
				}
				bpath := filepath.Join(t.TempDir(), "b.db")
				if err := os.WriteFile(bpath, buf.Bytes(), 0o600); err != nil {
					errs <- err
					return
				}
				b, err := OpenBolt(bpath, Options{ReadOnly: true})
				if err != nil {
					errs <- err
					return
				}
				heads = listHeads(ctx, b)
				b.Close()
			} else {
				heads = listHeads(ctx, s)
			}
			for d := range docs {
				if heads[fmt.Sprintf("doc-%d", d)] < want[d] {
					errs <- fmt.Errorf("list/backup: doc-%d head %d, acknowledged %d", d, heads[fmt.Sprintf("doc-%d", d)], want[d])
					return
				}
			}
			if done {
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := s.JournalStats(); st.Checkpoints < 2 {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func listHeads(ctx context.Context, s Store) map[string]uint64 {
	list, err := s.List(ctx)
	if err != nil {
		return nil
	}
	out := map[string]uint64{}
	for _, d := range list {
		out[d.ID] = d.Head
	}
	return out
}

// crashChildEnv makes the test binary run crashChild: its value is the
// store's path.
const crashChildEnv = "COLLABD_STORAGE_CRASH_CHILD"

var journalCrashDocs = []string{"k0", "k1", "k2", "k3"}

// crashChild commits batches through the journal, with small checkpoint
// thresholds and segments so that checkpoints, rotations and recycling
// happen all the time, and prints "doc rev" for every record of an
// acknowledged Commit (one write per Commit). Record rev of doc inserts
// "doc:rev;" at the start of the text.
func crashChild(path string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	s, err := OpenBolt(path, Options{Timeout: 5 * time.Second, CheckpointBytes: 16 << 10,
		CheckpointInterval: 5 * time.Millisecond, JournalSegmentSize: 32 << 10})
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	heads := map[string]uint64{}
	texts := map[string]string{}
	for _, d := range journalCrashDocs {
		m, err := s.Meta(ctx, d)
		if err != nil && !errors.Is(err, ErrNotFound) {
			fail(err)
		}
		heads[d] = m.Head
		if texts[d], err = s.TextAt(ctx, d, m.Head); err != nil {
			fail(err)
		}
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var ws []Write
		var line strings.Builder
		for _, i := range r.Perm(len(journalCrashDocs))[:1+r.IntN(len(journalCrashDocs))] {
			d := journalCrashDocs[i]
			w := Write{Doc: d}
			for range 1 + r.IntN(3) {
				heads[d]++
				ins := fmt.Sprintf("%s:%d;", d, heads[d])
				texts[d] = ins + texts[d]
				w.Records = append(w.Records, Record{Rev: heads[d], Op: fmt.Appendf(nil, "[%q]", ins), Client: "c", Seq: heads[d], Time: time.Now()})
				fmt.Fprintf(&line, "%s %d\n", d, heads[d])
			}
			switch r.IntN(5) {
			case 0:
				w.Snapshot = &Snapshot{Rev: heads[d], Text: texts[d]}
			case 1, 2: // the head slot, replaced again and again
				w.HeadSnapshot = &Snapshot{Rev: heads[d], Text: texts[d]}
			}
			ws = append(ws, w)
		}
		if err := s.Commit(ctx, ws); err != nil {
			fail(err)
		}
		os.Stdout.WriteString(line.String())
		if r.IntN(10) == 0 { // a read: the barrier checkpoints
			d := journalCrashDocs[r.IntN(len(journalCrashDocs))]
			if txt, err := s.TextAt(ctx, d, heads[d]); err != nil || txt != texts[d] {
				fail(fmt.Errorf("%s text at %d: %v", d, heads[d], err))
			}
		}
	}
	os.Exit(0)
}

// TestJournalCrashSafety kills a child committing through the journal with
// SIGKILL at random moments (during appends, checkpoints, rotations) and
// checks after each that every acknowledged record is there, in order,
// exactly once, and that Check passes.
func TestJournalCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	acked := map[string]uint64{}
	var replayed uint64
	for round := range 8 {
		got := crashtest.KillAtRandom(t, crashtest.Kill{
			Env:    []string{crashChildEnv + "=" + path},
			Min:    10 * time.Millisecond,
			Spread: 250 * time.Millisecond,
			Rand:   r,
		})
		for _, l := range got {
			var doc string
			var rev uint64
			if _, err := fmt.Sscanf(l, "%s %d", &doc, &rev); err != nil {
				t.Fatalf("bad line %q", l)
			}
			acked[doc] = max(acked[doc], rev)
		}
		t.Logf("round %d: %d acknowledged records", round, len(got))
		replayed += verifyJournalCrash(t, path, acked)
	}
	if replayed == 0 {
		t.Fatal("no round left frames to replay: the kills never hit pending frames")
	}
}

// verifyJournalCrash reopens the store: every document holds records
// 1..head, record rev inserting "doc:rev;", head at least what was
// acknowledged, and Check passes.
func verifyJournalCrash(t *testing.T, path string, acked map[string]uint64) (replayed uint64) {
	t.Helper()
	ctx := context.Background()
	s, err := OpenBolt(path, Options{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	replayed = s.JournalStats().Replayed
	if err := s.Check(ctx); err != nil {
		t.Fatalf("check after SIGKILL: %v", err)
	}
	for _, d := range journalCrashDocs {
		m, err := s.Meta(ctx, d)
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		if m.Head < acked[d] {
			t.Fatalf("%s: head %d, acknowledged %d", d, m.Head, acked[d])
		}
		if m.Head == 0 {
			continue
		}
		recs, err := s.Records(ctx, d, 0, 1<<20)
		if err != nil || uint64(len(recs)) != m.Head {
			t.Fatalf("%s: %d records, head %d (%v)", d, len(recs), m.Head, err)
		}
		for i, rec := range recs {
			if want := fmt.Sprintf(`["%s:%d;"]`, d, i+1); string(rec.Op) != want || rec.Rev != uint64(i+1) {
				t.Fatalf("%s rev %d: op %s, want %s", d, rec.Rev, rec.Op, want)
			}
		}
		txt, err := s.TextAt(ctx, d, m.Head)
		if err != nil || strings.Count(txt, ";") != int(m.Head) || !strings.HasPrefix(txt, fmt.Sprintf("%s:%d;", d, m.Head)) {
			t.Fatalf("%s: text at head %d: %v", d, m.Head, err)
		}
		// Load starts from the newest snapshot (often the head slot's).
		st, err := s.Load(ctx, d, 0)
		if err != nil || st.Snapshot.Rev != m.SnapRev || strings.Count(st.Snapshot.Text, ";") != int(st.Snapshot.Rev) {
			t.Fatalf("%s: loaded snapshot %d, meta %d: %v", d, st.Snapshot.Rev, m.SnapRev, err)
		}
	}
	return replayed
}

// FuzzJournalFrame: the frame parser and the payload decoder never panic,
// and what they accept survives a round trip through the encoders.
func FuzzJournalFrame(f *testing.F) {
	h := makeHistory(f, 81, 8)
	const epoch = 0x1234
	for _, ws := range [][]Write{
		{{Doc: "d", Records: h.recs[:3], Snapshot: &Snapshot{Rev: 2, Text: h.texts[2]}}},
		{{Doc: "a", Delete: true}, {Doc: "b", Records: h.recs[3:8]}},
		{{Doc: "x.y~z", Snapshot: &Snapshot{Rev: 1, Text: "日本語"}}},
		{{Doc: "h", Records: h.recs[:4], Snapshot: &Snapshot{Rev: 2, Text: h.texts[2]}, HeadSnapshot: &Snapshot{Rev: 4, Text: h.texts[4]}}},
	} {
		frame := appendFrame(nil, epoch, 9, appendPayload(nil, ws))
		f.Add(frame)
		f.Add(frame[frameHeaderSize:]) // a bare payload
		f.Add(frame[:len(frame)-1])
	}
	f.Add(make([]byte, frameHeaderSize+4))
	f.Fuzz(func(t *testing.T, b []byte) {
		payload := b // not a frame: fuzz the payload decoder alone
		if lsn, p, n, ok := parseFrame(b, epoch); ok {
			if n > len(b) || !bytes.Equal(appendFrame(nil, epoch, lsn, p), b[:n]) {
				t.Fatalf("frame does not re-encode")
			}
			payload = p
		}
		ws, err := decodePayload(payload)
		if err != nil {
			return
		}
		// Back to Writes, encoded again: the same writes decode.
		back := make([]Write, len(ws))
		for i, w := range ws {
			back[i] = Write{Doc: w.doc, Delete: w.del}
			for j, v := range w.recs {
				r, err := decodeRecord(w.first+uint64(j), v, true)
				if err != nil {
					t.Fatalf("accepted record does not decode: %v", err)
				}
				back[i].Records = append(back[i].Records, r)
			}
			if w.snap != nil {
				back[i].Snapshot = &Snapshot{Rev: w.snap.Rev, Text: string(w.snapText)}
			}
			if w.head != nil {
				back[i].HeadSnapshot = &Snapshot{Rev: w.head.Rev, Text: string(w.headText)}
			}
		}
		again, err := decodePayload(appendPayload(nil, back))
		if err != nil || len(again) != len(ws) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range ws {
			a, w := again[i], ws[i]
			if a.doc != w.doc || a.del != w.del || a.first != w.first && len(w.recs) > 0 || len(a.recs) != len(w.recs) ||
				(a.snap == nil) != (w.snap == nil) || a.snap != nil && (a.snap.Rev != w.snap.Rev || !bytes.Equal(a.snapText, w.snapText)) ||
				(a.head == nil) != (w.head == nil) || a.head != nil && (a.head.Rev != w.head.Rev || !bytes.Equal(a.headText, w.headText)) {
				t.Fatalf("write %d changed: %+v -> %+v", i, w, a)
			}
			for j := range w.recs {
				ra, _ := decodeRecord(1, a.recs[j], true)
				rw, _ := decodeRecord(1, w.recs[j], true)
				if !bytes.Equal(ra.Op, rw.Op) || ra.Client != rw.Client || ra.User != rw.User || ra.Seq != rw.Seq || !ra.Time.Equal(rw.Time) {
					t.Fatalf("record %d/%d changed", i, j)
				}
			}
		}
	})
}

// TestJournalCheckpointTriggers: the background checkpoint starts when the
// oldest pending frame reaches CheckpointInterval, or at once when the
// pending bytes reach CheckpointBytes (fake time: testing/synctest).
func TestJournalCheckpointTriggers(t *testing.T) {
	h := makeHistory(t, 91, 40)
	t.Run("age", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, err := OpenBolt(filepath.Join(t.TempDir(), "a.db"), Options{CheckpointInterval: time.Second, JournalSegmentSize: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			commitT(t, s, Write{Doc: "d", Records: h.recs[:1]})
			time.Sleep(700 * time.Millisecond)
			synctest.Wait()
			if st := s.JournalStats(); st.Checkpoints != 0 || st.PendingFrames != 1 {
				t.Fatalf("after 0.7 s: %+v", st)
			}
			time.Sleep(600 * time.Millisecond) // the loop looks every interval/4
			synctest.Wait()
			if st := s.JournalStats(); st.Checkpoints != 1 || st.PendingFrames != 0 || st.CheckpointLSN != 1 {
				t.Fatalf("after 1.3 s: %+v", st)
			}
		})
	})
	t.Run("bytes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, err := OpenBolt(filepath.Join(t.TempDir(), "b.db"), Options{CheckpointInterval: time.Hour, CheckpointBytes: 2 << 10, JournalSegmentSize: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := 0; s.JournalStats().PendingBytes < 2<<10; i++ {
				commitT(t, s, Write{Doc: "d", Records: h.recs[i : i+1]})
			}
			synctest.Wait()
			if st := s.JournalStats(); st.Checkpoints != 1 || st.PendingFrames != 0 {
				t.Fatalf("past CheckpointBytes: %+v", st)
			}
		})
	})
}

// TestJournalCommitCopies: the caller may reuse its slices as soon as
// Commit returns (the committer does); what was committed is unchanged.
func TestJournalCommitCopies(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, noCheckpoints)
	h := makeHistory(t, 95, 6)
	recs := slices.Clone(h.recs)
	for i := range recs {
		recs[i].Op = bytes.Clone(recs[i].Op)
	}
	text := []byte(h.texts[3])
	ws := []Write{{Doc: "d", Records: recs[:3], Snapshot: &Snapshot{Rev: 3, Text: string(text)}}}
	commitT(t, s, ws...)
	for i := range recs[:3] {
		clear(recs[i].Op)
		recs[i].Client, recs[i].Rev = "changed", 99
	}
	ws[0].Doc = "other"
	ws[0].Snapshot.Rev = 1
	got, err := s.Records(ctx, "d", 0, 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("%d records, %v", len(got), err)
	}
	for i, r := range got {
		if !bytes.Equal(r.Op, h.recs[i].Op) || r.Client != h.recs[i].Client || r.Rev != uint64(i+1) {
			t.Fatalf("record %d changed: %+v", i, r)
		}
	}
	if st, err := s.Load(ctx, "d", 0); err != nil || st.Snapshot.Rev != 3 || st.Snapshot.Text != h.texts[3] {
		t.Fatalf("snapshot %+v %v", st.Snapshot, err)
	}
}

// sameRecords fails unless got are want's records, in order.
func sameRecords(tb testing.TB, what string, got, want []Record) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Rev != w.Rev || string(g.Op) != string(w.Op) || g.Client != w.Client || g.Seq != w.Seq ||
			g.User != w.User || !g.Time.Equal(w.Time) || g.Ins != w.Ins || g.Del != w.Del {
			tb.Fatalf("%s: record %d is %+v, want %+v", what, i, g, w)
		}
	}
}

// TestJournalRecordsFromPending: Records of a document whose newest
// records are still in the journal answers from bbolt and the pending
// frames together, without a checkpoint; a pending delete makes it
// checkpoint first.
func TestJournalRecordsFromPending(t *testing.T) {
	if testNoJournal {
		t.Skip("journal only")
	}
	ctx := context.Background()
	s := openTest(t, Options{CheckpointInterval: time.Hour, CheckpointBytes: 1 << 30})
	ha, hb := makeHistory(t, 91, 120), makeHistory(t, 92, 60)
	for rev := 1; rev <= 50; rev++ {
		commitT(t, s, Write{Doc: "a", Records: ha.recs[rev-1 : rev]})
	}
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	// Pending: frames of one document, of two, one with a snapshot only.
	for rev := 51; rev <= 120; rev += 2 {
		w := []Write{{Doc: "a", Records: ha.recs[rev-1 : rev+1]}}
		if b := (rev - 51) / 2; b < 30 {
			w = append(w, Write{Doc: "b", Records: hb.recs[2*b : 2*b+2]})
		}
		commitT(t, s, w...)
		if rev == 81 {
			commitT(t, s, Write{Doc: "a", Snapshot: &Snapshot{Rev: 82, Text: ha.texts[82]}})
		}
	}
	before := s.JournalStats()
	if before.PendingFrames == 0 {
		t.Fatal("nothing pending")
	}
	for _, after := range []uint64{0, 1, 10, 49, 50, 51, 52, 81, 82, 100, 119, 120} {
		for _, limit := range []int{1, 2, 7, 1000} {
			got, err := s.Records(ctx, "a", after, limit)
			if err != nil {
				t.Fatalf("after %d limit %d: %v", after, limit, err)
			}
			want := ha.recs[after:min(int(after)+limit, 120)]
			sameRecords(t, fmt.Sprintf("a after %d limit %d", after, limit), got, want)
		}
	}
	got, err := s.Records(ctx, "b", 3, 100)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, "b after 3", got, hb.recs[3:60])
	if _, err := s.Records(ctx, "a", 121, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the head: %v", err)
	}
	if _, err := s.Records(ctx, "nope", 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing document: %v", err)
	}
	if after := s.JournalStats(); after.Checkpoints != before.Checkpoints || after.PendingFrames != before.PendingFrames {
		t.Fatalf("reads checkpointed: %+v -> %+v", before, after)
	}
	// A pending delete (and a new life) goes through the barrier.
	commitT(t, s, Write{Doc: "b", Delete: true})
	commitT(t, s, Write{Doc: "b", Records: ha.recs[0:3]})
	got, err = s.Records(ctx, "b", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, "b recreated", got, ha.recs[0:3])
	if st := s.JournalStats(); st.Checkpoints == before.Checkpoints {
		t.Fatal("a read after a pending delete did not checkpoint")
	}
}

// TestJournalRecordsRaceCheckpoints: reads served from pending frames
// while commits and checkpoints move them into bbolt see every record
// once, in order.
func TestJournalRecordsRaceCheckpoints(t *testing.T) {
	if testNoJournal {
		t.Skip("journal only")
	}
	ctx := context.Background()
	s := openTest(t, Options{CheckpointInterval: time.Hour, CheckpointBytes: 1 << 30})
	const revs = 600
	h := makeHistory(t, 93, revs)
	var acked atomic.Uint64
	done := make(chan struct{})
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for rev := 1; rev <= revs; rev++ {
			if err := s.Commit(ctx, []Write{{Doc: "d", Records: h.recs[rev-1 : rev]}}); err != nil {
				errs <- err
				return
			}
			acked.Store(uint64(rev))
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := s.Checkpoint(ctx); err != nil {
				errs <- err
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	})
	wg.Go(func() {
		r := rand.New(rand.NewPCG(5, 6))
		reads := 0
		for {
			select {
			case <-done:
				if reads == 0 {
					errs <- errors.New("no read ran")
				}
				return
			default:
			}
			head := acked.Load()
			if head == 0 {
				continue
			}
			after := r.Uint64N(head)
			limit := 1 + r.IntN(80)
			got, err := s.Records(ctx, "d", after, limit)
			if err != nil {
				errs <- err
				return
			}
			// At least what was acknowledged before the read.
			want := h.recs[after:min(after+uint64(limit), head)]
			if len(got) < len(want) {
				errs <- fmt.Errorf("after %d limit %d: %d records, want at least %d", after, limit, len(got), len(want))
				return
			}
			for i := range got {
				if got[i].Rev != after+1+uint64(i) || string(got[i].Op) != string(h.recs[after+uint64(i)].Op) {
					errs <- fmt.Errorf("after %d: record %d is rev %d", after, i, got[i].Rev)
					return
				}
			}
			reads++
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestJournalLeavesSparseSegment: the segment the first commit makes by
// truncation is left once a written-through spare is ready, and its file
// is deleted once checkpointed; commits and a crash in between lose
// nothing.
func TestJournalLeavesSparseSegment(t *testing.T) {
	if testNoJournal {
		t.Skip("journal only")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s := openPath(t, path, Options{JournalSegmentSize: 64 << 10, CheckpointInterval: time.Hour, CheckpointBytes: 1 << 30})
	h := makeHistory(t, 52, 300)
	activeSparse := func() bool {
		s.commitMu.Lock()
		defer s.commitMu.Unlock()
		return s.journal.active != nil && s.journal.active.sparse
	}
	// Take the spare the open prepares, so that the next commit has to
	// make a sparse segment.
	waitSpare(t, s)
	s.journal.mu.Lock()
	taken := s.journal.free
	s.journal.free = nil
	s.journal.mu.Unlock()
	commitT(t, s, Write{Doc: "d", Records: h.recs[0:1]})
	if !activeSparse() {
		t.Fatal("the first segment is not the sparse one made by the commit")
	}
	sparseName := segName(s.journal.dir, s.journal.active.num)
	s.journal.mu.Lock()
	s.journal.free = append(s.journal.free, taken...)
	s.journal.mu.Unlock()
	commitT(t, s, Write{Doc: "d", Records: h.recs[1:2]})
	if activeSparse() {
		t.Fatal("a written-through spare was ready, yet the commit stayed in the sparse segment")
	}
	for rev := 3; rev <= 200; rev++ {
		commitT(t, s, Write{Doc: "d", Records: h.recs[rev-1 : rev]})
	}
	if _, err := os.Stat(sparseName); err != nil {
		t.Fatalf("the sparse segment went before its frames were checkpointed: %v", err)
	}
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sparseName); !os.IsNotExist(err) {
		t.Fatalf("the checkpointed sparse segment is still there: %v", err)
	}
	for rev := 201; rev <= 300; rev++ {
		commitT(t, s, Write{Doc: "d", Records: h.recs[rev-1 : rev]})
	}
	crash(s)
	reopenAt(t, path, h, 300)
}
