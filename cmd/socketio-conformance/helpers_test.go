package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// startApp serves newApp(official) on a loopback httptest server and returns
// its base URL ("http://127.0.0.1:PORT").
func startApp(tb testing.TB, official bool) string {
	tb.Helper()
	a, err := newApp(official)
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(a.mux)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.shutdown(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		ts.Close()
	})
	return ts.URL
}

// httpDo sends one request and returns the status and body.
func httpDo(tb testing.TB, method, url, body string) (int, string) {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

// openInfo is the Engine.IO open packet.
type openInfo struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// parseOpen checks that s is an open packet with exactly the five keys and
// decodes it.
func parseOpen(tb testing.TB, s string) openInfo {
	tb.Helper()
	if !strings.HasPrefix(s, "0") {
		tb.Fatalf("open packet %q: want type 0", s)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s[1:]), &keys); err != nil {
		tb.Fatalf("open packet %q: %v", s, err)
	}
	if len(keys) != 5 {
		tb.Fatalf("open packet %q: want exactly sid, upgrades, pingInterval, pingTimeout, maxPayload", s)
	}
	var o openInfo
	if err := json.Unmarshal([]byte(s[1:]), &o); err != nil {
		tb.Fatalf("open packet %q: %v", s, err)
	}
	if o.SID == "" {
		tb.Fatalf("open packet %q: empty sid", s)
	}
	return o
}

// pollingSession opens a long-polling session at base+path and returns its
// URL (with sid) and the open packet.
func pollingSession(tb testing.TB, base, path string) (string, openInfo) {
	tb.Helper()
	code, body := httpDo(tb, "GET", base+path+"?EIO=4&transport=polling", "")
	if code != 200 {
		tb.Fatalf("handshake: status %d %q", code, body)
	}
	o := parseOpen(tb, body)
	return base + path + "?EIO=4&transport=polling&sid=" + o.SID, o
}

func wsURL(base, path, query string) string {
	return "ws" + strings.TrimPrefix(base, "http") + path + "?" + query
}

// wsDial opens a WebSocket; the connection is closed at cleanup.
func wsDial(tb testing.TB, url string) *websocket.Conn {
	tb.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	tb.Cleanup(func() { _ = ws.Close() })
	return ws
}

// wsRead reads one message within timeout.
func wsRead(tb testing.TB, ws *websocket.Conn, timeout time.Duration) (int, []byte) {
	tb.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(timeout))
	typ, msg, err := ws.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	return typ, msg
}

// wsReadText reads the next text message, skipping pings ("2") if skipPings.
func wsReadText(tb testing.TB, ws *websocket.Conn, skipPings bool) string {
	tb.Helper()
	for {
		typ, msg := wsRead(tb, ws, 5*time.Second)
		if typ != websocket.TextMessage {
			tb.Fatalf("got a binary frame %v, want text", msg)
		}
		if skipPings && string(msg) == "2" {
			continue
		}
		return string(msg)
	}
}

func wsSend(tb testing.TB, ws *websocket.Conn, typ int, msg string) {
	tb.Helper()
	if err := ws.WriteMessage(typ, []byte(msg)); err != nil {
		tb.Fatalf("write %q: %v", msg, err)
	}
}

// wsWaitClosed asserts that the server closes ws within timeout, skipping
// whatever it sends before.
func wsWaitClosed(tb testing.TB, ws *websocket.Conn, timeout time.Duration) {
	tb.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				tb.Fatalf("connection still open after %v", timeout)
			}
			return
		}
	}
}
