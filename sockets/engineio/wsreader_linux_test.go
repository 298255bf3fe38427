//go:build linux

package engineio

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gorilla/websocket"
)

// frameReadersOut counts the pooled read buffers taken and not given back
// (a reader that ends on an error leaves its buffer to the GC). The hook is
// set before any test starts a connection.
var frameReadersOut atomic.Int64

func init() { testHookFrameReaders = func(d int) { frameReadersOut.Add(int64(d)) } }

// lingering reports whether a reader goroutine waits for a busy
// connection's next message.
func lingering() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "engineio.(*wsReader).linger(")
}

// TestBusyWebSocketReaderLingers: a connection whose messages follow each
// other keeps its reader waiting for the next one (no goroutine and stack
// growth per message), and parks once quiet for activeLinger, giving its
// read buffer back. Its first message does not make it busy.
func TestBusyWebSocketReaderLingers(t *testing.T) {
	h := newHarness(t, Config{}, true)
	out := frameReadersOut.Load()
	ws := h.dial(t, "EIO=4&transport=websocket")
	read(t, ws)
	h.nextConn(t)
	echo := func(msg string) {
		send(t, ws, websocket.TextMessage, msg)
		if _, got := read(t, ws); got != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
		h.nextMsg(t)
	}
	echo("4first")
	if lingering() {
		t.Fatal("a reader lingers after the connection's first message")
	}
	echo("4second")
	waitFor(t, "the busy reader to linger", lingering)
	waitFor(t, "the reader to park after activeLinger", func() bool { return !lingering() })
	waitFor(t, "the parked reader to give its read buffer back", func() bool { return frameReadersOut.Load() == out })
	echo("4after") // a parked reader still wakes up
}

// stackUser uses about 4 KiB of stack below its caller, as handling an op
// does (parse, transform, apply, broadcast).
//
//go:noinline
func stackUser() byte {
	var b [4096]byte
	for i := range b {
		b[i] = byte(i)
	}
	return b[len(b)-1] + b[0]
}

// TestBusyReaderKeepsItsStack: the GC does not halve a lingering reader's
// stack only for the next message to grow it back (two stack copies per
// busy connection and GC cycle). A handler sees its stack grow when the
// address of its own local changes across a deep call.
//
// The race detector's larger frames change the depths this is about, so
// the test runs without it (scripts/test.sh runs it so).
func TestBusyReaderKeepsItsStack(t *testing.T) {
	if raceEnabled {
		t.Skip("stack depths differ under the race detector; scripts/test.sh runs this test without it")
	}
	grew := make(chan bool, 16)
	h := newHarness(t, Config{OnConnection: func(c *Conn) {
		c.OnMessage(func([]byte, bool) {
			var marker byte
			before := uintptr(unsafe.Pointer(&marker))
			marker = stackUser()
			grew <- uintptr(unsafe.Pointer(&marker)) != before
		})
	}}, false)
	ws := h.dial(t, "EIO=4&transport=websocket")
	read(t, ws)
	h.nextConn(t)
	message := func() bool {
		send(t, ws, websocket.TextMessage, "4m")
		select {
		case g := <-grew:
			return g
		case <-time.After(10 * time.Second):
			t.Fatal("no message handled")
			return false
		}
	}
	message() // a first message: the reader parks after it
	message() // a busy connection: this reader lingers, its stack grown
	waitFor(t, "the busy reader to linger", lingering)
	for round := range 4 {
		runtime.GC() // a GC cycle scans (and may shrink) the parked stack
		if message() {
			t.Fatalf("round %d: the lingering reader's stack was shrunk by the GC and grown again by the next message", round)
		}
		if !lingering() {
			t.Fatalf("round %d: the reader stopped lingering (this machine stalled for activeLinger?)", round)
		}
	}
}
