package engineio

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// event is something the server reported to the application.
type event struct {
	conn   *Conn
	data   string
	binary bool
	reason string
	cause  error
}

// harness is a real loopback HTTP server around an engine Server.
type harness struct {
	srv    *Server
	ts     *httptest.Server
	client *http.Client
	url    string // the Engine.IO endpoint, with a trailing '?'

	conns  chan *Conn
	msgs   chan event
	closes chan event
}

// newHarness starts a server; with echo set, every message is sent back.
// Cleanup shuts it down and checks that every session is gone.
func newHarness(t testing.TB, cfg Config, echo bool) *harness {
	t.Helper()
	h := &harness{
		conns:  make(chan *Conn, 1<<14),
		msgs:   make(chan event, 4096),
		closes: make(chan event, 1<<14),
	}
	user := cfg.OnConnection
	cfg.OnConnection = func(c *Conn) {
		c.OnMessage(func(data []byte, binary bool) {
			d := append([]byte(nil), data...)
			h.msgs <- event{conn: c, data: string(d), binary: binary}
			if echo {
				if binary {
					_ = c.Send(NewBinaryMessage(d))
				} else {
					_ = c.Send(NewTextMessage(d))
				}
			}
		})
		c.OnClose(func(reason string, cause error) {
			h.closes <- event{conn: c, reason: reason, cause: cause}
		})
		if user != nil {
			user(c)
		}
		h.conns <- c
	}
	h.srv = NewServer(cfg)
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", h.srv)
	h.ts = httptest.NewServer(mux)
	tr := &http.Transport{}
	h.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	h.url = h.ts.URL + "/engine.io/?"
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		h.ts.Close()
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if n := h.srv.Count(); n != 0 {
			t.Errorf("Count after Shutdown = %d", n)
		}
	})
	return h
}

// do sends a request and returns the status, body and Content-Type.
func (h *harness) do(t testing.TB, method, query, body string) (int, string, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+query, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, query, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, query, err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("Content-Type")
}

// openPacket is the decoded open packet.
type openPacket struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// parseOpen checks the open packet's exact keys and decodes it.
func parseOpen(t testing.TB, pkt string) openPacket {
	t.Helper()
	if !strings.HasPrefix(pkt, "0") {
		t.Fatalf("open packet %q does not start with 0", pkt)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(pkt[1:]), &keys); err != nil {
		t.Fatalf("open packet %q: %v", pkt, err)
	}
	if len(keys) != 5 {
		t.Fatalf("open packet keys = %v, want exactly sid, upgrades, pingInterval, pingTimeout, maxPayload", keys)
	}
	var op openPacket
	if err := json.Unmarshal([]byte(pkt[1:]), &op); err != nil {
		t.Fatal(err)
	}
	return op
}

// handshake opens a polling session and returns its id and the server side
// Conn.
func (h *harness) handshake(t testing.TB) (string, *Conn) {
	t.Helper()
	st, body, _ := h.do(t, "GET", "EIO=4&transport=polling", "")
	if st != 200 {
		t.Fatalf("handshake: %d %s", st, body)
	}
	op := parseOpen(t, body)
	c := h.nextConn(t)
	if c.ID() != op.SID {
		t.Fatalf("OnConnection got sid %q, open packet says %q", c.ID(), op.SID)
	}
	return op.SID, c
}

func (h *harness) nextConn(t testing.TB) *Conn {
	t.Helper()
	select {
	case c := <-h.conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
		return nil
	}
}

func (h *harness) nextMsg(t testing.TB) event {
	t.Helper()
	select {
	case e := <-h.msgs:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
		return event{}
	}
}

func (h *harness) nextClose(t testing.TB) event {
	t.Helper()
	select {
	case e := <-h.closes:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no close")
		return event{}
	}
}

// wsURL returns the WebSocket URL for query.
func (h *harness) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(h.url, "http") + query
}

// dial opens a WebSocket; it is closed at cleanup.
func (h *harness) dial(t testing.TB, query string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(h.wsURL(query), nil)
	if err != nil {
		st := 0
		if resp != nil {
			st = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", query, err, st)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// read reads one WebSocket message with a timeout.
func read(t testing.TB, ws *websocket.Conn) (int, string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, string(data)
}

func send(t testing.TB, ws *websocket.Conn, typ int, data string) {
	t.Helper()
	if err := ws.WriteMessage(typ, []byte(data)); err != nil {
		t.Fatalf("write %q: %v", data, err)
	}
}

// expectClosed waits until the server closes ws.
func expectClosed(t testing.TB, ws *websocket.Conn) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatal("the server did not close the WebSocket")
			}
			return
		}
		if string(data) == "1" {
			continue
		}
	}
}

// waitFor polls cond until it is true or fails the test after 5s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// httptestRequest is a handshake request for sessions made without HTTP.
func httptestRequest() *http.Request {
	return httptest.NewRequest("GET", "/engine.io/?EIO=4&transport=polling", nil)
}
