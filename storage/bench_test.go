package storage

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/ot"
)

// BenchmarkTextAt100k measures the text at a random revision of a document
// with 100,000 revisions (typing-like ops: short inserts and deletes at
// random places; snapshots every 100 revisions, the sequencer's default).
func BenchmarkTextAt100k(b *testing.B) {
	const revs, every = 100_000, 100
	s, err := OpenBolt(filepath.Join(b.TempDir(), "bench.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	text := ot.NewText("")
	batch := make([]Record, 0, every) // one commit per snapshot, as the sequencer writes them
	var snap *Snapshot
	t0 := time.Now()
	for rev := uint64(1); rev <= revs; rev++ {
		n := text.Len()
		bl := ot.NewBuilder()
		if n > 10 && r.IntN(4) == 0 {
			bl.Retain(r.IntN(n - 3))
			bl.Delete(1 + r.IntN(3))
		} else {
			bl.Retain(r.IntN(n + 1))
			bl.Insert("typed ")
		}
		op := bl.Build()
		if text, err = op.Apply(text); err != nil {
			b.Fatal(err)
		}
		ins, del := op.Stats()
		batch = append(batch, Record{Rev: rev, Op: op.AppendJSON(nil), Client: "c", Seq: rev, Time: t0, Ins: ins, Del: del})
		if rev%every == 0 {
			snap = &Snapshot{Rev: rev, Text: text.String()}
		}
		if len(batch) == cap(batch) {
			if err := s.Commit(ctx, []Write{{Doc: "big", Records: batch, Snapshot: snap}}); err != nil {
				b.Fatal(err)
			}
			batch, snap = batch[:0], nil
		}
	}
	final := text.String()
	b.ResetTimer()
	for b.Loop() {
		rev := 1 + r.Uint64N(revs)
		got, err := s.TextAt(ctx, "big", rev)
		if err != nil {
			b.Fatal(err)
		}
		if rev == revs && got != final {
			b.Fatal("wrong text at the head")
		}
	}
	b.ReportMetric(float64(text.Len()), "head-codepoints")
}
