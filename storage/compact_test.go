package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
)

// filesHolding returns the files under dir whose bytes contain marker.
func filesHolding(tb testing.TB, dir string, marker []byte) []string {
	tb.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, marker) {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return found
}

// insertRecords returns n records that each insert text at the end of a
// document that starts at revision first with length code points.
func insertRecords(first uint64, length, n int, text string) ([]Record, int) {
	recs := make([]Record, n)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range recs {
		b := ot.NewBuilder()
		b.Retain(length)
		b.Insert(text)
		recs[i] = Record{Rev: first + uint64(i), Op: b.Build().AppendJSON(nil), Client: "c", Seq: first + uint64(i),
			User: "u", Time: t0.Add(time.Duration(i) * time.Millisecond), Ins: len([]rune(text))}
		length += len([]rune(text))
	}
	return recs, length
}

// TestPurgeAndCompactLeaveNoTrace deletes a document whose text went
// through the journal, checkpoints and snapshots, compacts, and scans every
// byte of the data directory for its marker.
func TestPurgeAndCompactLeaveNoTrace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "collabd.db")
	marker := "MARKER-7f3a9c-secret"
	headMarker := "HEAD-SLOT-51c0e2"
	s, err := OpenBolt(path, Options{JournalSegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	// Enough records for many pages, in batches: some checkpointed into
	// bbolt, some left in the journal at the delete.
	var length, keepLen int
	var rev uint64
	for batch := 0; batch < 40; batch++ {
		var recs, keep []Record
		recs, length = insertRecords(rev+1, length, 50, fmt.Sprintf(" %s-%d ", marker, batch))
		keep, keepLen = insertRecords(rev+1, keepLen, 50, " kept text ")
		w := Write{Doc: "secret", Records: recs}
		if batch%10 == 9 {
			w.Snapshot = &Snapshot{Rev: rev + 50, Text: strings.Repeat(marker, 3)}
		} else if batch%3 == 0 {
			// The head slot: each replaces the last; the one of batch 18
			// is checkpointed into bbolt, the one of batch 39 stays in
			// the journal.
			w.HeadSnapshot = &Snapshot{Rev: rev + 50, Text: fmt.Sprintf("%s %d", headMarker, batch)}
		}
		commitT(t, s, w, Write{Doc: "other", Records: keep})
		rev += 50
		if batch == 20 {
			if err := s.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.PutVersion(ctx, "secret", Version{Name: "named " + marker, Rev: 1000, User: "u"}); err != nil {
		t.Fatal(err)
	}
	commitT(t, s, Write{Doc: "secret", Delete: true})
	if _, err := s.Meta(ctx, "secret"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("meta after delete: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The test can fail: the markers are still on disk after the delete.
	for _, m := range []string{marker, headMarker} {
		if found := filesHolding(t, dir, []byte(m)); len(found) == 0 {
			t.Fatalf("%s not on disk before the compaction: the scan proves nothing", m)
		} else {
			t.Logf("before compaction %s is in %v", m, found)
		}
	}

	res, err := Compact(ctx, path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compaction: file %d -> %d bytes, journal %d -> %d", res.FileBefore, res.FileAfter, res.JournalBefore, res.JournalAfter)
	if res.After() >= res.Before() || res.FileAfter >= res.FileBefore || res.JournalAfter != 0 {
		t.Fatalf("compaction did not shrink: %+v", res)
	}
	for _, m := range []string{marker, headMarker} {
		if found := filesHolding(t, dir, []byte(m)); len(found) > 0 {
			t.Fatalf("%s still in %v after purge and compaction", m, found)
		}
	}
	if got, _ := fileSize(path); got != res.FileAfter {
		t.Fatalf("file is %d bytes, reported %d", got, res.FileAfter)
	}

	s2 := openPath(t, path, Options{})
	if err := s2.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if n, last := s2.Compactions(); n != 1 || time.Since(last) > time.Minute {
		t.Fatalf("compactions %d, last %v", n, last)
	}
	if got := s2.StoredBytes(); got < res.FileAfter {
		t.Fatalf("stored bytes %d, file alone %d", got, res.FileAfter)
	}
	text, err := s2.TextAt(ctx, "other", rev)
	if err != nil || len([]rune(text)) != keepLen || !strings.HasPrefix(text, " kept text ") {
		t.Fatalf("kept document after compaction: %d code points, %v", len([]rune(text)), err)
	}
	if _, err := s2.Meta(ctx, "secret"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("purged document after compaction: %v", err)
	}
	// The compacted file takes commits as before.
	recs, _ := insertRecords(rev+1, keepLen, 1, "more")
	commitT(t, s2, Write{Doc: "other", Records: recs})
}

// TestCompactLockedAndLeftovers: a compaction refuses a file another
// process holds, removes a crashed compaction's temporary file, and a
// store that waited for the lock opens the new file, not the old one.
func TestCompactLockedAndLeftovers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "collabd.db")
	s, err := OpenBolt(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := insertRecords(1, 0, 10, "abc")
	commitT(t, s, Write{Doc: "d", Records: recs})
	if _, err := Compact(ctx, path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("compact of a held file: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+compactSuffix, []byte("half a compaction"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Compact(ctx, path, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + compactSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}

	// A store opening while another holds the lock, which renames a new
	// file over the path (as Compact does) before it lets go: the waiter
	// must open the new file (head 10), not the old one (head 11). No
	// journal here: its frames would (rightly) bring the copy up to date.
	path = filepath.Join(t.TempDir(), "collabd.db")
	s, err = OpenBolt(path, Options{NoJournal: true})
	if err != nil {
		t.Fatal(err)
	}
	commitT(t, s, Write{Doc: "d", Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	if err := s.BackupFile(ctx, tmp); err != nil {
		t.Fatal(err)
	}
	type opened struct {
		s   *Bolt
		err error
	}
	waiter := make(chan opened, 1)
	go func() {
		s2, err := OpenBolt(path, Options{NoJournal: true, Timeout: 10 * time.Second})
		waiter <- opened{s2, err}
	}()
	time.Sleep(200 * time.Millisecond) // the waiter is blocked on the lock
	more, _ := insertRecords(11, 30, 1, "x")
	commitT(t, s, Write{Doc: "d", Records: more})
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w := <-waiter
	if w.err != nil {
		t.Fatal(w.err)
	}
	defer w.s.Close()
	if m, err := w.s.Meta(ctx, "d"); err != nil || m.Head != 10 {
		t.Fatalf("the waiting open read the old file: %+v %v", m, err)
	}
}

// TestCompactOnline compacts an open store while a writer commits and a
// reader reads: nothing acknowledged is lost, the marker of a deleted
// document is gone from every file of the directory (file and journal),
// and the store goes on, across a crash, on the new file.
func TestCompactOnline(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "collabd.db")
	marker := "ONLINE-MARKER-0c4e"
	s, err := OpenBolt(path, Options{JournalSegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var length int
	var rev uint64
	for batch := 0; batch < 30; batch++ {
		var recs []Record
		recs, length = insertRecords(rev+1, length, 50, fmt.Sprintf(" %s-%d ", marker, batch))
		commitT(t, s, Write{Doc: "secret", Records: recs, Snapshot: &Snapshot{Rev: rev + 50, Text: marker}})
		rev += 50
	}
	if err := s.PutVersion(ctx, "secret", Version{Name: marker, Rev: 10}); err != nil {
		t.Fatal(err)
	}
	commitT(t, s, Write{Doc: "secret", Delete: true})

	// A writer and a reader run through the compaction.
	stop := make(chan struct{})
	writerDone := make(chan uint64)
	go func() {
		var head uint64
		keepLen := 0
		for {
			select {
			case <-stop:
				writerDone <- head
				return
			default:
			}
			var recs []Record
			recs, keepLen = insertRecords(head+1, keepLen, 3, "k")
			if err := s.Commit(ctx, []Write{{Doc: "other", Records: recs}}); err != nil {
				t.Error(err)
				writerDone <- head
				return
			}
			head += 3
		}
	}()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.List(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	res, err := s.CompactOnline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	acked := <-writerDone
	<-readerDone
	t.Logf("online compaction: %+v; %d records committed meanwhile", res, acked)
	// No size check: the commits right after the swap grow the small
	// compacted file by bbolt's 16 MiB allocation step, as large as this
	// test's file was; TestPurgeAndCompactLeaveNoTrace checks the shrink.
	if acked == 0 {
		t.Fatal("nothing committed during the compaction")
	}
	if found := filesHolding(t, dir, []byte(marker)); len(found) > 0 {
		t.Fatalf("marker still in %v after an online compaction", found)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Meta(ctx, "other"); err != nil || m.Head != acked {
		t.Fatalf("other: %+v %v, acknowledged %d", m, err, acked)
	}
	// More commits after it, then a crash: the journal replays them on
	// the new file.
	recs, _ := insertRecords(acked+1, int(acked), 5, "k")
	commitT(t, s, Write{Doc: "other", Records: recs})
	crash(s)
	s2 := openPath(t, path, Options{})
	if m, err := s2.Meta(ctx, "other"); err != nil || m.Head != acked+5 {
		t.Fatalf("after a crash: %+v %v, want head %d", m, err, acked+5)
	}
	if n, _ := s2.Compactions(); n != 1 {
		t.Fatalf("compactions %d", n)
	}
	if err := s2.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
