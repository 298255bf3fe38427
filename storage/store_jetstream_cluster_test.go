package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/collabd/collabd/internal/natstest"
	"github.com/nats-io/nats-server/v2/server"
)

// runNATSCluster starts a 3-server JetStream cluster (natstest.RunCluster).
func runNATSCluster(tb testing.TB) ([]*server.Server, string) {
	tb.Helper()
	return natstest.RunCluster(tb)
}

// TestJetStreamClusterLeaderLoss: on a 3-server cluster with an R3 stream,
// the stream leader is shut down while several nodes append; every
// acknowledged record is on the log afterwards, at the revision its ack
// named, and the log is gap-free. A follow feed running throughout
// delivers the whole log of each document, in order (repeats allowed).
func TestJetStreamClusterLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-server cluster and a leader election")
	}
	start := time.Now()
	servers, url := runNATSCluster(t)
	t.Cleanup(func() { t.Logf("test and cleanup %v", time.Since(start)) })
	cfg := JetStreamConfig{Replicas: 3, Timeout: 2 * time.Second, Attempts: 30}
	// Nodes started with the cluster: OpenJetStream waits for JetStream
	// to elect its meta leader.
	// They start at the same moment.
	ctx0, cancel0 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel0()
	stores := make([]*JetStream, 3)
	openErrs := make([]error, 3)
	var owg sync.WaitGroup
	for i := range stores {
		js := connectJS(t, url)
		owg.Add(1)
		go func() {
			defer owg.Done()
			stores[i], openErrs[i] = OpenJetStream(ctx0, js, cfg)
		}()
	}
	owg.Wait()
	for _, err := range openErrs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("cluster up, stores open after %v", time.Since(start))
	feed := newFeedLog(t, true)
	stopFeed, err := stores[1].Follow(context.Background(), feed.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stopFeed()

	type ack struct {
		client string
		seq    uint64
	}
	var (
		mu    sync.Mutex
		acked = map[string]map[uint64]ack{} // doc -> rev -> record acknowledged
		count atomic.Int64
		stop  = make(chan struct{})
	)
	docs := []string{"r3.a", "r3.b"}
	for _, d := range docs {
		acked[d] = map[uint64]ack{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, doc, client := stores[w%3], docs[w%2], fmt.Sprint("w", w)
			head := uint64(0)
			for seq := uint64(1); ; {
				select {
				case <-stop:
					return
				default:
				}
				if ctx.Err() != nil {
					return
				}
				err := s.Commit(ctx, []Write{{Doc: doc, Records: []Record{rec(head+1, client, seq, 0, "x")}}})
				var se *StaleError
				switch {
				case err == nil:
					mu.Lock()
					acked[doc][head+1] = ack{client, seq}
					mu.Unlock()
					count.Add(1)
					head++
					seq++
				case errors.As(err, &se):
					head = se.Head
				default:
					// Outcome unknown (failover): learn the head again; the
					// record may or may not be in, it was not acknowledged.
					time.Sleep(50 * time.Millisecond)
					if p, _, err := s.last(ctx, doc); err == nil {
						head = p.head
					}
					seq++
				}
			}
		}()
	}
	waitCount := func(n int64) {
		for count.Load() < n {
			if ctx.Err() != nil {
				t.Fatalf("only %d appends acknowledged", count.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t0 := time.Now()
	waitCount(40)
	t.Logf("40 appends in %v", time.Since(t0))
	info, err := stores[0].stream.Info(ctx)
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("stream info %+v %v", info, err)
	}
	for _, s := range servers {
		if s.Name() == info.Cluster.Leader {
			s.Shutdown()
		}
	}
	t0 = time.Now()
	before := count.Load()
	waitCount(before + 40)
	t.Logf("leader %s down, 40 more appends in %v", info.Cluster.Leader, time.Since(t0))
	close(stop)
	wg.Wait()
	if info2, err := stores[0].stream.Info(ctx); err != nil || info2.Cluster == nil || info2.Cluster.Leader == info.Cluster.Leader {
		t.Fatalf("after the leader's shutdown: %+v %v", info2, err)
	}

	reader := stores[0]
	for _, doc := range docs {
		p, _, err := reader.last(context.Background(), doc)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := reader.Records(context.Background(), doc, 0, int(p.head))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[ack]bool{}
		for i, r := range recs {
			if r.Rev != uint64(i+1) {
				t.Fatalf("%s: record %d has revision %d", doc, i, r.Rev)
			}
			k := ack{r.Client, r.Seq}
			if seen[k] {
				t.Fatalf("%s: %v twice", doc, k)
			}
			seen[k] = true
		}
		for rev, a := range acked[doc] {
			if rev > uint64(len(recs)) || recs[rev-1].Client != a.client || recs[rev-1].Seq != a.seq {
				t.Fatalf("%s: acknowledged %v at %d lost", doc, a, rev)
			}
		}
		t.Logf("%s: %d records, %d acknowledged", doc, len(recs), len(acked[doc]))
		feed.waitHeads(map[string]uint64{doc: p.head})
		feed.check(doc, recs)
	}
	t.Logf("feed: %d records came twice", feed.repeated)
}
