package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
)

// buildDoc writes revs revisions to doc in batches of 100 with a snapshot
// every snapEvery revisions (100: collab's SnapshotEvery; the sequencer
// snapshots a small text more often, down to every 16 revisions, as it
// counts the replay cost), each op replacing one code point of a text of
// length code points (so the text keeps its length), stamped from start
// on, step apart. It returns the text at the head.
func buildDoc(tb testing.TB, s *Bolt, doc string, revs, length, snapEvery int, start time.Time, step time.Duration) string {
	return buildDocHead(tb, s, doc, revs, length, snapEvery, 0, start, step)
}

// buildDocHead is buildDoc with a head snapshot (the slot) every headEvery
// revisions between the regular ones (0: none), as the sequencer writes
// its replay-cost snapshots.
func buildDocHead(tb testing.TB, s *Bolt, doc string, revs, length, snapEvery, headEvery int, start time.Time, step time.Duration) string {
	tb.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(uint64(revs), uint64(length)))
	text := ot.NewText(strings.Repeat("a", length))
	first := Record{Rev: 1, Op: fmt.Appendf(nil, "[%q]", text.String()), Client: "c", Seq: 1, Time: start, Ins: length}
	batch := []Record{first}
	for rev := uint64(2); rev <= uint64(revs); rev++ {
		bl := ot.NewBuilder()
		bl.Retain(r.IntN(length))
		bl.Delete(1)
		bl.Insert(string(rune('a' + r.IntN(26))))
		op := bl.Build()
		var err error
		if text, err = op.Apply(text); err != nil {
			tb.Fatal(err)
		}
		batch = append(batch, Record{Rev: rev, Op: op.AppendJSON(nil), Client: "c", Seq: rev,
			Time: start.Add(time.Duration(rev) * step), Ins: 1, Del: 1})
		snap := rev%uint64(snapEvery) == 0
		head := !snap && headEvery > 0 && rev%uint64(headEvery) == 0
		if snap || head || rev%100 == 0 || rev == uint64(revs) {
			w := Write{Doc: doc, Records: batch}
			if snap {
				w.Snapshot = &Snapshot{Rev: rev, Text: text.String()}
			}
			if head {
				w.HeadSnapshot = &Snapshot{Rev: rev, Text: text.String()}
			}
			if err := s.Commit(ctx, []Write{w}); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return text.String()
}

// openForEdit is what the hub does to bring a document to life (a join or a
// GET of a document not in memory): Load the newest snapshot and the
// records after it (keep records: also that many before the head), then
// replay the records after the snapshot.
func openForEdit(tb testing.TB, s *Bolt, doc string, keep int) ot.Text {
	st, err := s.Load(context.Background(), doc, keep)
	if err != nil {
		tb.Fatal(err)
	}
	text := ot.NewText(st.Snapshot.Text)
	for _, r := range st.Records {
		if r.Rev <= st.Snapshot.Rev {
			continue
		}
		op, err := ot.ParseLimit(r.Op, stored)
		if err != nil {
			tb.Fatal(err)
		}
		if text, err = op.Apply(text); err != nil {
			tb.Fatal(err)
		}
	}
	return text
}

// buildDocTail appends n more one-code-point replacements to doc (at
// head) without a snapshot and returns the text at the new head.
func buildDocTail(tb testing.TB, s *Bolt, doc string, head uint64, n, length int) string {
	tb.Helper()
	ctx := context.Background()
	cur, err := s.TextAt(ctx, doc, head)
	if err != nil {
		tb.Fatal(err)
	}
	text := ot.NewText(cur)
	var recs []Record
	for i := range n {
		bl := ot.NewBuilder()
		bl.Retain(i % length)
		bl.Delete(1)
		bl.Insert("z")
		op := bl.Build()
		if text, err = op.Apply(text); err != nil {
			tb.Fatal(err)
		}
		rev := head + uint64(i) + 1
		recs = append(recs, Record{Rev: rev, Op: op.AppendJSON(nil), Client: "c", Seq: rev, Time: time.Now(), Ins: 1, Del: 1})
	}
	if err := s.Commit(ctx, []Write{{Doc: doc, Records: recs}}); err != nil {
		tb.Fatal(err)
	}
	return text.String()
}

// BenchmarkOpenLargeHistory compares opening a document with 1,000,000
// revisions (and a 4,096 code point text, snapshots every 100) with a
// fresh document of the same text (one revision) and one of 1,000
// revisions, and reads history pages at the head, half way and a million
// revisions deep. Building the file takes a few seconds:
//
//	go test -run '^$' -bench OpenLargeHistory -benchtime 2000x ./storage
func BenchmarkOpenLargeHistory(b *testing.B) {
	const revs, length = 1_000_000, 4096
	path := filepath.Join(b.TempDir(), "bench.db")
	s, err := OpenBolt(path, Options{NoSync: true, NoJournal: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now().Add(-time.Hour)
	bigText := buildDoc(b, s, "big", revs, length, 100, start, time.Microsecond)
	if err := s.Commit(context.Background(), []Write{{Doc: "fresh", Records: []Record{{Rev: 1,
		Op: fmt.Appendf(nil, "[%q]", bigText), Client: "c", Seq: 1, Time: start, Ins: length}}}}); err != nil {
		b.Fatal(err)
	}
	// The same text after 1,000 revisions: past the 128 records the hub
	// retains, like the big one.
	if got := buildDoc(b, s, "1k", 1000, length, 100, start, time.Microsecond); len(got) != length {
		b.Fatal("1k document")
	}
	// The big document's head is not on a snapshot: 50 ops to replay.
	more := buildDocTail(b, s, "big", revs, 50, length)
	for _, doc := range []string{"fresh", "1k", "big"} {
		b.Run("open/"+doc, func(b *testing.B) {
			for b.Loop() {
				if got := openForEdit(b, s, doc, 0); got.Len() != length || (doc == "big" && got.String() != more) {
					b.Fatal("wrong text")
				}
			}
		})
	}
	// Before the hub stopped loading its retained log (128 records) with
	// the document.
	b.Run("open/big-retain128", func(b *testing.B) {
		for b.Loop() {
			openForEdit(b, s, "big", 128)
		}
	})
	for _, depth := range []uint64{0, revs / 2, 200} { // 0: from the head
		b.Run(fmt.Sprintf("history/before=%d", depth), func(b *testing.B) {
			for b.Loop() {
				page, err := s.History(context.Background(), "big", depth, 50)
				if err != nil || len(page) != 50 {
					b.Fatalf("%d lines, %v", len(page), err)
				}
			}
		})
	}
	b.Run("textAt/deep", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.TextAt(context.Background(), "big", 123_456); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRetentionDiskUse writes 1,000,000 ops over 100 documents
// (10,000 each, stamped evenly over the last ten days, 200 code point
// texts, a snapshot every snap-every revisions: 100, SnapshotEvery, and
// 16, what the sequencer did for such small texts before the head slot;
// head-every=16: a regular one every 100 and the head slot's every 16, as
// the sequencer does now) and reports the data
// file after a compaction without a policy and with a 1-day /
// 1,000-revision policy (an op is folded once it is both older than a day
// and more than 1,000 revisions below its head):
//
//	go test -run '^$' -bench RetentionDiskUse -benchtime 1x ./storage
func BenchmarkRetentionDiskUse(b *testing.B) {
	for _, every := range []int{100, 16} {
		b.Run(fmt.Sprintf("snap-every=%d", every), func(b *testing.B) { retentionDiskUse(b, every, 0) })
	}
	b.Run("head-every=16", func(b *testing.B) { retentionDiskUse(b, 100, 16) })
}

func retentionDiskUse(b *testing.B, snapEvery, headEvery int) {
	const docs, perDoc, length = 100, 10_000, 200
	for b.Loop() {
		dir := b.TempDir()
		path := filepath.Join(dir, "collabd.db")
		s, err := OpenBolt(path, Options{NoSync: true, NoJournal: true})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		start := now.Add(-10 * 24 * time.Hour)
		step := 10 * 24 * time.Hour / perDoc
		for i := range docs {
			buildDocHead(b, s, fmt.Sprintf("doc-%03d", i), perDoc, length, snapEvery, headEvery, start, step)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		res, err := Compact(ctx, path, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.FileBefore)/(1<<20), "written-MiB")
		b.ReportMetric(float64(res.FileAfter)/(1<<20), "keep-all-MiB")
		s, err = OpenBolt(path, Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		folded, err := s.FoldAll(ctx, Retention{KeepRevs: 1000, KeepFor: 24 * time.Hour}, now)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "fold-s")
		b.ReportMetric(float64(folded), "folded-revs")
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		res, err = Compact(ctx, path, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.FileBefore)/(1<<20), "folded-uncompacted-MiB")
		b.ReportMetric(float64(res.FileAfter)/(1<<20), "policy-MiB")
	}
}
