package sockets

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(benchClientsEnv); spec != "" {
		runBenchClients(spec) // the client process of BenchmarkBroadcast1000
		return
	}
	goleak.VerifyTestMain(m)
}

const waitTime = 5 * time.Second

// newTestServer starts srv on a loopback httptest server; both are shut down at cleanup.
func newTestServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return srv, hs.URL
}

type frame struct {
	data   string
	binary bool
}

// tclient is a minimal Engine.IO/Socket.IO client over a WebSocket: it answers pings and
// hands every other frame to the test.
type tclient struct {
	t      testing.TB
	ws     *websocket.Conn
	wmu    sync.Mutex // guards writes to ws
	frames chan frame
	closed chan struct{}
	stop   chan struct{}
	noPong bool
}

func dial(t testing.TB, base string) *tclient {
	return dialOpts(t, base, false)
}

func dialOpts(t testing.TB, base string, noPong bool) *tclient {
	t.Helper()
	return dialFull(t, base+"/socket.io/?EIO=4&transport=websocket", noPong)
}

// dialURL connects to a full http:// Engine.IO URL.
func dialURL(t testing.TB, url string) *tclient {
	t.Helper()
	return dialFull(t, url, false)
}

func dialFull(t testing.TB, url string, noPong bool) *tclient {
	t.Helper()
	u := "ws" + strings.TrimPrefix(url, "http")
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &tclient{t: t, ws: ws, frames: make(chan frame, 4096), closed: make(chan struct{}), stop: make(chan struct{}), noPong: noPong}
	_, open, err := ws.ReadMessage()
	if err != nil || !strings.HasPrefix(string(open), `0{"sid"`) {
		t.Fatalf("open packet %q: %v", open, err)
	}
	go c.read()
	t.Cleanup(func() {
		close(c.stop)
		ws.Close()
		<-c.closed
	})
	return c
}

func (c *tclient) read() {
	defer close(c.closed)
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if mt == websocket.TextMessage && string(data) == "2" {
			if !c.noPong {
				c.write(websocket.TextMessage, []byte("3"))
			}
			continue
		}
		select {
		case c.frames <- frame{string(data), mt == websocket.BinaryMessage}:
		case <-c.stop:
			return
		}
	}
}

func (c *tclient) write(mt int, data []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(mt, data)
}

// send sends a Socket.IO packet (the Engine.IO "4" prefix is added).
func (c *tclient) send(pkt string) { c.write(websocket.TextMessage, []byte("4"+pkt)) }

func (c *tclient) sendBin(b []byte) { c.write(websocket.BinaryMessage, b) }

func (c *tclient) next() frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.closed:
		select {
		case f := <-c.frames:
			return f
		default:
		}
		c.t.Fatal("connection closed while waiting for a frame")
	case <-time.After(waitTime):
		c.t.Fatal("timed out waiting for a frame")
	}
	return frame{}
}

// expect asserts that the next frame is the Socket.IO packet want.
func (c *tclient) expect(want string) {
	c.t.Helper()
	f := c.next()
	if f.binary || f.data != "4"+want {
		c.t.Fatalf("got frame %q (binary %v), want %q", f.data, f.binary, "4"+want)
	}
}

func (c *tclient) expectBin(want []byte) {
	c.t.Helper()
	f := c.next()
	if !f.binary || f.data != string(want) {
		c.t.Fatalf("got frame %q (binary %v), want binary %v", f.data, f.binary, want)
	}
}

// expectPrefix returns the next packet, which must start with prefix.
func (c *tclient) expectPrefix(prefix string) string {
	c.t.Helper()
	f := c.next()
	if f.binary || !strings.HasPrefix(f.data, "4"+prefix) {
		c.t.Fatalf("got frame %q, want prefix %q", f.data, "4"+prefix)
	}
	return f.data[1:]
}

func (c *tclient) expectClosed() {
	c.t.Helper()
	for {
		select {
		case <-c.frames:
		case <-c.closed:
			return
		case <-time.After(waitTime):
			c.t.Fatal("connection not closed")
		}
	}
}

func (c *tclient) expectSilence(d time.Duration) {
	c.t.Helper()
	select {
	case f := <-c.frames:
		c.t.Fatalf("unexpected frame %q", f.data)
	case <-time.After(d):
	}
}

// connect joins nsp ("/" or "/name") with an optional auth payload and returns the CONNECT
// acknowledgement's fields.
func (c *tclient) connect(nsp, auth string) (sid, pid string) {
	c.t.Helper()
	prefix := "0"
	if nsp != "/" {
		prefix += nsp + ","
	}
	c.send(prefix + auth)
	got := c.expectPrefix(prefix + "{")
	var ack struct {
		SID string `json:"sid"`
		PID string `json:"pid"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(got, prefix)), &ack); err != nil || ack.SID == "" {
		c.t.Fatalf("connect ack %q: %v", got, err)
	}
	return ack.SID, ack.PID
}
