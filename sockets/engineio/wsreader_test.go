package engineio

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// readModes are the two WebSocket read strategies every reader test runs
// against.
var readModes = []struct {
	name     string
	blocking bool
}{
	{"parked", false},
	{"blocking", true},
}

// lingerForever makes a busy reader wait for its next message as long as
// the test runs, so that a frame the reader overlooks is never picked up
// by the park that follows a linger's timeout: the test then fails instead
// of passing a second later.
func lingerForever(t *testing.T) {
	old := activeLinger
	activeLinger = time.Hour
	t.Cleanup(func() { activeLinger = old })
}

// TestFramesArrivingTogether: every frame that reaches the server in one
// TCP write is handled at once, however the frames fall across the
// reader's buffer (a large frame read past the buffer straight into the
// message, then a small one; many small ones; sizes across the 4 KiB
// buffer's edge), on a busy connection whose reader lingers and on an
// idle one whose reader is parked.
func TestFramesArrivingTogether(t *testing.T) {
	lingerForever(t)
	sizes := map[string][]int{
		"large then small":   {70000, 10},
		"small then large":   {10, 70000, 10},
		"100 small":          repeat(100, 100),
		"across buffer edge": {4000, 90, 4096, 4097, 1, 8190, 3},
		"twelve of 5 KB":     repeat(12, 5000),
		"twelve of 64 KB":    repeat(12, 64<<10),
	}
	for _, mode := range readModes {
		for name, burst := range sizes {
			for _, busy := range []bool{true, false} {
				state := "idle"
				if busy {
					state = "busy"
				}
				t.Run(fmt.Sprintf("%s/%s/%s", mode.name, state, name), func(t *testing.T) {
					h := newHarness(t, Config{BlockingReads: mode.blocking}, true)
					ws := h.dial(t, "EIO=4&transport=websocket")
					read(t, ws) // open packet
					h.nextConn(t)
					if busy {
						// Two messages in a row make the connection busy:
						// its reader now lingers for the next one.
						for _, m := range []string{"4one", "4two"} {
							send(t, ws, websocket.TextMessage, m)
							read(t, ws)
							h.nextMsg(t)
						}
					}
					var frames []byte
					var want []string
					for i, n := range burst {
						msg := fmt.Sprintf("4%d:", i)
						msg += strings.Repeat("x", max(0, n-len(msg)))
						want = append(want, msg)
						frames = append(frames, clientFrame(true, opText, []byte(msg), testKey)...)
					}
					writeAll(t, ws.UnderlyingConn(), frames)
					for i, w := range want {
						_, got := read(t, ws)
						if got != w {
							t.Fatalf("echo %d: got %d bytes %.12q, want %d bytes %.12q", i, len(got), got, len(w), w)
						}
					}
				})
			}
		}
	}
}

// TestFramesSplitAcrossWrites: a message whose frame arrives in pieces,
// the next frame's header in the same piece as the end of the previous
// one, is read whole, in both modes.
func TestFramesSplitAcrossWrites(t *testing.T) {
	lingerForever(t)
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, Config{BlockingReads: mode.blocking}, true)
			ws := h.dial(t, "EIO=4&transport=websocket")
			read(t, ws)
			h.nextConn(t)
			a := "4" + strings.Repeat("a", 9000)
			b := "4" + strings.Repeat("b", 20)
			frames := append(clientFrame(true, opText, []byte(a), testKey), clientFrame(true, opText, []byte(b), testKey)...)
			cuts := []int{1, 3, 4000, 9000, len(frames) - 5, len(frames)}
			prev := 0
			for _, cut := range cuts {
				writeAll(t, ws.UnderlyingConn(), frames[prev:cut])
				prev = cut
				time.Sleep(time.Millisecond) // let the reader see each piece alone
			}
			for _, w := range []string{a, b} {
				if _, got := read(t, ws); got != w {
					t.Fatalf("got %d bytes, want %d", len(got), len(w))
				}
			}
		})
	}
}

// TestBlockingReadsKeepOneGoroutine: with Config.BlockingReads each
// WebSocket has one reader goroutine for its whole life, parked in its
// read, and the poller is never started.
func TestBlockingReadsKeepOneGoroutine(t *testing.T) {
	h := newHarness(t, Config{BlockingReads: true}, true)
	ws := h.dial(t, "EIO=4&transport=websocket")
	read(t, ws)
	h.nextConn(t)
	for i := range 3 {
		msg := fmt.Sprintf("4m%d", i)
		send(t, ws, websocket.TextMessage, msg)
		if _, got := read(t, ws); got != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
	}
	waitFor(t, "one blocking reader", func() bool { return readerGoroutines("(*wsReader).runBlocking") == 1 })
	if h.srv.idlePoller() != nil {
		t.Fatal("the poller was started with BlockingReads")
	}
}

func repeat(n, size int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}

// writeAll writes b to c in a single Write.
func writeAll(t testing.TB, c net.Conn, b []byte) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Write(b); err != nil || n != len(b) {
		t.Fatalf("write: %d of %d bytes: %v", n, len(b), err)
	}
}

// readerGoroutines counts the goroutines whose stack holds fn.
func readerGoroutines(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(fn)) {
			n++
		}
	}
	return n
}
