package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
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
	fi, err := os.Stat(s.Path())
	if err != nil {
		b.Fatal(err)
	}
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
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
}

// BenchmarkCommitManyDocs commits batches that append 3 records to each of
// 1,000 documents (what the sequencer's group commit does under many busy
// documents), fsync off: the CPU cost of a large transaction.
func BenchmarkCommitManyDocs(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "bench.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const docs, per = 1000, 3
	r := rand.New(rand.NewPCG(3, 4))
	ids := make([]string, docs)
	for i := range ids {
		ids[i] = fmt.Sprintf("doc-%04d", i)
	}
	op := []byte(`[12,"x"]`)
	now := time.Now()
	rev := uint64(0)
	batch := func() []Write {
		ws := make([]Write, docs)
		for i, j := range r.Perm(docs) { // the order documents became dirty
			recs := make([]Record, per)
			for k := range recs {
				recs[k] = Record{Rev: rev + uint64(k) + 1, Op: op, Client: "client-1", Seq: rev + uint64(k) + 1, User: "user", Time: now, Ins: 1}
			}
			ws[i] = Write{Doc: ids[j], Records: recs}
		}
		rev += per
		return ws
	}
	for range 5 { // some history first
		if err := s.Commit(ctx, batch()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		ws := batch()
		b.StartTimer()
		if err := s.Commit(ctx, ws); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/(docs*per), "µs/record")
}

// BenchmarkCommit commits one record to each of 1 or 100 documents per
// Commit, fsync on, through the journal and straight into bbolt
// (NoJournal). ns/op is the wall time of a Commit; cpu-µs/commit is the
// CPU of the whole process (getrusage: background checkpoints included)
// per Commit. The journal's run ends with a checkpoint of everything,
// inside the measurement.
func BenchmarkCommit(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts Options
	}{{"journal", Options{}}, {"nojournal", Options{NoJournal: true}}} {
		for _, docs := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/docs=%d", mode.name, docs), func(b *testing.B) {
				s, err := OpenBolt(filepath.Join(b.TempDir(), "bench.db"), mode.opts)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				ctx := context.Background()
				ids := make([]string, docs)
				for i := range ids {
					ids[i] = fmt.Sprintf("doc-%04d", i)
				}
				op := []byte(`[12,"x"]`)
				now := time.Now()
				rev := uint64(0)
				ws := make([]Write, docs)
				recs := make([]Record, docs)
				commit := func() {
					rev++
					for i := range ws {
						recs[i] = Record{Rev: rev, Op: op, Client: "client-1", Seq: rev, User: "user", Time: now, Ins: 1}
						ws[i] = Write{Doc: ids[i], Records: recs[i : i+1]}
					}
					if err := s.Commit(ctx, ws); err != nil {
						b.Fatal(err)
					}
				}
				for range 20 {
					commit()
				}
				if err := s.Checkpoint(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				cpu0 := cpuTime()
				b.ResetTimer()
				for b.Loop() {
					commit()
				}
				if err := s.Checkpoint(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/commit")
				if st := s.JournalStats(); st.Enabled {
					b.ReportMetric(float64(st.CheckpointedFrames)/float64(max(st.Checkpoints, 1)), "frames/checkpoint")
				}
			})
		}
	}
}

// BenchmarkCommitAcrossSegments commits 4 KiB batches to one document,
// fsync on, long enough for the journal to fill several 16 MiB segments,
// each followed by a spare being prepared in the background, and reports
// the commit latency quantiles: the spare's writes and syncs share the
// disk with the commits' fdatasyncs.
func BenchmarkCommitAcrossSegments(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	op := fmt.Appendf(nil, `[%q]`, strings.Repeat("x", 4000))
	now := time.Now()
	lat := make([]time.Duration, 0, b.N)
	rev := uint64(0)
	b.ResetTimer()
	for b.Loop() {
		rev++
		t0 := time.Now()
		if err := s.Commit(ctx, []Write{{Doc: "d", Records: []Record{{Rev: rev, Op: op, Client: "c", Seq: rev, User: "u", Time: now, Ins: 4000}}}}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(f float64) float64 {
		return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(0.999), "p99.9-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(s.JournalStats().Segments), "segments")
}

// BenchmarkDatasync measures the disk under the journal: one 600-byte
// pwrite and one fdatasync (datasync), into a file whose blocks are
// already written (zero-filled, as journal segments are) or into a sparse
// one (the first segment of a fresh journal), back to back or with an idle
// gap before each. ns/op includes the gap; wall-p50-µs, wall-mean-µs and
// wall-p99-µs are the write and sync alone; cpu-µs/op is the process's CPU per write and sync (getrusage:
// on a VM, the wake-up after the sync is charged to it).
func BenchmarkDatasync(b *testing.B) {
	for _, mode := range []string{"written", "sparse"} {
		for _, gap := range []time.Duration{0, 500 * time.Microsecond, 3 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/gap=%v", mode, gap), func(b *testing.B) {
				f, err := os.Create(filepath.Join(b.TempDir(), "f"))
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				const rec = 600
				size := int64(b.N+1) * rec
				if mode == "written" {
					zeros := make([]byte, 1<<20)
					for off := int64(0); off < size; off += int64(len(zeros)) {
						if _, err := f.WriteAt(zeros, off); err != nil {
							b.Fatal(err)
						}
					}
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				buf := make([]byte, rec)
				lat := make([]time.Duration, 0, b.N)
				var cpu time.Duration
				b.ResetTimer()
				for i := range b.N {
					if gap > 0 {
						time.Sleep(gap)
					}
					c0, t0 := cpuTime(), time.Now()
					if _, err := f.WriteAt(buf, int64(i)*rec); err != nil {
						b.Fatal(err)
					}
					if err := datasync(f); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
					cpu += cpuTime() - c0
				}
				b.StopTimer()
				slices.Sort(lat)
				var sum time.Duration
				for _, l := range lat {
					sum += l
				}
				mean := sum / time.Duration(len(lat))
				p99 := lat[len(lat)*99/100]
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "wall-p50-µs")
				b.ReportMetric(float64(mean.Microseconds()), "wall-mean-µs")
				b.ReportMetric(float64(p99.Microseconds()), "wall-p99-µs")
				// The disk's own tail: no sequencer can hold a Submit's p99
				// below its commit's p99, whatever the batching.
				b.ReportMetric(float64(p99)/float64(mean), "p99/mean")
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	}
}
