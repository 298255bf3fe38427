package engineio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// floodMsgSize is the data size of the messages the flood tests send.
const floodMsgSize = 64 << 10

// floodMsg returns message i: its number in 8 digits, then padding.
func floodMsg(i int) *Message {
	b := make([]byte, floodMsgSize)
	copy(b, fmt.Sprintf("%08d", i))
	for j := 8; j < len(b); j++ {
		b[j] = 'x'
	}
	return NewTextMessage(b)
}

// floodNumber returns the number of a flood message's text form ("4" and
// the data), or -1.
func floodNumber(pkt string) int {
	if len(pkt) != 1+floodMsgSize || pkt[0] != typeMessage {
		return -1
	}
	n, err := strconv.Atoi(pkt[1:9])
	if err != nil {
		return -1
	}
	return n
}

// floodResult is what flood saw.
type floodResult struct {
	accepted  int   // messages slow's queue took
	maxQueued int   // the most bytes slow's queue held after a Send
	err       error // what the refused Send returned
}

// flood sends numbered 64 KiB messages, each one shared by slow and fast as
// a broadcast shares it, until a Send to slow fails, then a few more to fast.
// fast's reader passes the numbers it reads, in order, to recv; the sender
// keeps at most window messages unread by it, which a reader that keeps up
// never notices. It checks that fast read every message, and fails the test
// when slow is still open after limit messages or the flood does not end
// (a Send that blocked: slow never reads).
func flood(t *testing.T, slow, fast *Conn, recv <-chan int, limit int) floodResult {
	t.Helper()
	const window, after = 4, 8
	type outcome struct {
		res floodResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() { done <- o }()
		sent, read := 0, 0 // messages sent to fast, and read by it
		take := func() error {
			select {
			case n, ok := <-recv:
				if !ok {
					return errors.New("the reading client stopped")
				}
				if n != read {
					return fmt.Errorf("the reading client read message %d, want %d", n, read)
				}
				read++
				return nil
			case <-time.After(20 * time.Second):
				return fmt.Errorf("the reading client did not read message %d", read)
			}
		}
		for extra := -1; extra != 0 && o.err == nil; sent++ {
			if sent == limit {
				o.err = fmt.Errorf("slow still open after %d messages of %d bytes (its queue held %d bytes at most)",
					limit, floodMsgSize, o.res.maxQueued)
				return
			}
			for sent-read >= window && o.err == nil {
				o.err = take()
			}
			m := floodMsg(sent)
			if extra < 0 {
				if err := slow.Send(m); err != nil {
					o.res.err, extra = err, after
				} else {
					o.res.accepted++
					slow.mu.Lock()
					o.res.maxQueued = max(o.res.maxQueued, slow.queued)
					slow.mu.Unlock()
				}
			} else {
				extra--
			}
			if err := fast.Send(m); err != nil && o.err == nil {
				o.err = fmt.Errorf("Send to the reading client: %w", err)
			}
		}
		for read < sent && o.err == nil {
			o.err = take()
		}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatal(o.err)
		}
		return o.res
	case <-time.After(60 * time.Second):
		t.Fatal("the flood did not end: a Send blocked?")
		return floodResult{}
	}
}

// checkSlowClosed checks how flood ended for slow: a Send refused once the
// queue held more than bound (and never more than bound plus one message),
// the session closed with reason "transport error" and that Send's error as
// the cause, which tells the bound.
func checkSlowClosed(t *testing.T, h *harness, slow *Conn, res floodResult, bound int) {
	t.Helper()
	cost := floodMsg(0).queueCost()
	if res.maxQueued <= bound || res.maxQueued > bound+cost {
		t.Errorf("the slow client's queue held up to %d bytes, want more than the bound %d and at most one message (%d) more",
			res.maxQueued, bound, cost)
	}
	if !errors.Is(res.err, ErrQueueFull) || !strings.Contains(res.err.Error(), fmt.Sprintf("bound of %d bytes", bound)) {
		t.Errorf("the refused Send returned %v", res.err)
	}
	e := h.nextClose(t)
	if e.conn != slow || e.reason != "transport error" || e.cause != res.err {
		t.Errorf("closed %s: %q %v", e.conn.ID(), e.reason, e.cause)
	}
	if err := slow.Send(floodMsg(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after the close = %v", err)
	}
}

// TestSlowWebSocketClientDropped: a WebSocket client that completed the
// handshake and never reads again fills the kernel's buffers, then its
// queue; once the queue holds more than WriteQueueBytes the next Send closes
// it. Meanwhile a client that reads receives every message, and the sender
// never waits for either.
func TestSlowWebSocketClientDropped(t *testing.T) {
	const bound = 1 << 20
	h := newHarness(t, Config{WriteQueueBytes: bound}, false)
	// A small receive buffer keeps what the kernel absorbs before the
	// server's writer blocks small, so the queue fills sooner.
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_ = nc.(*net.TCPConn).SetReadBuffer(8 << 10)
		}
		return nc, err
	}}
	slowWS, _, err := d.Dial(h.wsURL("EIO=4&transport=websocket"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slowWS.Close() })
	read(t, slowWS) // the open packet; nothing more is ever read
	slow := h.nextConn(t)

	fastWS := h.dial(t, "EIO=4&transport=websocket")
	read(t, fastWS)
	fast := h.nextConn(t)
	recv := make(chan int, 64)
	go func() {
		defer close(recv)
		for {
			_, data, err := fastWS.ReadMessage()
			if err != nil {
				return
			}
			recv <- floodNumber(string(data))
		}
	}()

	// The kernel's buffers absorb a few megabytes (4 MiB of send buffer at
	// most by Linux's default), the queue 1 MiB.
	res := flood(t, slow, fast, recv, (bound+32<<20)/floodMsgSize)
	checkSlowClosed(t, h, slow, res, bound)
	fastWS.Close()
	for range recv {
	}
}

// TestSlowPollingClientDropped: a long-polling session without a pending
// GET queues everything it is sent; the Send that finds the queue past
// WriteQueueBytes closes it, after exactly as many messages as the bound
// holds plus one. A polling client that reads receives every message.
func TestSlowPollingClientDropped(t *testing.T) {
	const bound = 1 << 20
	h := newHarness(t, Config{WriteQueueBytes: bound}, false)
	_, slow := h.handshake(t) // no GET ever
	sid, fast := h.handshake(t)

	recv := make(chan int, 64)
	go func() {
		defer close(recv)
		for {
			resp, err := h.client.Get(h.url + "EIO=4&transport=polling&sid=" + sid)
			if err != nil {
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				return
			}
			for _, pkt := range strings.Split(string(body), "\x1e") {
				switch {
				case pkt == "1":
					return
				case pkt != "6":
					recv <- floodNumber(pkt)
				}
			}
		}
	}()

	res := flood(t, slow, fast, recv, 1000)
	if want := bound/floodMsg(0).queueCost() + 1; res.accepted != want {
		t.Errorf("the slow session took %d messages, want %d", res.accepted, want)
	}
	checkSlowClosed(t, h, slow, res, bound)
	fast.Close("forced close")
	for range recv {
	}
}
