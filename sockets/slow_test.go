package sockets

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestBroadcastDropsSlowMember: a broadcast to a room where one member never reads and one
// reads delivers every event to the reader, while the other is disconnected ("transport
// error") once its queue holds more than WriteQueueBytes, that is after the bound plus what
// the kernel's buffers absorb, not after a number of messages; Stats.SlowClosed (collabd's
// collabd_slow_clients_closed_total) counts it once.
func TestBroadcastDropsSlowMember(t *testing.T) {
	const bound, size = 1 << 20, 64 << 10
	srv, url := newTestServer(t, Config{WriteQueueBytes: bound})
	reasons := make(chan string, 4)
	srv.OnConnection(func(s *Socket) {
		s.Join("room")
		s.OnDisconnect(func(s *Socket, reason string) { reasons <- s.ID() + " " + reason })
	})

	// The slow member: a WebSocket with a small receive buffer that connects to "/" and then
	// never reads again.
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_ = nc.(*net.TCPConn).SetReadBuffer(8 << 10)
		}
		return nc, err
	}}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(waitTime))
	if _, open, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(open), "0") {
		t.Fatalf("open %q: %v", open, err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		t.Fatal(err)
	}
	_, ack, err := ws.ReadMessage()
	if err != nil || !strings.HasPrefix(string(ack), `40{"sid":"`) {
		t.Fatalf("connect ack %q: %v", ack, err)
	}
	slowID := strings.TrimSuffix(strings.TrimPrefix(string(ack), `40{"sid":"`), `"}`)

	fast := dial(t, url)
	fast.connect("/", "")
	room := srv.To("room")
	for deadline := time.Now().Add(waitTime); ; time.Sleep(time.Millisecond) {
		if rs, _ := room.FetchSockets(context.Background()); len(rs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the two members never joined the room")
		}
	}

	// The kernel's buffers take a few megabytes before the server's writer blocks (4 MiB of
	// send buffer at most by Linux's default); a queue bounded by a number of messages (1,024
	// before) would take 64 MiB of these more.
	limit := (bound + 32<<20) / size
	pad := strings.Repeat("x", size)
	sent := 0
	for ; srv.Stats().SlowClosed == 0; sent++ {
		if sent == limit {
			t.Fatalf("the slow member still connected after %d broadcasts of %d bytes", limit, size)
		}
		if err := room.Emit("big", sent, pad); err != nil {
			t.Fatal(err)
		}
		fast.expect(fmt.Sprintf(`2["big",%d,"%s"]`, sent, pad))
	}
	select {
	case r := <-reasons:
		if r != slowID+" "+ReasonTransportError {
			t.Fatalf("disconnected: %s, want %s %s", r, slowID, ReasonTransportError)
		}
	case <-time.After(waitTime):
		t.Fatal("the slow member's socket was not disconnected")
	}
	// The reader goes on receiving; the counters counted one slow client and no drop.
	if err := room.Emit("big", sent, "after"); err != nil {
		t.Fatal(err)
	}
	fast.expect(fmt.Sprintf(`2["big",%d,"after"]`, sent))
	if st := srv.Stats(); st.SlowClosed != 1 || st.Dropped != 0 || st.Sockets != 1 {
		t.Fatalf("stats %+v", st)
	}
}
