package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestPendingFramesStayOnDisk: frames waiting for their checkpoint are not
// kept in the heap (a checkpoint reads them back from the segments), and
// reading them back gives what was committed.
func TestPendingFramesStayOnDisk(t *testing.T) {
	if testNoJournal {
		t.Skip("journal only")
	}
	ctx := context.Background()
	s := openTest(t, noCheckpoints)
	waitSpare(t, s)
	const docs, frames = 8, 250
	op := []byte(fmt.Sprintf(`[%q]`, strings.Repeat("x", 4000))) // ~4 KB per frame, 1 MB in all
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range frames {
		doc := fmt.Sprintf("d%d", i%docs)
		rev := uint64(i/docs + 1)
		commitT(t, s, Write{Doc: doc, Records: []Record{{Rev: rev, Op: op, Client: "c", Seq: rev, Time: t0}}})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := s.JournalStats()
	if st.PendingFrames != frames || st.PendingBytes < frames*4000 {
		t.Fatalf("pending %d frames, %d bytes", st.PendingFrames, st.PendingBytes)
	}
	// The pending state is a few dozen bytes per frame; the payloads
	// (1 MB) would show.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > st.PendingBytes/4 {
		t.Fatalf("the heap grew by %d bytes for %d bytes of pending frames", grew, st.PendingBytes)
	}
	// Served from the segments before the checkpoint, from bbolt after.
	for _, phase := range []string{"pending", "checkpointed"} {
		recs, err := s.Records(ctx, "d3", 0, 1000)
		if err != nil {
			t.Fatal(phase, err)
		}
		if len(recs) != frames/docs || string(recs[0].Op) != string(op) || recs[len(recs)-1].Rev != uint64(frames/docs) {
			t.Fatalf("%s: %d records", phase, len(recs))
		}
		if err := s.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPendingFrameDamagedOnDisk: a pending frame that no longer reads back
// intact (the disk returned other bytes) fails the checkpoint and the
// reads that need it with ErrCorrupt, and applies nothing.
func TestPendingFrameDamagedOnDisk(t *testing.T) {
	if testNoJournal {
		t.Skip("journal only")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d.db")
	s := openPath(t, path, noCheckpoints)
	waitSpare(t, s)
	h := makeHistory(t, 96, 4)
	commitT(t, s, Write{Doc: "d", Records: h.recs[:2]})
	commitT(t, s, Write{Doc: "d", Records: h.recs[2:4]})
	frames := journalFrames(t, path)
	if len(frames) != 2 {
		t.Fatalf("frames %+v", frames)
	}
	f := frames[1]
	editFile(t, f.seg, func(b []byte) []byte {
		b[f.end-1] ^= 0xff
		return b
	})
	if _, err := s.Records(ctx, "d", 0, 10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Records over a damaged pending frame: %v", err)
	}
	if err := s.Checkpoint(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("checkpoint over a damaged frame: %v", err)
	}
	st := s.JournalStats()
	if st.CheckpointErrors != 1 || st.CheckpointLSN != 0 || st.PendingFrames != 2 {
		t.Fatalf("after the failed checkpoint: %+v", st)
	}
	// The frame is repaired (as if the read error was transient): the
	// retry applies both frames.
	editFile(t, f.seg, func(b []byte) []byte {
		b[f.end-1] ^= 0xff
		return b
	})
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Records(ctx, "d", 0, 10)
	if err != nil || len(recs) != 4 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
}
