package sockets

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// waitStats polls srv.Stats until ok accepts it or waitTime passes.
func waitStats(t testing.TB, srv *Server, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for {
		st := srv.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never as expected: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStatsCounts(t *testing.T) {
	srv, url := newTestServer(t, Config{})
	srv.Of("/chat")
	if st := srv.Stats(); st != (Stats{}) {
		t.Fatalf("fresh server: %+v", st)
	}
	a, b := dial(t, url), dial(t, url)
	a.connect("/", "")
	a.connect("/chat", "")
	b.connect("/", "")
	st := srv.Stats()
	if st.Connections != 2 || st.Sockets != 3 {
		t.Fatalf("two connections, three sockets: %+v", st)
	}
	// b leaves "/": the socket goes, the connection stays.
	b.send("1")
	waitStats(t, srv, func(st Stats) bool { return st.Sockets == 2 && st.Connections == 2 })
	a.ws.Close()
	st = waitStats(t, srv, func(st Stats) bool { return st.Sockets == 0 && st.Connections == 1 })
	if st.Dropped != 0 || st.SlowClosed != 0 {
		t.Fatalf("nothing dropped or closed for being slow: %+v", st)
	}
}

// TestStatsQueueOverflow fills the queue of a polling session, which drains only when its
// client polls, so the counts are exact.
func TestStatsQueueOverflow(t *testing.T) {
	// Each v event is the Engine.IO message 42["v","x"] and counts its length plus 64 bytes:
	// a bound one byte short of queue of them takes queue of them, and no more.
	const queue, cost = 8, len(`42["v","x"]`) + 64
	srv, url := newTestServer(t, Config{WriteQueueBytes: queue*cost - 1})
	p := &pollClient{t: t, url: url + "/socket.io/?EIO=4&transport=polling"}
	open := p.do("GET", "")
	var hs struct{ SID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(open, "0")), &hs); err != nil || hs.SID == "" {
		t.Fatalf("handshake %q: %v", open, err)
	}
	p.url += "&sid=" + hs.SID
	p.do("POST", "40")
	if got := p.do("GET", ""); !strings.HasPrefix(got, `40{"sid":`) {
		t.Fatalf("connect ack %q", got)
	}
	s := waitSocket(t, srv)
	for i := range queue + 3 {
		if err := s.EmitVolatile("v", "x"); err != nil && i < queue {
			t.Fatalf("volatile emit %d: %v", i, err)
		}
	}
	if st := srv.Stats(); st.Dropped != 3 || st.SlowClosed != 0 || st.Connections != 1 || st.Sockets != 1 {
		t.Fatalf("after %d volatile emits into a queue of %d: %+v", queue+3, queue, st)
	}
	if err := s.Emit("e", "overflow"); err == nil {
		t.Fatal("an emit into a full queue succeeded")
	}
	st := waitStats(t, srv, func(st Stats) bool { return st.Sockets == 0 })
	if st.SlowClosed != 1 || st.Dropped != 3 || st.Connections != 0 {
		t.Fatalf("after the overflow: %+v", st)
	}
	if r := s.DisconnectReason(); r != ReasonTransportError {
		t.Fatalf("reason %q", r)
	}
	// Further emits to the closed socket count nothing.
	_ = s.EmitVolatile("v", 0)
	if st2 := srv.Stats(); st2 != st {
		t.Fatalf("emits after the close changed the stats: %+v -> %+v", st, st2)
	}
}

// waitSocket returns the one socket of the main namespace.
func waitSocket(t testing.TB, srv *Server) *Socket {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for time.Now().Before(deadline) {
		srv.main.mu.RLock()
		for _, s := range srv.main.sockets {
			srv.main.mu.RUnlock()
			return s
		}
		srv.main.mu.RUnlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no socket connected")
	return nil
}
