//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

func mustParse(tb testing.TB, s string) ot.Op {
	tb.Helper()
	op, err := ot.Parse([]byte(s))
	if err != nil {
		tb.Fatal(err)
	}
	return op
}

// TestOTClientStates walks the three states by hand: a remote op arrives
// while an op is in flight and a buffer waits.
func TestOTClientStates(t *testing.T) {
	c := newOTClient(3, "abc")
	send, err := c.edit(mustParse(t, `[3,"X"]`)) // abcX, sent
	if err != nil || !send {
		t.Fatalf("first edit: send=%v err=%v, want send", send, err)
	}
	send, err = c.edit(mustParse(t, `["Y"]`)) // YabcX, buffered
	if err != nil || send {
		t.Fatalf("second edit: send=%v err=%v, want buffered", send, err)
	}
	send, err = c.edit(mustParse(t, `[1,-1]`)) // YbcX, composed into the buffer
	if err != nil || send {
		t.Fatalf("third edit: send=%v err=%v, want buffered", send, err)
	}
	// Another client, at revision 3, inserted "Z" at 1 (after "a") and that
	// became revision 4.
	if err := c.remote(4, mustParse(t, `[1,"Z"]`)); err != nil {
		t.Fatal(err)
	}
	if got := c.text.String(); got != "YZbcX" {
		t.Fatalf("text after remote = %q, want YZbcX", got)
	}
	if got := c.sent.String(); got != `[4,"X"]` {
		t.Fatalf("sent transformed = %s, want [4,\"X\"]", got)
	}
	if err := c.remote(6, mustParse(t, `["Q"]`)); !errors.Is(err, errOutOfOrder) {
		t.Fatalf("remote with a gap: err=%v, want errOutOfOrder", err)
	}
	send, err = c.ack(5)
	if err != nil || !send {
		t.Fatalf("ack: send=%v err=%v, want the buffer to be sent", send, err)
	}
	if c.rev != 5 || c.hasBuf || !c.hasSent {
		t.Fatalf("after ack: rev=%d hasBuf=%v hasSent=%v", c.rev, c.hasBuf, c.hasSent)
	}
	// The server applies revision 4 then our two ops to "abc".
	s := "abc"
	for _, o := range []string{`[1,"Z"]`, `[4,"X"]`, c.sent.String()} {
		if s, err = mustParse(t, o).ApplyString(s); err != nil {
			t.Fatal(err)
		}
	}
	if s != c.text.String() {
		t.Fatalf("server text %q != client text %q", s, c.text.String())
	}
	if send, err = c.ack(6); err != nil || send || c.pending() {
		t.Fatalf("last ack: send=%v err=%v pending=%v", send, err, c.pending())
	}
	if _, err := c.ack(7); err == nil {
		t.Fatal("ack with nothing in flight: want an error")
	}
}

// hubClient is one simulated editor of TestOTClientAgainstHub: its inbox gets
// the document's records from a real collab.Hub subscription, in revision
// order, its own records standing for its acks (that is the ordering the wire
// contract promises to a socket).
type hubClient struct {
	id    string
	st    *otClient
	seq   uint64
	inbox chan storage.Record
}

// TestOTClientAgainstHub runs random edits of several clients through a real
// hub (bbolt file in a temporary directory), delivering acks and broadcasts
// at random moments, and checks that every client ends with the hub's text.
func TestOTClientAgainstHub(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runHubSim(t, seed, 4, 150) })
	}
}

func runHubSim(t *testing.T, seed uint64, nClients, nEdits int) {
	st, err := storage.OpenBolt(filepath.Join(t.TempDir(), "sim.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hub, err := collab.New(collab.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const doc = "sim"

	clients := make([]*hubClient, nClients)
	for i := range clients {
		c := &hubClient{id: fmt.Sprintf("c%d", i), inbox: make(chan storage.Record, 4*nEdits)}
		sub, err := hub.Subscribe(ctx, doc, func(r storage.Record) { c.inbox <- r })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sub.Cancel)
		c.st = newOTClient(sub.Rev, sub.Text.String())
		clients[i] = c
	}
	submitErr := make(chan error, 4*nEdits)
	submits := 0
	submit := func(c *hubClient) {
		submits++
		c.seq++
		raw, _ := c.st.sent.MarshalJSON()
		s := collab.Submission{Doc: doc, Client: c.id, Seq: c.seq, BaseRev: c.st.rev, Op: raw}
		go func() {
			if _, err := hub.Submit(ctx, s); err != nil {
				submitErr <- fmt.Errorf("submit %s/%d: %w", s.Client, s.Seq, err)
			}
		}()
	}
	deliver := func(c *hubClient, r storage.Record) {
		t.Helper()
		if r.Client == c.id {
			send, err := c.st.ack(r.Rev)
			if err != nil {
				t.Fatal(err)
			}
			if send {
				submit(c)
			}
			return
		}
		op, err := ot.Parse(r.Op)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.st.remote(r.Rev, op); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	for edits := 0; edits < nEdits; {
		c := clients[rng.IntN(len(clients))]
		if rng.IntN(3) == 0 {
			send, err := c.st.edit(randomEdit(rng, c.st.text.Len(), 200))
			if err != nil {
				t.Fatal(err)
			}
			if send {
				submit(c)
			}
			edits++
			continue
		}
		select {
		case r := <-c.inbox:
			deliver(c, r)
		default:
			if rng.IntN(4) == 0 {
				time.Sleep(100 * time.Microsecond) // let commits land
			}
		}
	}
	// Drain: deliver everything until nobody has anything pending.
	for _, c := range clients {
		for c.st.pending() {
			select {
			case r := <-c.inbox:
				deliver(c, r)
			case err := <-submitErr:
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatalf("%s still pending at revision %d", c.id, c.st.rev)
			}
		}
	}
	rev, text, err := hub.Text(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		for c.st.rev < rev {
			select {
			case r := <-c.inbox:
				deliver(c, r)
			case <-ctx.Done():
				t.Fatalf("%s stuck at revision %d of %d", c.id, c.st.rev, rev)
			}
		}
		if !c.st.text.Equal(text) {
			t.Fatalf("%s diverged at revision %d:\nclient %q\nhub    %q", c.id, rev, c.st.text.String(), text.String())
		}
	}
	// Every op sent became exactly one revision (edits made while an op was
	// in flight were composed into the next one).
	if rev != uint64(submits) || submits < nClients {
		t.Fatalf("%d revisions for %d ops sent (%d edits)", rev, submits, nEdits)
	}
	select {
	case err := <-submitErr:
		t.Fatal(err)
	default:
	}
}

func TestRandomEditAppliesAndStaysNearTarget(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	text := ot.NewText("")
	nonASCII := 0
	for i := 0; i < 5000; i++ {
		op := randomEdit(rng, text.Len(), 300)
		next, err := op.Apply(text)
		if err != nil {
			t.Fatalf("edit %d %v on %d code points: %v", i, op, text.Len(), err)
		}
		if ins, _ := op.Stats(); ins > 0 && len(op.String()) > 0 {
			for _, r := range op.String() {
				if r > 0x7f {
					nonASCII++
					break
				}
			}
		}
		text = next
	}
	if n := text.Len(); n < 150 || n > 600 {
		t.Fatalf("text has %d code points after 5000 edits, want near 300", n)
	}
	if nonASCII == 0 {
		t.Fatal("no non-ASCII insert in 5000 edits")
	}
}
