package engineio

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
)

// TestHeartbeatPollingSynctest checks the heartbeat timing exactly, in a
// synctest bubble (the requests go straight to ServeHTTP).
func TestHeartbeatPollingSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex // guards closedAt, reason
		var closedAt time.Duration
		var reason string
		start := time.Now()
		srv := NewServer(Config{
			PingInterval: 300 * time.Millisecond,
			PingTimeout:  200 * time.Millisecond,
			OnConnection: func(c *Conn) {
				c.OnClose(func(r string, _ error) {
					mu.Lock()
					defer mu.Unlock()
					closedAt, reason = time.Since(start), r
				})
			},
		})
		serve := func(method, query, body string) (int, string) {
			req := httptest.NewRequest(method, "/engine.io/?"+query, strings.NewReader(body))
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			return rec.Code, rec.Body.String()
		}
		_, open := serve("GET", "EIO=4&transport=polling", "")
		sid := parseOpen(t, open).SID
		q := "EIO=4&transport=polling&sid=" + sid

		// The first ping comes PingInterval after the handshake.
		for i := 1; i <= 3; i++ {
			st, body := serve("GET", q, "")
			if st != 200 || body != "2" {
				t.Fatalf("poll %d = %d %q", i, st, body)
			}
			if got, want := time.Since(start), time.Duration(i)*300*time.Millisecond; got != want {
				t.Errorf("ping %d at %v, want %v", i, got, want)
			}
			if st, _ := serve("POST", q, "3"); st != 200 {
				t.Fatalf("pong %d = %d", i, st)
			}
		}
		// Last sign of life at 900ms: the session lives until 1400ms.
		time.Sleep(499 * time.Millisecond)
		if srv.Count() != 1 {
			t.Fatal("closed before the deadline")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if reason != "ping timeout" || closedAt != 1400*time.Millisecond {
			t.Errorf("closed at %v with %q, want 1.4s ping timeout", closedAt, reason)
		}
		mu.Unlock()
		if st, _ := serve("GET", q, ""); st != 400 {
			t.Errorf("GET after the timeout = %d", st)
		}
		if err := srv.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHeartbeatAnyPacketIsLife: messages keep a session alive without pongs.
func TestHeartbeatAnyPacketIsLife(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := NewServer(Config{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
		serve := func(method, query, body string) int {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(method, "/engine.io/?"+query, strings.NewReader(body)))
			return rec.Code
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", "/engine.io/?EIO=4&transport=polling", nil))
		q := "EIO=4&transport=polling&sid=" + parseOpen(t, rec.Body.String()).SID
		for range 10 {
			time.Sleep(400 * time.Millisecond)
			if st := serve("POST", q, "4still here"); st != http.StatusOK {
				t.Fatalf("POST = %d", st)
			}
		}
		if srv.Count() != 1 {
			t.Fatal("session closed despite messages")
		}
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		if srv.Count() != 0 {
			t.Fatal("silent session not closed")
		}
		if err := srv.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHeartbeatWebSocket runs the heartbeat over a real WebSocket with short
// intervals: answered pings keep it open, silence closes it. (The timeout is
// generous so that a loaded machine does not fail it; the exact timing is
// checked with synctest above.)
func TestHeartbeatWebSocket(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 100 * time.Millisecond, PingTimeout: 900 * time.Millisecond}, true)
	ws := h.dial(t, "EIO=4&transport=websocket")
	read(t, ws)
	c := h.nextConn(t)
	start := time.Now()
	for i := range 5 {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := ws.ReadMessage()
		if err != nil {
			e := h.nextClose(t)
			t.Fatalf("ping %d, after %v: %v; the server closed with %q %v", i, time.Since(start), err, e.reason, e.cause)
		}
		if string(data) != "2" {
			t.Fatalf("got %q, want a ping", data)
		}
		send(t, ws, websocket.TextMessage, "3")
	}
	select {
	case e := <-h.closes:
		t.Fatalf("closed while answering pings: %q", e.reason)
	default:
	}
	// Stop answering.
	if e := h.nextClose(t); e.reason != "ping timeout" || e.conn != c {
		t.Errorf("close %q", e.reason)
	}
	expectClosed(t, ws)
}
