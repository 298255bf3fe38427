package collab

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/collabd/collabd/storage"
)

// batchLog records the record count of every commit.
type batchLog struct {
	mu    sync.Mutex
	sizes []int
}

func (l *batchLog) observe(records int, _ time.Duration) {
	l.mu.Lock()
	l.sizes = append(l.sizes, records)
	l.mu.Unlock()
}

func (l *batchLog) get() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.sizes)
}

// TestLingerGivesUpWhenClientsStop: after a commit of 31 ops, a single
// client sends one more op while the others have nothing to send. The
// committer expects the 31 back, but must give up once the queue stops
// growing instead of holding that op for its whole deadline. (In a
// synctest bubble commits take no time and the linger's timers fire only
// once every goroutine is blocked, so the wait is exactly the linger's.)
func TestLingerGivesUpWhenClientsStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "collabd.db")
	synctest.Test(t, func(t *testing.T) {
		var l batchLog
		store, err := storage.OpenBolt(path, storage.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		fs := &failingStore{Store: store}
		h := newHub(t, Config{Store: fs, ObserveCommit: l.observe})
		ctx := context.Background()

		// Hold the first commit (one op) so that 31 more queue behind it
		// and make the next batch.
		gate := make(chan struct{})
		fs.set(false, gate)
		var wg sync.WaitGroup
		submit := func(c int) {
			if _, err := h.Submit(ctx, Submission{Doc: "d", Client: fmt.Sprint("c", c), Seq: 1, Op: []byte(`["x"]`)}); err != nil {
				t.Error(err)
			}
		}
		wg.Go(func() { submit(0) })
		waitFor(t, func() bool { r, _ := headOf(h, "d"); return r == 1 })
		for c := 1; c < 32; c++ {
			wg.Go(func() { submit(c) })
		}
		waitFor(t, func() bool { r, _ := headOf(h, "d"); return r == 32 })
		fs.set(false, nil)
		close(gate)
		wg.Wait()
		if sizes := l.get(); !slices.Equal(sizes, []int{1, 31}) {
			t.Fatalf("batches %v, want [1 31]", sizes)
		}

		expired := h.c.lingerExpired.Load()
		start := time.Now()
		if _, err := h.Submit(ctx, Submission{Doc: "d", Client: "late", Seq: 1, Op: []byte(`["y"]`)}); err != nil {
			t.Fatal(err)
		}
		waited := time.Since(start)
		// The linger's idle period is at least 100µs, its deadline 200µs
		// to 2ms.
		if waited < 100*time.Microsecond || waited >= 200*time.Microsecond {
			t.Fatalf("the lone op waited %v, want the idle period", waited)
		}
		if h.c.lingerExpired.Load() != expired+1 {
			t.Fatalf("linger did not give up: %d -> %d", expired, h.c.lingerExpired.Load())
		}
		if sizes := l.get(); !slices.Equal(sizes, []int{1, 31, 1}) {
			t.Fatalf("batches %v", sizes)
		}
	})
}
