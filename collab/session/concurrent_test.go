package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/internal/sioclient"
	"github.com/collabd/collabd/ot"
)

// otClient is the client side of the protocol in Go: the state machine
// synchronized / awaiting / awaiting with buffer. It runs on the sioclient
// reader goroutine (acks and broadcasts, in arrival order) and on the test
// goroutine (edits), under mu. It fails the test on any ordering violation:
// an ack or a record that is not exactly rev+1.
type otClient struct {
	t   testing.TB
	doc string
	id  string
	c   *sioclient.Client

	mu      sync.Mutex // guards everything below
	rev     uint64
	text    ot.Text
	seq     uint64
	pending *pendingOp
	buffer  *ot.Op
	acked   int // ops acknowledged
	err     error
	joined  chan struct{}
}

type pendingOp struct {
	seq uint64
	op  ot.Op
}

func (e *env) otClient(doc, id string) *otClient {
	t := e.t
	t.Helper()
	oc := &otClient{t: t, doc: doc, id: id, joined: make(chan struct{})}
	c, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: e.addr, OnEvent: oc.onEvent})
	if err != nil {
		t.Fatal(err)
	}
	oc.c = c
	t.Cleanup(c.Close)
	// The join ack is handled on the reader goroutine too: a broadcast may
	// follow it in the same read.
	err = c.EmitAck(func(args []byte) {
		var a []struct {
			OK   bool   `json:"ok"`
			Rev  uint64 `json:"rev"`
			Text string `json:"text"`
		}
		oc.mu.Lock()
		defer oc.mu.Unlock()
		if err := json.Unmarshal(args, &a); err != nil || len(a) != 1 || !a[0].OK {
			oc.fail(fmt.Errorf("join ack %s", args))
		} else {
			oc.rev, oc.text = a[0].Rev, ot.NewText(a[0].Text)
		}
		close(oc.joined)
	}, "doc:join", obj("doc", doc, "client", id))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-oc.joined:
	case <-time.After(10 * time.Second):
		t.Fatal("join timed out")
	}
	return oc
}

// fail records the first error. mu must be held.
func (oc *otClient) fail(err error) {
	if oc.err == nil {
		oc.err = fmt.Errorf("client %s: %w", oc.id, err)
	}
}

func (oc *otClient) onEvent(name string, args []byte) {
	if name != "doc:op" {
		return
	}
	var a []struct {
		Rev    uint64          `json:"rev"`
		Op     json.RawMessage `json:"op"`
		Client string          `json:"client"`
	}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	if err := json.Unmarshal(args, &a); err != nil || len(a) < 1 {
		oc.fail(fmt.Errorf("bad record %s", args))
		return
	}
	r := a[0]
	if r.Client == oc.id {
		oc.fail(fmt.Errorf("received its own op as a broadcast (rev %d)", r.Rev))
		return
	}
	if r.Rev != oc.rev+1 {
		oc.fail(fmt.Errorf("record rev %d at client rev %d", r.Rev, oc.rev))
		return
	}
	op, err := ot.Parse(r.Op)
	if err != nil {
		oc.fail(err)
		return
	}
	if oc.pending != nil {
		op1, p1, err := ot.Transform(op, oc.pending.op)
		if err != nil {
			oc.fail(err)
			return
		}
		oc.pending.op, op = p1, op1
		if oc.buffer != nil {
			op2, b1, err := ot.Transform(op, *oc.buffer)
			if err != nil {
				oc.fail(err)
				return
			}
			oc.buffer, op = &b1, op2
		}
	}
	if oc.text, err = op.Apply(oc.text); err != nil {
		oc.fail(err)
		return
	}
	oc.rev = r.Rev
}

// editRandom makes a random edit of the current text: the op is built and
// applied under mu, so that a broadcast cannot change the text in between.
func (oc *otClient) editRandom(rng *rand.Rand) {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	oc.edit(randomOp(rng, oc.text.Len()))
}

// edit applies op locally and sends or buffers it. mu must be held.
func (oc *otClient) edit(op ot.Op) {
	var err error
	if oc.text, err = op.Apply(oc.text); err != nil {
		oc.fail(err)
		return
	}
	switch {
	case oc.pending == nil:
		oc.seq++
		oc.pending = &pendingOp{seq: oc.seq, op: op}
		oc.send()
	case oc.buffer == nil:
		oc.buffer = &op
	default:
		b, err := ot.Compose(*oc.buffer, op)
		if err != nil {
			oc.fail(err)
			return
		}
		oc.buffer = &b
	}
}

// send emits pending. mu must be held.
func (oc *otClient) send() {
	p := oc.pending
	opJSON, _ := p.op.MarshalJSON()
	err := oc.c.EmitAck(oc.onAck(p.seq), "doc:op", obj("doc", oc.doc, "client", oc.id, "seq", p.seq, "rev", oc.rev, "op", json.RawMessage(opJSON)))
	if err != nil {
		oc.fail(err)
	}
}

func (oc *otClient) onAck(seq uint64) func([]byte) {
	return func(args []byte) {
		var a []struct {
			OK  bool   `json:"ok"`
			Rev uint64 `json:"rev"`
		}
		oc.mu.Lock()
		defer oc.mu.Unlock()
		if err := json.Unmarshal(args, &a); err != nil || len(a) != 1 || !a[0].OK {
			oc.fail(fmt.Errorf("op ack %s", args))
			return
		}
		if oc.pending == nil || oc.pending.seq != seq {
			oc.fail(fmt.Errorf("ack of seq %d, pending %v", seq, oc.pending))
			return
		}
		if a[0].Rev != oc.rev+1 {
			oc.fail(fmt.Errorf("ack rev %d at client rev %d (ack and broadcasts out of order)", a[0].Rev, oc.rev))
			return
		}
		oc.rev = a[0].Rev
		oc.acked++
		oc.pending = nil
		if oc.buffer != nil {
			oc.seq++
			oc.pending = &pendingOp{seq: oc.seq, op: *oc.buffer}
			oc.buffer = nil
			oc.send()
		}
	}
}

// randomOp is an insert or a delete on a text of n code points.
func randomOp(rng *rand.Rand, n int) ot.Op {
	b := ot.NewBuilder()
	if n > 0 && rng.IntN(3) == 0 {
		pos := rng.IntN(n)
		b.Retain(pos)
		b.Delete(1 + rng.IntN(min(4, n-pos)))
		return b.Build()
	}
	b.Retain(rng.IntN(n + 1))
	words := []string{"a", "bc", "é", "😀", "中文", "x y", "\n"}
	b.Insert(words[rng.IntN(len(words))])
	return b.Build()
}

// TestConcurrentEditorsConverge: 4 to 8 clients edit one document at random,
// each running the OT state machine; the server checks nothing for them, the
// clients check the ordering (every ack and record is rev+1). At the end every
// client's text is the hub's.
func TestConcurrentEditorsConverge(t *testing.T) {
	for _, n := range []int{4, 8} {
		t.Run(fmt.Sprintf("%d-clients", n), func(t *testing.T) {
			e := newEnv(t, envOpts{})
			clients := make([]*otClient, n)
			for i := range clients {
				clients[i] = e.otClient("race", fmt.Sprintf("c%d", i))
			}
			const edits = 60
			var wg sync.WaitGroup
			for i, oc := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(n), uint64(i)))
					for range edits {
						oc.editRandom(rng)
						time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
					}
				}()
			}
			wg.Wait()
			deadline := time.Now().Add(20 * time.Second)
			for {
				rev, text := e.text("race")
				settled := true
				for _, oc := range clients {
					oc.mu.Lock()
					if oc.err != nil {
						t.Fatal(oc.err)
					}
					if oc.pending != nil || oc.rev != rev {
						settled = false
					}
					oc.mu.Unlock()
				}
				if settled {
					total := 0
					for _, oc := range clients {
						oc.mu.Lock()
						if got := oc.text.String(); got != text {
							t.Fatalf("client %s: %q, hub %q", oc.id, got, text)
						}
						total += oc.acked
						oc.mu.Unlock()
					}
					if uint64(total) != rev {
						t.Fatalf("%d acks for %d revisions", total, rev)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("clients did not settle at rev %d", rev)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestJoinWhileEditing: clients join (some resuming from an old revision)
// while others edit without pause; each joiner's state plus the records it
// receives must be gapless (its OT checks every rev) and end at the hub's
// text. This drives the buffering of records that arrive during a join.
func TestJoinWhileEditing(t *testing.T) {
	// The writers edit as fast as their acks come back: the per-socket
	// rate limit is not what this test is about.
	e := newEnv(t, envOpts{limits: session.Limits{OpsPerSecond: 1e6, OpsBurst: 1e6}})
	writers := []*otClient{e.otClient("live", "w0"), e.otClient("live", "w1"), e.otClient("live", "w2")}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(7, uint64(i)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				w.editRandom(rng)
				time.Sleep(time.Duration(rng.IntN(1500)) * time.Microsecond)
			}
		}()
	}
	var joiners []*otClient
	for i := range 12 {
		time.Sleep(15 * time.Millisecond)
		joiners = append(joiners, e.otClient("live", fmt.Sprintf("j%d", i)))
	}
	close(stop)
	wg.Wait()
	all := append(writers, joiners...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		rev, text := e.text("live")
		settled := true
		for _, oc := range all {
			oc.mu.Lock()
			if oc.err != nil {
				t.Fatal(oc.err)
			}
			if oc.pending != nil || oc.rev != rev {
				settled = false
			} else if got := oc.text.String(); got != text {
				t.Fatalf("client %s: %q, hub %q", oc.id, got, text)
			}
			oc.mu.Unlock()
		}
		if settled {
			if rev < 30 {
				t.Fatalf("only %d revisions: the joins did not race any edits", rev)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("clients did not settle at rev %d", rev)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
