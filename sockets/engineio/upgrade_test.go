package engineio

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestUpgradeWithPacketsInFlight upgrades a polling session to WebSocket,
// as engine.io-client does, while the server keeps sending: every message
// arrives once and in order, across both transports.
func TestUpgradeWithPacketsInFlight(t *testing.T) {
	for _, pace := range []time.Duration{0, 200 * time.Microsecond} {
		t.Run(fmt.Sprint("pace ", pace), func(t *testing.T) {
			h := newHarness(t, Config{}, false)
			sid, c := h.handshake(t)
			q := "EIO=4&transport=polling&sid=" + sid
			const n = 400

			// The server sends n messages in its own rhythm.
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				for i := range n {
					if err := c.Send(NewTextMessage(fmt.Appendf(nil, "%d", i))); err != nil {
						t.Errorf("Send %d: %v", i, err)
						return
					}
					if pace > 0 {
						time.Sleep(pace)
					}
				}
			}()

			var got []string
			var mu sync.Mutex // guards got
			record := func(pkts ...string) {
				mu.Lock()
				defer mu.Unlock()
				for _, p := range pkts {
					if strings.HasPrefix(p, "4") {
						got = append(got, p[1:])
					}
				}
			}

			// Polling loop, as engine.io-client runs it: once the probe is
			// answered it pauses, letting the GET in flight complete.
			var paused atomic.Bool
			pollDone := make(chan struct{})
			go func() {
				defer close(pollDone)
				for !paused.Load() {
					st, body, _ := h.do(t, "GET", q, "")
					if st != 200 {
						t.Errorf("GET = %d %q", st, body)
						return
					}
					pkts := strings.Split(body, "\x1e")
					record(pkts...)
					if pkts[len(pkts)-1] == "6" {
						return
					}
				}
			}()

			ws := h.dial(t, "EIO=4&transport=websocket&sid="+sid)
			send(t, ws, websocket.TextMessage, "2probe")
			if _, data := read(t, ws); data != "3probe" {
				t.Fatalf("probe answer %q", data)
			}
			paused.Store(true)
			<-pollDone
			send(t, ws, websocket.TextMessage, "5")
			for {
				mu.Lock()
				k := len(got)
				mu.Unlock()
				if k >= n {
					break
				}
				_, data := read(t, ws)
				record(data)
			}
			<-sent
			for i, g := range got {
				if g != fmt.Sprint(i) {
					t.Fatalf("message %d is %q (got %d messages)", i, g, len(got))
				}
			}
			waitFor(t, "the websocket transport", func() bool { return c.Transport() == "websocket" })
			// The polling transport is gone; the WebSocket works both ways.
			if st, _, _ := h.do(t, "GET", q, ""); st != 400 {
				t.Errorf("GET after the upgrade = %d", st)
			}
			send(t, ws, websocket.TextMessage, "4up")
			if e := h.nextMsg(t); e.data != "up" {
				t.Errorf("OnMessage after upgrade %q", e.data)
			}
			// A second upgrade of the same session is refused.
			ws2 := h.dial(t, "EIO=4&transport=websocket&sid="+sid)
			expectClosed(t, ws2)
			if err := c.Send(NewTextMessage([]byte("still"))); err != nil {
				t.Fatal(err)
			}
			if _, data := read(t, ws); data != "4still" {
				t.Errorf("after the refused upgrade: %q", data)
			}
		})
	}
}

// TestUpgradeAborted: a probe that fails leaves the session on polling.
func TestUpgradeAborted(t *testing.T) {
	h := newHarness(t, Config{UpgradeTimeout: 100 * time.Millisecond}, true)
	sid, c := h.handshake(t)
	q := "EIO=4&transport=polling&sid=" + sid

	t.Run("bad probe", func(t *testing.T) {
		ws := h.dial(t, "EIO=4&transport=websocket&sid="+sid)
		send(t, ws, websocket.TextMessage, "2nope")
		expectClosed(t, ws)
	})
	notUpgrading := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.upgrading
	}
	t.Run("no upgrade packet", func(t *testing.T) {
		waitFor(t, "the first upgrade to be abandoned", notUpgrading)
		ws := h.dial(t, "EIO=4&transport=websocket&sid="+sid)
		send(t, ws, websocket.TextMessage, "2probe")
		if _, data := read(t, ws); data != "3probe" {
			t.Fatal(data)
		}
		expectClosed(t, ws) // UpgradeTimeout
	})
	waitFor(t, "the upgrade to be abandoned", notUpgrading)
	if c.Transport() != "polling" {
		t.Fatalf("transport %q", c.Transport())
	}
	if st, _, _ := h.do(t, "POST", q, "4still polling"); st != 200 {
		t.Fatal(st)
	}
	if st, body, _ := h.do(t, "GET", q, ""); st != 200 || body != "4still polling" {
		t.Errorf("GET = %d %q", st, body)
	}
}

// TestUpgradeGetDuringUpgrade: a GET after the probe is answered with a
// noop; a GET sent after the upgrade packet is refused, however the two
// race on the server.
func TestUpgradeGetDuringUpgrade(t *testing.T) {
	h := newHarness(t, Config{}, true)
	for i := range 20 {
		sid, _ := h.handshake(t)
		q := "EIO=4&transport=polling&sid=" + sid
		ws := h.dial(t, "EIO=4&transport=websocket&sid="+sid)
		send(t, ws, websocket.TextMessage, "2probe")
		if _, data := read(t, ws); data != "3probe" {
			t.Fatal(data)
		}
		if i%2 == 0 {
			if st, body, _ := h.do(t, "GET", q, ""); st != 200 || body != "6" {
				t.Fatalf("GET after the probe = %d %q", st, body)
			}
			send(t, ws, websocket.TextMessage, "5")
		} else {
			send(t, ws, websocket.TextMessage, "5")
			if st, body, _ := h.do(t, "GET", q, ""); st != 400 {
				t.Fatalf("GET after the upgrade packet = %d %q", st, body)
			}
		}
		send(t, ws, websocket.TextMessage, "4hi")
		if _, data := read(t, ws); data != "4hi" {
			t.Fatalf("echo %q", data)
		}
		ws.Close()
	}
}

// TestUpgradeGetRacingTheProbe: whatever the client sent on the WebSocket
// before a GET decides the GET's answer, however the server's goroutines
// interleave: "2probe" and "5" sent back to back before the GET get it
// refused (400); a GET pending before the probe is released with a noop once
// the probe is answered, and the upgrade then completes.
func TestUpgradeGetRacingTheProbe(t *testing.T) {
	h := newHarness(t, Config{}, true)
	tests := []struct {
		name string
		run  func(t *testing.T, ws *websocket.Conn, q string)
	}{
		{"probe and upgrade, then GET", func(t *testing.T, ws *websocket.Conn, q string) {
			send(t, ws, websocket.TextMessage, "2probe")
			send(t, ws, websocket.TextMessage, "5")
			if st, body, _ := h.do(t, "GET", q, ""); st != 400 {
				t.Fatalf("GET after the upgrade packet = %d %q", st, body)
			}
			if _, data := read(t, ws); data != "3probe" {
				t.Fatalf("probe answer %q", data)
			}
		}},
		{"GET pending, then probe", func(t *testing.T, ws *websocket.Conn, q string) {
			type answer struct {
				st   int
				body string
			}
			got := make(chan answer, 1)
			go func() {
				st, body, _ := h.do(t, "GET", q, "")
				got <- answer{st, body}
			}()
			time.Sleep(20 * time.Millisecond) // let the GET be pending (either order must work)
			send(t, ws, websocket.TextMessage, "2probe")
			if _, data := read(t, ws); data != "3probe" {
				t.Fatalf("probe answer %q", data)
			}
			if a := <-got; a.st != 200 || a.body != "6" {
				t.Fatalf("pending GET = %d %q, want the noop", a.st, a.body)
			}
			send(t, ws, websocket.TextMessage, "5")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 10 {
				sid, c := h.handshake(t)
				q := "EIO=4&transport=polling&sid=" + sid
				ws := h.dial(t, "EIO=4&transport=websocket&sid="+sid)
				tt.run(t, ws, q)
				send(t, ws, websocket.TextMessage, "4hi")
				if _, data := read(t, ws); data != "4hi" {
					t.Fatalf("echo after the upgrade %q", data)
				}
				if c.Transport() != "websocket" {
					t.Fatalf("transport %q", c.Transport())
				}
				ws.Close()
			}
		})
	}
}
