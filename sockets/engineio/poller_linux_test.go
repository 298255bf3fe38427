//go:build linux

package engineio

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/gorilla/websocket"
)

// TestIdleWebSocketsHoldNoGoroutine: once their messages are handled, idle
// WebSocket sessions are parked in the poller (Linux): no goroutine each.
// They wake for the next message, and closing them while parked leaves
// nothing running.
func TestIdleWebSocketsHoldNoGoroutine(t *testing.T) {
	h := newHarness(t, Config{}, true)
	const n = 64
	before := runtime.NumGoroutine()
	wss := make([]*websocket.Conn, n)
	conns := make([]*Conn, n)
	for i := range wss {
		wss[i] = h.dial(t, "EIO=4&transport=websocket")
		read(t, wss[i]) // open packet
		conns[i] = h.nextConn(t)
	}
	roundTrip := func(round int) {
		for i, ws := range wss {
			msg := fmt.Sprintf("4m%d-%d", round, i)
			send(t, ws, websocket.TextMessage, msg)
			if _, got := read(t, ws); got != msg {
				t.Fatalf("echo %q, want %q", got, msg)
			}
			h.nextMsg(t)
		}
	}
	roundTrip(0)
	waitFor(t, "the readers to park", func() bool { return runtime.NumGoroutine()-before < n/4 })
	roundTrip(1) // parked readers wake up
	waitFor(t, "the readers to park again", func() bool { return runtime.NumGoroutine()-before < n/4 })
	if h.srv.idlePoller() == nil {
		t.Fatal("no poller")
	}
	for _, c := range conns {
		c.Close("forced close")
	}
	for range conns {
		h.nextClose(t)
	}
	waitFor(t, "nothing tracked", func() bool { return h.srv.active.Load() == 0 })
	h.srv.idlePoller().mu.Lock()
	armed := len(h.srv.idlePoller().readers)
	h.srv.idlePoller().mu.Unlock()
	if armed != 0 {
		t.Fatalf("%d connections still armed after their close", armed)
	}
}
