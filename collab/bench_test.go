package collab

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/collabd/collabd/storage"
)

// commitLog records the duration of every commit through ObserveCommit.
type commitLog struct {
	mu    sync.Mutex
	times []time.Duration
}

func (l *commitLog) observe(_ int, took time.Duration) {
	l.mu.Lock()
	l.times = append(l.times, took)
	l.mu.Unlock()
}

func (l *commitLog) reset() {
	l.mu.Lock()
	l.times = l.times[:0]
	l.mu.Unlock()
}

// benchHub opens a hub over a fresh bbolt file (fsync on unless noSync).
func benchHub(b *testing.B, noSync bool) (*Hub, *commitLog) {
	b.Helper()
	store, err := storage.OpenBolt(filepath.Join(b.TempDir(), "bench.db"), storage.Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	cl := &commitLog{}
	return newHub(b, Config{Store: store, ObserveCommit: cl.observe}), cl
}

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime() (user, sys time.Duration) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// runSubmitters has perDoc goroutines per document submit ops (an insert at
// the start) until b.N ops are acknowledged, and reports throughput, commit
// figures and latency. Each goroutine plays a client that receives the
// document's broadcasts: its base revision is the newest revision
// acknowledged to anyone on that document when it sends (at least the one
// its own previous op got), so an op is transformed over the ops in flight,
// as with real clients.
//
// Every goroutine first submits one op outside the measurement (goroutine
// start, stack growth, document load), and the store's first spare journal
// segment is written, then all start together: the figures are those of
// the steady state.
//
// Metrics: ops/s over the wall time; cpu-µs/op from getrusage (user +
// system time of the whole process) over the run. The run ends with a
// checkpoint of the store's journal, so both include all the work bbolt
// does for the ops, not only the journal appends. commit-ms, the mean
// wall time of a store commit during the run; of-fsync-bound, ops/s
// divided by the bound that commits set (submitters / commit-ms: every op
// in flight rides the next commit); p50-ms and p99-ms over every Submit of
// the run, and p99/commit, p99 in mean commit times; commit-p99/mean, the
// disk's own tail (a slow fsync delays every op of its batch), and
// p99/commit-p99, what the sequencer adds to it. sys-µs/op is the system
// part of the CPU time (writes, fsyncs, futexes). gap-µs is the mean wall
// time between commits (until the last Submit returned), linger-µs the part of it the committer spent
// waiting for released Submits to come back, linger-expired the share of
// commits whose linger ran out before all of them did.
func runSubmitters(b *testing.B, h *Hub, cl *commitLog, docs []string, perDoc int) {
	ctx := context.Background()
	for _, d := range docs { // create and load every document first
		mustSubmit(b, h, sub(d, "setup", 1, 0, `["seed"]`))
	}
	var next atomic.Int64
	workers := len(docs) * perDoc
	latest := make([]atomic.Uint64, len(docs)) // newest acknowledged rev per doc
	lat := make([][]time.Duration, workers)
	var wg, warm sync.WaitGroup
	start := make(chan struct{})
	warm.Add(workers)
	for w := range workers {
		doc, seen := docs[w%len(docs)], &latest[w%len(docs)]
		lat[w] = make([]time.Duration, 0, b.N/workers+16)
		wg.Go(func() {
			client := fmt.Sprintf("w%d", w)
			base := uint64(1)
			submit := func(seq uint64) bool {
				base = max(base, seen.Load())
				t0 := time.Now()
				rev, err := h.Submit(ctx, Submission{Doc: doc, Client: client, Seq: seq, BaseRev: base, Op: []byte(`["x"]`)})
				if err != nil {
					b.Error(err)
					return false
				}
				lat[w] = append(lat[w], time.Since(t0))
				base = rev
				for old := seen.Load(); old < rev && !seen.CompareAndSwap(old, rev); old = seen.Load() {
				}
				return true
			}
			ok := submit(1)
			lat[w] = lat[w][:0]
			warm.Done()
			<-start
			for seq := uint64(2); ok && next.Add(1) <= int64(b.N); seq++ {
				ok = submit(seq)
			}
		})
	}
	warm.Wait()
	// A fresh store's one-time startup work, writing its first spare
	// journal segment (16 MiB of zeros), is done before the measurement
	// too: it is not a cost of the ops.
	if js, ok := h.store.(interface{ JournalStats() storage.JournalStats }); ok {
		for deadline := time.Now().Add(10 * time.Second); js.JournalStats().Enabled && js.JournalStats().Segments < 2 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	b.ReportAllocs()
	cl.reset()
	before := h.Stats()
	linger0, expired0 := h.c.lingerNanos.Load(), h.c.lingerExpired.Load()
	b.ResetTimer()
	user0, sys0 := cpuTime()
	t0 := time.Now()
	close(start)
	wg.Wait()
	submitted := time.Since(t0)
	// The journal defers bbolt's share of the work to checkpoints: the
	// last one runs inside the measurement, so that every figure (ops/s,
	// CPU per op) pays for all of it.
	if cp, ok := h.store.(interface{ Checkpoint(context.Context) error }); ok {
		if err := cp.Checkpoint(ctx); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(t0)
	user, sys := cpuTime()
	user, sys = user-user0, sys-sys0
	cpu := user + sys
	b.StopTimer()
	after := h.Stats()
	linger, expired := h.c.lingerNanos.Load()-linger0, h.c.lingerExpired.Load()-expired0
	all := slices.Concat(lat...)
	slices.Sort(all)
	cl.mu.Lock()
	commitTimes := slices.Clone(cl.times)
	cl.mu.Unlock()
	slices.Sort(commitTimes)
	if len(all) == 0 || len(commitTimes) == 0 {
		b.Fatal("nothing measured")
	}
	commits := after.Commits - before.Commits
	commitTime := (after.CommitTime - before.CommitTime) / time.Duration(max(commits, 1))
	p99 := all[len(all)*99/100]
	opsPerSec := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(opsPerSec, "ops/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(sys.Microseconds())/float64(b.N), "sys-µs/op")
	b.ReportMetric(float64(b.N)/float64(max(commits, 1)), "ops/commit")
	b.ReportMetric(float64(commitTime.Microseconds())/1000, "commit-ms")
	b.ReportMetric(float64(commitTimes[len(commitTimes)*99/100])/float64(commitTime), "commit-p99/mean")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(p99)/float64(commitTime), "p99/commit")
	b.ReportMetric(float64(p99)/float64(commitTimes[len(commitTimes)*99/100]), "p99/commit-p99")
	// Wall time between commits, of which lingering for the next batch.
	n := float64(max(commits, 1))
	b.ReportMetric((submitted.Seconds()-(after.CommitTime-before.CommitTime).Seconds())/n*1e6, "gap-µs")
	b.ReportMetric(float64(linger)/n/1e3, "linger-µs")
	b.ReportMetric(float64(expired)/n, "linger-expired")
	bound := float64(workers) / commitTime.Seconds()
	b.ReportMetric(opsPerSec/bound, "of-fsync-bound")
}

// BenchmarkHotDoc: one document, 32 concurrent submitters, fsync on.
func BenchmarkHotDoc(b *testing.B) {
	h, cl := benchHub(b, false)
	runSubmitters(b, h, cl, []string{"hot"}, 32)
}

// BenchmarkThousandDocs: 1,000 documents with 4 submitters each, fsync on.
func BenchmarkThousandDocs(b *testing.B) {
	docs := make([]string, 1000)
	for i := range docs {
		docs[i] = fmt.Sprintf("doc-%04d", i)
	}
	h, cl := benchHub(b, false)
	runSubmitters(b, h, cl, docs, 4)
}

// BenchmarkHotDocNoSync: one document, 32 submitters, fsync off
// (sequencing throughput and CPU per op).
func BenchmarkHotDocNoSync(b *testing.B) {
	h, cl := benchHub(b, true)
	runSubmitters(b, h, cl, []string{"hot"}, 32)
}

// BenchmarkLogMemory measures what the in-memory logs keep: 100 documents
// receive 160 ops each (a full log array), and retained-B/entry is the
// live heap they add, after a GC, per op kept in memory. b.N is ignored
// beyond the first run.
func BenchmarkLogMemory(b *testing.B) {
	for b.Loop() {
		h, _ := benchHub(b, true)
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		const docs, ops = 100, 160
		for d := range docs {
			doc := fmt.Sprintf("doc-%03d", d)
			mustSubmit(b, h, sub(doc, "c0", 1, 0, `["abcdefgh"]`))
			for i := 2; i <= ops; i++ {
				client := fmt.Sprintf("client-%d", i%4)
				mustSubmit(b, h, Submission{Doc: doc, Client: client, Seq: uint64(i), BaseRev: uint64(i - 1), User: "user", Op: []byte(fmt.Sprintf(`[%d,"x",-1]`, 1+i%5))})
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc))/float64(docs*ops), "retained-B/entry")
		runtime.KeepAlive(h)
	}
}
