package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/internal/crashtest"
)

// foldCrashEnv makes the test binary a child that commits, folds and
// compacts (foldCrashChild) instead of running tests.
const foldCrashEnv = "COLLABD_STORAGE_FOLD_CRASH_CHILD"

// foldCrashChild commits records to journalCrashDocs as crashChild does
// (printing "doc rev" for every acknowledged record) and, between
// commits, folds documents to their last 20 revisions; every 25 batches
// it compacts online and every 40 it closes the store, compacts the file
// offline and opens it again. A SIGKILL therefore lands in commits,
// checkpoints, folds and both kinds of compaction.
func foldCrashChild(path string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	open := func() *Bolt {
		s, err := OpenBolt(path, Options{Timeout: 5 * time.Second, CheckpointBytes: 16 << 10,
			CheckpointInterval: 5 * time.Millisecond, JournalSegmentSize: 32 << 10})
		if err != nil {
			fail(err)
		}
		return s
	}
	s := open()
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
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	for batch := 1; ; batch++ {
		d := journalCrashDocs[r.IntN(len(journalCrashDocs))]
		w := Write{Doc: d}
		var line strings.Builder
		for range 1 + r.IntN(5) {
			heads[d]++
			ins := fmt.Sprintf("%s:%d;", d, heads[d])
			texts[d] = ins + texts[d]
			w.Records = append(w.Records, Record{Rev: heads[d], Op: fmt.Appendf(nil, "[%q]", ins), Client: "c", Seq: heads[d], Time: time.Now()})
			fmt.Fprintf(&line, "%s %d\n", d, heads[d])
		}
		if err := s.Commit(ctx, []Write{w}); err != nil {
			fail(err)
		}
		os.Stdout.WriteString(line.String())
		if r.IntN(4) == 0 {
			if _, err := s.Fold(ctx, journalCrashDocs[r.IntN(len(journalCrashDocs))], Retention{KeepRevs: 20}, time.Now()); err != nil {
				fail(err)
			}
		}
		if batch%25 == 0 {
			if _, err := s.CompactOnline(ctx); err != nil {
				fail(err)
			}
		}
		if batch%40 == 0 {
			if err := s.Close(); err != nil {
				fail(err)
			}
			if _, err := Compact(ctx, path, 5*time.Second); err != nil {
				fail(err)
			}
			s = open()
		}
	}
}

// TestFoldAndCompactCrashSafety kills a child that commits, folds and
// compacts with SIGKILL at random moments and checks after each that the
// file opens and passes Check, that every acknowledged record's insert is
// in the text, and that the log after the fold horizon is intact.
func TestFoldAndCompactCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))
	acked := map[string]uint64{}
	var folded, compactions uint64
	for round := range 10 {
		got := crashtest.KillAtRandom(t, crashtest.Kill{
			Env:    []string{foldCrashEnv + "=" + path},
			Min:    20 * time.Millisecond,
			Spread: 400 * time.Millisecond,
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
		os.Remove(path + compactSuffix) // as the next Compact would
		f, c := verifyFoldCrash(t, path, acked)
		folded, compactions = max(folded, f), c
		t.Logf("round %d: %d acknowledged records; %d compactions so far", round, len(got), c)
	}
	if folded == 0 || compactions == 0 {
		t.Fatalf("the child never folded (%d) or never compacted (%d): the kills prove nothing", folded, compactions)
	}
}

// verifyFoldCrash reopens the store and checks every document; it
// returns the highest fold horizon and the file's compaction count.
func verifyFoldCrash(t *testing.T, path string, acked map[string]uint64) (folded, compactions uint64) {
	t.Helper()
	ctx := context.Background()
	s, err := OpenBolt(path, Options{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
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
		folded = max(folded, m.Folded)
		recs, err := s.Records(ctx, d, m.Folded, 1<<20)
		if err != nil || uint64(len(recs)) != m.Head-m.Folded {
			t.Fatalf("%s: %d records after the horizon %d, head %d (%v)", d, len(recs), m.Folded, m.Head, err)
		}
		for i, rec := range recs {
			rev := m.Folded + uint64(i) + 1
			if want := fmt.Sprintf(`["%s:%d;"]`, d, rev); string(rec.Op) != want || rec.Rev != rev {
				t.Fatalf("%s rev %d: op %s, want %s", d, rec.Rev, rec.Op, want)
			}
		}
		txt, err := s.TextAt(ctx, d, m.Head)
		if err != nil || strings.Count(txt, ";") != int(m.Head) || !strings.HasPrefix(txt, fmt.Sprintf("%s:%d;", d, m.Head)) {
			t.Fatalf("%s: text at head %d: %v", d, m.Head, err)
		}
		if m.Folded > 0 {
			if txt, err := s.TextAt(ctx, d, m.Folded); err != nil || strings.Count(txt, ";") != int(m.Folded) {
				t.Fatalf("%s: text at the horizon %d: %v", d, m.Folded, err)
			}
		}
	}
	compactions, _ = s.Compactions()
	return folded, compactions
}
