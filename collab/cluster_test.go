package collab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/internal/natstest"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The tests of cluster mode run several hubs, each on its own connection
// and JetStream store, against one embedded nats-server: the nodes of a
// cluster in one process.

func startNATS(tb testing.TB, dir string, port int) *natsserver.Server {
	tb.Helper()
	return natstest.Run(tb, natstest.Options(dir, port, false))
}

// clusterHub starts a hub on its own connection to url, closed at cleanup.
func clusterHub(tb testing.TB, url string, cfg Config, jcfg storage.JetStreamConfig) *Hub {
	tb.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := storage.OpenJetStream(ctx, js, jcfg)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Store = store
	h, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			tb.Error(err)
		}
		store.Close()
		nc.Close()
	})
	return h
}

// TestClusterConverges: editors on three nodes edit two documents at once,
// some ops made on older revisions, some resent (to the same node or
// another one); every node
// ends with the same text, the log is gap-free, every op is in it once, at
// the revision its author was given, and every subscriber on every node
// saw every revision once, in order.
func TestClusterConverges(t *testing.T) {
	ctx := context.Background()
	srv := startNATS(t, t.TempDir(), -1)
	const nodes = 3
	hubs := make([]*Hub, nodes)
	for i := range hubs {
		hubs[i] = clusterHub(t, srv.ClientURL(), Config{Retain: 16, SnapshotEvery: 10}, storage.JetStreamConfig{})
	}
	docs := []string{"shared.a", "shared-b"}
	type ack struct {
		doc, client string
		seq, rev    uint64
	}
	var (
		mu      sync.Mutex
		acks    []ack
		subMu   sync.Mutex
		subRevs = map[string][]uint64{}
	)
	for n, h := range hubs {
		for _, doc := range docs {
			key := fmt.Sprintf("%d/%s", n, doc)
			s, err := h.Subscribe(ctx, doc, func(r storage.Record) {
				subMu.Lock()
				subRevs[key] = append(subRevs[key], r.Rev)
				subMu.Unlock()
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Cancel()
		}
	}
	const workers, perWorker = 9, 15
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			client := fmt.Sprintf("w%d", w)
			h := hubs[w%nodes]
			type state struct {
				rev  uint64
				text ot.Text
			}
			seenStates := map[string][]state{} // what this worker saw, to base late ops on
			for seq := uint64(1); seq <= perWorker; seq++ {
				doc := docs[r.IntN(len(docs))]
				head, text, err := h.Text(ctx, doc)
				if err != nil {
					t.Error(err)
					return
				}
				seenStates[doc] = append(seenStates[doc], state{head, text})
				if old := seenStates[doc]; len(old) > 1 && r.IntN(3) == 0 {
					st := old[len(old)-1-r.IntN(min(len(old), 5))]
					head, text = st.rev, st.text // a late op, made on an older revision
				}
				op, _ := randomOp(r, text.Len()).MarshalJSON()
				s := Submission{Doc: doc, Client: client, Seq: seq, BaseRev: head, Op: op}
				rev, err := h.Submit(ctx, s)
				if err != nil {
					t.Errorf("submit on node %d: %v", w%nodes, err)
					return
				}
				if r.IntN(4) == 0 { // resent, to this node or another: applied once
					other := hubs[r.IntN(nodes)]
					if again, err := other.Submit(ctx, s); err != nil || again != rev {
						t.Errorf("resubmission got %d, %v; want %d", again, err, rev)
					}
				}
				mu.Lock()
				acks = append(acks, ack{doc, client, seq, rev})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, doc := range docs {
		recs, err := hubs[0].store.Records(ctx, doc, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		ref := ""
		for i, rec := range recs {
			if rec.Rev != uint64(i+1) {
				t.Fatalf("%s: record %d has revision %d", doc, i, rec.Rev)
			}
			op, err := ot.Parse(rec.Op)
			if err != nil {
				t.Fatal(err)
			}
			if ref, err = op.ApplyString(ref); err != nil {
				t.Fatalf("%s record %d: %v", doc, rec.Rev, err)
			}
		}
		head := uint64(len(recs))
		// Every node catches up with the log through the feed.
		for n, h := range hubs {
			waitFor(t, func() bool { rev, _ := headOf(h, doc); return rev == head })
			if _, text := textOf(t, h, doc); text != ref {
				t.Fatalf("node %d: %s is %q, the log replays to %q", n, doc, text, ref)
			}
			key := fmt.Sprintf("%d/%s", n, doc)
			waitFor(t, func() bool { subMu.Lock(); defer subMu.Unlock(); return len(subRevs[key]) >= int(head) })
			subMu.Lock()
			got := subRevs[key]
			subMu.Unlock()
			for i, r := range got {
				if r != uint64(i+1) || len(got) != int(head) {
					t.Fatalf("node %d: subscriber of %s saw revisions %v, head %d", n, doc, got, head)
				}
			}
		}
		seen := map[string]bool{}
		for _, rec := range recs {
			key := fmt.Sprintf("%s:%d", rec.Client, rec.Seq)
			if seen[key] {
				t.Fatalf("%s: op %s stored twice", doc, key)
			}
			seen[key] = true
		}
		for _, a := range acks {
			if a.doc == doc && (recs[a.rev-1].Client != a.client || recs[a.rev-1].Seq != a.seq) {
				t.Fatalf("ack %+v does not match record %+v", a, recs[a.rev-1])
			}
		}
	}
	if len(acks) != workers*perWorker {
		t.Fatalf("%d acks, want %d", len(acks), workers*perWorker)
	}
	var stale, rebased uint64
	for _, h := range hubs {
		st := h.Stats()
		stale += st.Stale
		rebased += st.Rebased
	}
	t.Logf("%d ops: %d appends lost the race, %d ops sequenced again", len(acks), stale, rebased)
}

// TestClusterResubmissionElsewhere: an op acknowledged on node A and
// resent to node B (its client failed over) before B has heard of it is
// recognized there: B answers A's revision and stores nothing.
func TestClusterResubmissionElsewhere(t *testing.T) {
	ctx := context.Background()
	srv := startNATS(t, t.TempDir(), -1)
	a := clusterHub(t, srv.ClientURL(), Config{}, storage.JetStreamConfig{})
	b := clusterHub(t, srv.ClientURL(), Config{}, storage.JetStreamConfig{})
	mustSubmit(t, b, sub("doc", "x", 1, 0, `["hello"]`))
	waitFor(t, func() bool { rev, _ := headOf(a, "doc"); return rev == 1 })
	s := sub("doc", "c", 1, 1, `[5," world"]`)
	rev := mustSubmit(t, a, s)
	for range 3 {
		if got := mustSubmit(t, b, s); got != rev {
			t.Fatalf("resubmission on B got revision %d, want %d", got, rev)
		}
	}
	// An op based on A's revision, sent to B at once, is not refused.
	rev2 := mustSubmit(t, a, sub("doc", "c", 2, rev, `[11,"!"]`))
	if got := mustSubmit(t, b, sub("doc", "d", 1, rev2, `[12,"?"]`)); got != rev2+1 {
		t.Fatalf("op on B based on A's head %d got revision %d", rev2, got)
	}
	recs, err := b.Records(ctx, "doc", rev2, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("records after %d on B: %v, %v", rev2, recs, err)
	}
	for _, h := range []*Hub{a, b} {
		waitFor(t, func() bool { r, _ := headOf(h, "doc"); return r == rev2+1 })
		if _, text := textOf(t, h, "doc"); text != "hello world!?" {
			t.Fatalf("text %q", text)
		}
	}
}

// TestClusterRecordsAhead: a client that was acknowledged revision N on one
// node and asks another node for the records after N gets them, never
// not_found, even before that node's feed brought them.
func TestClusterRecordsAhead(t *testing.T) {
	ctx := context.Background()
	srv := startNATS(t, t.TempDir(), -1)
	a := clusterHub(t, srv.ClientURL(), Config{}, storage.JetStreamConfig{})
	b := clusterHub(t, srv.ClientURL(), Config{}, storage.JetStreamConfig{})
	mustSubmit(t, b, sub("doc", "x", 1, 0, `["a"]`)) // b has the document live
	for seq := uint64(1); seq <= 20; seq++ {
		rev := mustSubmit(t, a, sub("doc", "c", seq, seq, `["b"]`))
		if _, err := b.Records(ctx, "doc", rev, 10); err != nil {
			t.Fatalf("records after %d on B: %v", rev, err)
		}
	}
	if _, err := b.Records(ctx, "doc", 1000, 10); CodeOf(err) != contract.CodeNotFound {
		t.Fatalf("records after a revision nobody has: %v, want not_found", err)
	}
}

// TestClusterUnavailable: while NATS is down, ops fail with unavailable
// and nothing is acknowledged; when it is back, the same op (same client
// and seq) is applied once.
func TestClusterUnavailable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv := startNATS(t, dir, -1)
	url := srv.ClientURL()
	h := clusterHub(t, url, Config{}, storage.JetStreamConfig{Timeout: time.Second, Attempts: 2})
	mustSubmit(t, h, sub("doc", "c", 1, 0, `["a"]`))
	srv.Shutdown()
	srv.WaitForShutdown()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := h.Submit(cctx, sub("doc", "c", 2, 1, `[1,"b"]`))
	if CodeOf(err) != contract.CodeUnavailable {
		t.Fatalf("submit with NATS down: %v, want code unavailable", err)
	}
	// Back on the same port and store.
	u, _ := parseNATSPort(url)
	startNATS(t, dir, u)
	var rev uint64
	waitFor(t, func() bool {
		rev, err = h.Submit(cctx, sub("doc", "c", 2, 1, `[1,"b"]`))
		return err == nil
	})
	if again := mustSubmit(t, h, sub("doc", "c", 2, 1, `[1,"b"]`)); again != rev || rev != 2 {
		t.Fatalf("revisions %d then %d, want 2 twice", rev, again)
	}
	if _, text := textOf(t, h, "doc"); text != "ab" {
		t.Fatalf("text %q", text)
	}
	// Before the restarted server's cleanup, which runs first.
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func parseNATSPort(url string) (int, error) {
	var port int
	_, err := fmt.Sscanf(url[len("nats://127.0.0.1:"):], "%d", &port)
	return port, err
}

// startNATSCluster starts a 3-server JetStream cluster on 127.0.0.1
// (natstest.RunCluster).
func startNATSCluster(tb testing.TB) ([]*natsserver.Server, string) {
	tb.Helper()
	return natstest.RunCluster(tb)
}

// TestClusterLeaderLoss: two hubs on a 3-server JetStream cluster (R3)
// edit one document; the stream's leader is shut down mid-run. Editors
// resend an op that failed (same client and seq) until it is acknowledged,
// as clients do. Afterwards every acknowledged op is in the log once, at
// the revision its author was given, and both hubs have the log's text.
func TestClusterLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-server cluster and a leader election")
	}
	servers, url := startNATSCluster(t)
	jcfg := storage.JetStreamConfig{Replicas: 3, Timeout: 2 * time.Second, Attempts: 30}
	hubs := []*Hub{
		clusterHub(t, url, Config{}, jcfg),
		clusterHub(t, url, Config{}, jcfg),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const doc = "r3.doc"
	type ack struct {
		client string
		seq    uint64
	}
	var (
		mu    sync.Mutex
		acked = map[uint64]ack{}
		count atomic.Int64
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			h, client := hubs[w%2], fmt.Sprint("w", w)
			for seq := uint64(1); !stop.Load() && ctx.Err() == nil; seq++ {
				head, text, err := h.Text(ctx, doc)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					seq--
					continue
				}
				b := ot.NewBuilder()
				b.Retain(text.Len())
				b.Insert(fmt.Sprintf("<%s:%d>", client, seq))
				op, _ := b.Build().MarshalJSON()
				s := Submission{Doc: doc, Client: client, Seq: seq, BaseRev: head, Op: op}
				for ctx.Err() == nil {
					rev, err := h.Submit(ctx, s)
					if err == nil {
						mu.Lock()
						acked[rev] = ack{client, seq}
						mu.Unlock()
						count.Add(1)
						break
					}
					time.Sleep(20 * time.Millisecond) // unavailable during the election: resend
				}
			}
		})
	}
	waitCount := func(n int64) {
		for count.Load() < n {
			if ctx.Err() != nil {
				t.Fatalf("only %d ops acknowledged", count.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitCount(30)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, storage.DefaultJetStreamStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("stream info %+v, %v", info, err)
	}
	leader := info.Cluster.Leader
	for _, s := range servers {
		if s.Name() == leader {
			s.Shutdown()
		}
	}
	waitCount(count.Load() + 30)
	stop.Store(true)
	wg.Wait()
	recs, err := hubs[1].store.Records(ctx, doc, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[ack]bool{}
	want := ""
	for i, r := range recs {
		if r.Rev != uint64(i+1) {
			t.Fatalf("record %d has revision %d", i, r.Rev)
		}
		k := ack{r.Client, r.Seq}
		if seen[k] {
			t.Fatalf("%v stored twice", k)
		}
		seen[k] = true
		op, err := ot.Parse(r.Op)
		if err != nil {
			t.Fatal(err)
		}
		if want, err = op.ApplyString(want); err != nil {
			t.Fatal(err)
		}
	}
	for rev, a := range acked {
		if rev > uint64(len(recs)) || recs[rev-1].Client != a.client || recs[rev-1].Seq != a.seq {
			t.Fatalf("acknowledged %v at %d lost", a, rev)
		}
	}
	for n, h := range hubs {
		// A feed whose consumer was on the lost server resumes once its
		// missed heartbeats are noticed (seconds), hence the longer wait.
		deadline := time.Now().Add(45 * time.Second)
		for rev, _ := headOf(h, doc); rev != uint64(len(recs)); rev, _ = headOf(h, doc) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d is at revision %d, the log at %d", n, rev, len(recs))
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, text := textOf(t, h, doc); text != want {
			t.Fatalf("node %d has %q, the log %q", n, text, want)
		}
	}
	t.Logf("leader %s shut down; %d records, %d acknowledged", leader, len(recs), len(acked))
}

// BenchmarkCluster: editors submitting ops through 1 or 2 hubs sharing one
// embedded nats-server (JetStream, file storage), against the same editors
// on one hub over bbolt: one hot document with 8 editors, and 100
// documents with 4 editors each. Editors are spread over the hubs
// round-robin ("one-active": all on the first hub, the second only
// following). Each editor submits its next op once the previous one is
// acknowledged, based on the newest revision its node broadcast or it was
// acknowledged, as a client does. Metrics: ops/s, cpu-µs/op of the whole
// process (hubs and nats-server: on this machine they share its cores),
// commits, and appends lost to the other node and ops sequenced again,
// per op.
func BenchmarkCluster(b *testing.B) {
	shapes := []struct {
		name          string
		docs, editors int
	}{{"1x8", 1, 8}, {"100x4", 100, 4}}
	for _, shape := range shapes {
		for _, mode := range []string{"bolt", "nodes=1", "nodes=2", "nodes=2-one-active"} {
			b.Run(shape.name+"/"+mode, func(b *testing.B) {
				benchCluster(b, mode, shape.docs, shape.editors)
			})
		}
	}
}

func benchCluster(b *testing.B, mode string, docs, editors int) {
	var hubs []*Hub
	if mode == "bolt" {
		hubs = []*Hub{newHub(b, Config{})}
	} else {
		srv := startNATS(b, b.TempDir(), -1)
		for range int(mode[6] - '0') {
			hubs = append(hubs, clusterHub(b, srv.ClientURL(), Config{}, storage.JetStreamConfig{}))
		}
	}
	active := len(hubs)
	if strings.HasSuffix(mode, "one-active") {
		active = 1
	}
	ctx := context.Background()
	// latest[h][d]: the newest revision hub h broadcast for document d.
	latest := make([][]atomic.Uint64, len(hubs))
	for i := range latest {
		latest[i] = make([]atomic.Uint64, docs)
	}
	for d := range docs {
		doc := fmt.Sprint("doc", d)
		mustSubmit(b, hubs[0], sub(doc, "setup", 1, 0, `["seed"]`))
		for i, h := range hubs {
			waitFor(b, func() bool { rev, _ := headOf(h, doc); return rev == 1 })
			latest[i][d].Store(1)
			s, err := h.Subscribe(ctx, doc, func(r storage.Record) { latest[i][d].Store(r.Rev) })
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(s.Cancel)
		}
	}
	var next atomic.Int64
	u0, s0 := cpuTime()
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := range docs * editors {
		d := w % docs
		h, seen := hubs[(w/docs)%active], &latest[(w/docs)%active][d]
		wg.Go(func() {
			client, doc := fmt.Sprint("e", w), fmt.Sprint("doc", d)
			base := uint64(1)
			for seq := uint64(1); next.Add(1) <= int64(b.N); seq++ {
				rev, err := h.Submit(ctx, Submission{Doc: doc, Client: client, Seq: seq, BaseRev: max(base, seen.Load()), Op: []byte(`["x"]`)})
				if err != nil {
					b.Error(err)
					return
				}
				base = rev
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	u1, s1 := cpuTime()
	var stale, rebased, commits uint64
	var commitTime time.Duration
	for _, h := range hubs {
		st := h.Stats()
		stale += st.Stale
		rebased += st.Rebased
		commits += st.Commits
		commitTime += st.CommitTime
	}
	b.ReportMetric(float64(b.N)/float64(commits), "ops/commit")
	b.ReportMetric(float64(commitTime)/float64(time.Microsecond)/float64(commits), "commit-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64((u1-u0)+(s1-s0))/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(stale)/float64(b.N), "stale/op")
	b.ReportMetric(float64(rebased)/float64(b.N), "rebased/op")
}

// TestClusterDeletedElsewhere: a document deleted through node A while node
// B has it live: B's next op is refused with conflict (its clients rejoin),
// and the id then names a new, empty document on both nodes.
func TestClusterDeletedElsewhere(t *testing.T) {
	ctx := context.Background()
	srv := startNATS(t, t.TempDir(), -1)
	a := clusterHub(t, srv.ClientURL(), Config{}, storage.JetStreamConfig{})
	b := clusterHub(t, srv.ClientURL(), Config{}, storage.JetStreamConfig{})
	for seq := uint64(1); seq <= 5; seq++ {
		mustSubmit(t, a, sub("doc", "x", seq, seq-1, `["a"]`))
	}
	waitFor(t, func() bool { rev, _ := headOf(b, "doc"); return rev == 5 })
	if err := a.Delete(ctx, "doc"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Submit(ctx, sub("doc", "y", 1, 5, `[5,"b"]`)); CodeOf(err) != contract.CodeConflict {
		t.Fatalf("op on B after the delete on A: %v, want conflict", err)
	}
	rev := mustSubmit(t, b, sub("doc", "y", 2, 0, `["new"]`))
	if rev != 1 {
		t.Fatalf("first op of the new document got revision %d", rev)
	}
	waitFor(t, func() bool { r, _ := headOf(a, "doc"); return r == 1 })
	for _, h := range []*Hub{a, b} {
		if _, text := textOf(t, h, "doc"); text != "new" {
			t.Fatalf("text %q", text)
		}
	}
}
