package collab

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/collabd/collabd/storage"
)

// benchHub opens a hub over a fresh bbolt file (fsync on unless noSync).
func benchHub(b *testing.B, noSync bool) *Hub {
	b.Helper()
	store, err := storage.OpenBolt(filepath.Join(b.TempDir(), "bench.db"), storage.Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	return newHub(b, Config{Store: store})
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runSubmitters has perDoc goroutines per document submit ops (an insert at
// the start) until b.N ops are acknowledged, and reports throughput, commit
// figures and latency. Each goroutine plays a client that receives the
// document's broadcasts: its base revision is the newest revision
// acknowledged to anyone on that document when it sends (at least the one
// its own previous op got), so an op is transformed over the ops in flight,
// as with real clients.
func runSubmitters(b *testing.B, h *Hub, docs []string, perDoc int) {
	ctx := context.Background()
	for _, d := range docs { // create and load every document first
		mustSubmit(b, h, sub(d, "setup", 1, 0, `["seed"]`))
	}
	var next atomic.Int64
	workers := len(docs) * perDoc
	latest := make([]atomic.Uint64, len(docs)) // newest acknowledged rev per doc
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	before := h.Stats()
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		doc, seen := docs[w%len(docs)], &latest[w%len(docs)]
		wg.Go(func() {
			client := fmt.Sprintf("w%d", w)
			base := uint64(1)
			for seq := uint64(1); next.Add(1) <= int64(b.N); seq++ {
				base = max(base, seen.Load())
				t0 := time.Now()
				rev, err := h.Submit(ctx, Submission{Doc: doc, Client: client, Seq: seq, BaseRev: base, Op: []byte(`["x"]`)})
				if err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				base = rev
				for old := seen.Load(); old < rev && !seen.CompareAndSwap(old, rev); old = seen.Load() {
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := cpuTime() - cpu0
	after := h.Stats()
	all := slices.Concat(lat...)
	slices.Sort(all)
	commits := after.Commits - before.Commits
	commitTime := (after.CommitTime - before.CommitTime) / time.Duration(max(commits, 1))
	p99 := all[len(all)*99/100]
	opsPerSec := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(opsPerSec, "ops/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(b.N)/float64(max(commits, 1)), "ops/commit")
	b.ReportMetric(float64(commitTime.Microseconds())/1000, "commit-ms")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(p99)/float64(commitTime), "p99/commit")
	// Share of the wall time the store spent committing: near 1, the
	// disk is the bottleneck.
	b.ReportMetric(float64(after.CommitTime-before.CommitTime)/float64(elapsed), "store-busy")
	bound := float64(workers) / commitTime.Seconds()
	b.ReportMetric(opsPerSec/bound, "of-fsync-bound")
}

// BenchmarkHotDoc: one document, 32 concurrent submitters, fsync on.
func BenchmarkHotDoc(b *testing.B) {
	runSubmitters(b, benchHub(b, false), []string{"hot"}, 32)
}

// BenchmarkThousandDocs: 1,000 documents with 4 submitters each, fsync on.
func BenchmarkThousandDocs(b *testing.B) {
	docs := make([]string, 1000)
	for i := range docs {
		docs[i] = fmt.Sprintf("doc-%04d", i)
	}
	runSubmitters(b, benchHub(b, false), docs, 4)
}

// BenchmarkHotDocNoSync: one document, 32 submitters, fsync off
// (sequencing throughput and CPU per op).
func BenchmarkHotDocNoSync(b *testing.B) {
	runSubmitters(b, benchHub(b, true), []string{"hot"}, 32)
}
