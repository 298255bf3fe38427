package collab

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// replaceOp is the op that replaces the code point at pos with c.
func replaceOp(pos int, c rune) json.RawMessage {
	bl := ot.NewBuilder()
	bl.Retain(pos)
	bl.Delete(1)
	bl.Insert(string(c))
	return bl.Build().AppendJSON(nil)
}

// BenchmarkOpenTail compares opening (what a join or a GET of a document
// not in memory does: Load, then replay the ops after the newest snapshot)
// a document of 1,000,000 revisions written through the committer, caught
// at the worst point of its snapshot cadence (the longest run of ops after
// a snapshot, as after a crash: an evicted or closed document has a
// snapshot at its head), with a fresh document of the same 4,096 code
// point text (one revision). tail-ops is the run of ops replayed;
// cpu-µs/op the process's CPU time per open (getrusage: steadier than the
// wall time on a shared machine, but it counts the GC's background work).
//
//	go test -run '^$' -bench OpenTail -benchtime 2000x ./collab
func BenchmarkOpenTail(b *testing.B) {
	const revs, length = 1_000_000, 4096
	ctx := context.Background()
	// No journal: its background checkpoint of the million records would
	// run during the measurement.
	store, err := storage.OpenBolt(filepath.Join(b.TempDir(), "open.db"), storage.Options{NoSync: true, NoJournal: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	h := newHub(b, Config{Store: store, IdleTimeout: -1})
	text := strings.Repeat("a", length)
	if _, err := h.Submit(ctx, Submission{Doc: "fresh", Client: "c", Seq: 1, Op: fmt.Appendf(nil, "[%q]", text)}); err != nil {
		b.Fatal(err)
	}
	if _, err := h.Submit(ctx, Submission{Doc: "big", Client: "c", Seq: 1, Op: fmt.Appendf(nil, "[%q]", text)}); err != nil {
		b.Fatal(err)
	}
	// Pipelined, each op on the head: a few seconds.
	r := rand.New(rand.NewPCG(1, 2))
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	inflight := make(chan struct{}, 1000)
	rev := uint64(1)
	for ; rev < revs-500; rev++ {
		inflight <- struct{}{}
		wg.Add(1)
		h.SubmitAsync(ctx, Submission{Doc: "big", Client: "c", Seq: rev + 1, BaseRev: rev,
			Op: replaceOp(r.IntN(length), rune('a'+r.IntN(26)))}, func(_ uint64, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
			<-inflight
			wg.Done()
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	// One op at a time: find the cadence (the longest gap between the
	// last few snapshots: a regular one on a multiple of SnapshotEvery
	// may come sooner) and stop just before the next snapshot, about
	// revs.
	big, err := h.acquire(ctx, "big")
	if err != nil {
		b.Fatal(err)
	}
	snapRev := func() uint64 {
		big.mu.Lock()
		defer big.mu.Unlock()
		return big.snapRev
	}
	var snaps []uint64
	gap := uint64(0)
	for ; rev < revs+1000; rev++ {
		s := snapRev()
		if len(snaps) == 0 || snaps[len(snaps)-1] != s {
			snaps = append(snaps, s)
		}
		if len(snaps) >= 3 {
			gap = 0
			for i := max(len(snaps)-5, 1); i < len(snaps); i++ {
				gap = max(gap, snaps[i]-snaps[i-1])
			}
			if rev-s == gap-1 {
				break
			}
		}
		if _, err := h.Submit(ctx, Submission{Doc: "big", Client: "c", Seq: rev + 1, BaseRev: rev,
			Op: replaceOp(r.IntN(length), rune('a'+r.IntN(26)))}); err != nil {
			b.Fatal(err)
		}
	}
	if gap == 0 {
		b.Fatal("no snapshot cadence seen")
	}
	for _, doc := range []string{"fresh", "big"} {
		b.Run(doc, func(b *testing.B) {
			var tail int
			u0, s0 := cpuTime()
			for b.Loop() {
				st, err := store.Load(ctx, doc, 0)
				if err != nil {
					b.Fatal(err)
				}
				d := newDocument(h, doc)
				if err := d.init(st); err != nil {
					b.Fatal(err)
				}
				if d.text.Len() != length {
					b.Fatal("wrong text")
				}
				tail = int(st.Meta.Head - st.Snapshot.Rev)
			}
			u1, s1 := cpuTime()
			b.ReportMetric(float64(u1-u0+s1-s0)/float64(b.N)/1e3, "cpu-µs/op")
			b.ReportMetric(float64(tail), "tail-ops")
		})
	}
}
