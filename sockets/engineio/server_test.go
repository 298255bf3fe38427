package engineio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var sidRE = regexp.MustCompile(`^[A-Za-z0-9_-]{20}$`)

func TestHandshakePolling(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond}, true)
	st, body, ctype := h.do(t, "GET", "EIO=4&transport=polling&foo=bar", "")
	if st != 200 || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("handshake = %d %q", st, ctype)
	}
	op := parseOpen(t, body)
	if !sidRE.MatchString(op.SID) {
		t.Errorf("sid %q is not 20 URL-safe characters", op.SID)
	}
	if len(op.Upgrades) != 1 || op.Upgrades[0] != "websocket" || op.PingInterval != 300 || op.PingTimeout != 200 || op.MaxPayload != 1000000 {
		t.Errorf("open packet = %+v", op)
	}
	c := h.nextConn(t)
	if c.ID() != op.SID || c.Transport() != "polling" || c.Request().URL.Query().Get("foo") != "bar" {
		t.Errorf("conn id %q transport %q query %v", c.ID(), c.Transport(), c.Request().URL.Query())
	}
	if n := h.srv.Count(); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}
	// Session ids differ.
	sid2, _ := h.handshake(t)
	if sid2 == op.SID {
		t.Error("two sessions got the same id")
	}
}

func TestHandshakeWebSocket(t *testing.T) {
	h := newHarness(t, Config{}, true)
	ws := h.dial(t, "EIO=4&transport=websocket")
	typ, data := read(t, ws)
	if typ != websocket.TextMessage {
		t.Fatalf("open packet frame type %d", typ)
	}
	op := parseOpen(t, data)
	if len(op.Upgrades) != 0 || op.Upgrades == nil || op.PingInterval != 25000 || op.PingTimeout != 20000 || op.MaxPayload != 1000000 {
		t.Errorf("open packet = %+v (%s)", op, data)
	}
	c := h.nextConn(t)
	if c.ID() != op.SID || c.Transport() != "websocket" {
		t.Errorf("conn %q transport %q", c.ID(), c.Transport())
	}
	send(t, ws, websocket.TextMessage, "4hello")
	if typ, data := read(t, ws); typ != websocket.TextMessage || data != "4hello" {
		t.Errorf("echo = %d %q", typ, data)
	}
	send(t, ws, websocket.BinaryMessage, "\x01\x02\x03\x04")
	if typ, data := read(t, ws); typ != websocket.BinaryMessage || data != "\x01\x02\x03\x04" {
		t.Errorf("binary echo = %d %q", typ, data)
	}
	if e := h.nextMsg(t); e.data != "hello" || e.binary {
		t.Errorf("OnMessage got %+v", e)
	}
	if e := h.nextMsg(t); e.data != "\x01\x02\x03\x04" || !e.binary {
		t.Errorf("OnMessage got %+v", e)
	}
	ws.Close()
	if e := h.nextClose(t); e.reason != "transport close" {
		t.Errorf("close reason %q", e.reason)
	}
	waitFor(t, "the session to be forgotten", func() bool { return h.srv.Count() == 0 })
}

func TestHTTPErrors(t *testing.T) {
	h := newHarness(t, Config{}, true)
	bodies := map[int]string{
		0: `{"code":0,"message":"Transport unknown"}`,
		1: `{"code":1,"message":"Session ID unknown"}`,
		2: `{"code":2,"message":"Bad handshake method"}`,
		3: `{"code":3,"message":"Bad request"}`,
		5: `{"code":5,"message":"Unsupported protocol version"}`,
	}
	tests := []struct {
		name, method, query string
		code                int
	}{
		{"no transport", "GET", "EIO=4", 0},
		{"unknown transport", "GET", "EIO=4&transport=abc", 0},
		{"no EIO", "GET", "transport=polling", 5},
		{"EIO 3", "GET", "EIO=3&transport=polling", 5},
		{"EIO abc", "GET", "EIO=abc&transport=polling", 5},
		{"POST handshake", "POST", "EIO=4&transport=polling", 2},
		{"PUT handshake", "PUT", "EIO=4&transport=polling", 2},
		{"unknown sid GET", "GET", "EIO=4&transport=polling&sid=nope", 1},
		{"unknown sid POST", "POST", "EIO=4&transport=polling&sid=nope", 1},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body, ctype := h.do(t, tt.method, tt.query, "4x")
			if st != 400 || body != bodies[tt.code] || ctype != "application/json" {
				t.Fatalf("%s %s = %d %q %q; want 400 %q", tt.method, tt.query, st, body, ctype, bodies[tt.code])
			}
		})
	}
	t.Run("bad method on a session", func(t *testing.T) {
		sid, _ := h.handshake(t)
		st, body, _ := h.do(t, "PUT", "EIO=4&transport=polling&sid="+sid, "4x")
		if st != 400 || body != bodies[3] {
			t.Fatalf("PUT = %d %q", st, body)
		}
	})
	t.Run("websocket handshake errors", func(t *testing.T) {
		for _, q := range []string{"transport=websocket", "EIO=abc&transport=websocket", "EIO=4", "EIO=4&transport=abc", "EIO=4&transport=websocket&sid=nope"} {
			ws, resp, err := websocket.DefaultDialer.Dial(h.wsURL(q), nil)
			if err == nil {
				ws.Close()
				t.Errorf("%s: dial succeeded", q)
				continue
			}
			if resp == nil || resp.StatusCode != 400 {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	t.Run("refused upgrades", func(t *testing.T) {
		sid, _ := h.handshake(t)
		headers := []struct {
			name           string
			key, version   string
			omitKey, omitV bool
		}{
			{name: "bogus key", key: "not-a-valid-key!!", version: "13"},
			{name: "no key", omitKey: true, version: "13"},
			{name: "version 12", key: "dGhlIHNhbXBsZSBub25jZQ==", version: "12"},
			{name: "no version", key: "dGhlIHNhbXBsZSBub25jZQ==", omitV: true},
		}
		for _, query := range []string{"EIO=4&transport=websocket", "EIO=4&transport=websocket&sid=" + sid} {
			for _, hd := range headers {
				req, err := http.NewRequest("GET", h.url+query, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				if !hd.omitKey {
					req.Header.Set("Sec-WebSocket-Key", hd.key)
				}
				if !hd.omitV {
					req.Header.Set("Sec-WebSocket-Version", hd.version)
				}
				resp, err := h.client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", hd.name, query, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 400 || string(body) != bodies[3] || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("%s, %s: %d %q, want 400 %q", hd.name, query, resp.StatusCode, body, bodies[3])
				}
			}
		}
		// The polling session whose upgrades were refused still works.
		if st, _, _ := h.do(t, "POST", "EIO=4&transport=polling&sid="+sid, "4still here"); st != 200 {
			t.Fatalf("POST after refused upgrades = %d", st)
		}
		if got := h.nextMsg(t).data; got != "still here" {
			t.Fatalf("message %q", got)
		}
	})
	if h.srv.Count() != 2 {
		t.Errorf("Count = %d, want 2 (only the sessions made on purpose)", h.srv.Count())
	}
}

func TestOriginAndCORS(t *testing.T) {
	request := func(t *testing.T, h *harness, method, origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, h.url+"EIO=4&transport=polling", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	t.Run("default same origin", func(t *testing.T) {
		h := newHarness(t, Config{}, true)
		if resp := request(t, h, "GET", ""); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("no Origin: %d %v", resp.StatusCode, resp.Header)
		}
		same := h.ts.URL
		resp := request(t, h, "GET", same)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != same || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("same origin: %d %v", resp.StatusCode, resp.Header)
		}
		if resp := request(t, h, "GET", "http://evil.example"); resp.StatusCode != 403 {
			t.Errorf("foreign origin: %d", resp.StatusCode)
		}
		if resp := request(t, h, "OPTIONS", "http://evil.example"); resp.StatusCode != 403 {
			t.Errorf("foreign preflight: %d", resp.StatusCode)
		}
		if resp := request(t, h, "OPTIONS", same); resp.StatusCode != 204 ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
			resp.Header.Get("Access-Control-Allow-Headers") != "content-type" {
			t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
		hdr := http.Header{"Origin": {"http://evil.example"}}
		if _, resp, err := websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket"), hdr); err == nil || resp == nil || resp.StatusCode != 403 {
			t.Errorf("foreign websocket: %v", err)
		}
	})
	t.Run("list", func(t *testing.T) {
		h := newHarness(t, Config{AllowedOrigins: []string{"https://app.example"}}, true)
		if resp := request(t, h, "GET", "https://app.example"); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Errorf("listed origin: %d %v", resp.StatusCode, resp.Header)
		}
		if resp := request(t, h, "GET", "https://other.example"); resp.StatusCode != 403 {
			t.Errorf("unlisted origin: %d", resp.StatusCode)
		}
	})
	t.Run("star", func(t *testing.T) {
		h := newHarness(t, Config{AllowedOrigins: []string{"*"}}, true)
		if resp := request(t, h, "GET", "https://any.example"); resp.StatusCode != 200 {
			t.Errorf("any origin: %d", resp.StatusCode)
		}
	})
	t.Run("func", func(t *testing.T) {
		h := newHarness(t, Config{CheckOrigin: func(r *http.Request) bool {
			return strings.HasSuffix(r.Header.Get("Origin"), ".good")
		}}, true)
		if resp := request(t, h, "GET", "http://a.good"); resp.StatusCode != 200 {
			t.Errorf("func allows: %d", resp.StatusCode)
		}
		if resp := request(t, h, "GET", h.ts.URL); resp.StatusCode != 403 {
			t.Errorf("func replaces same-origin: %d", resp.StatusCode)
		}
	})
}

func TestPollingRoundTrip(t *testing.T) {
	h := newHarness(t, Config{}, true)
	sid, _ := h.handshake(t)
	q := "EIO=4&transport=polling&sid=" + sid
	st, body, ctype := h.do(t, "POST", q, "4hello\x1ebAQIDBA==\x1e4héllo")
	if st != 200 || body != "ok" || !strings.HasPrefix(ctype, "text/html") {
		t.Fatalf("POST = %d %q %q", st, body, ctype)
	}
	want := []event{{data: "hello"}, {data: "\x01\x02\x03\x04", binary: true}, {data: "héllo"}}
	for _, w := range want {
		if e := h.nextMsg(t); e.data != w.data || e.binary != w.binary {
			t.Errorf("OnMessage got %q binary=%v, want %q binary=%v", e.data, e.binary, w.data, w.binary)
		}
	}
	st, body, _ = h.do(t, "GET", q, "")
	if st != 200 || body != "4hello\x1ebAQIDBA==\x1e4héllo" {
		t.Fatalf("GET = %d %q", st, body)
	}
	// A held GET is released by the next Send.
	done := make(chan string)
	go func() {
		_, body, _ := h.do(t, "GET", q, "")
		done <- body
	}()
	time.Sleep(20 * time.Millisecond)
	st, _, _ = h.do(t, "POST", q, "4later")
	if st != 200 {
		t.Fatal(st)
	}
	select {
	case body := <-done:
		if body != "4later" {
			t.Errorf("held GET = %q", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held GET not released")
	}
}

func TestPollingBadInput(t *testing.T) {
	h := newHarness(t, Config{MaxPayload: 100}, true)
	tests := []struct {
		name   string
		body   string
		status int
		reason string
		cause  error
	}{
		{"unknown type", "abc", 400, "parse error", ErrParse},
		{"invalid utf8", "4\xff\xfe", 400, "parse error", ErrParse},
		{"bad base64", "b!!", 400, "parse error", ErrParse},
		{"empty record", "4a\x1e\x1e4b", 400, "parse error", ErrParse},
		{"oversized", "4" + strings.Repeat("x", 100), 413, "transport error", ErrPayloadTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sid, _ := h.handshake(t)
			q := "EIO=4&transport=polling&sid=" + sid
			st, body, _ := h.do(t, "POST", q, tt.body)
			if st != tt.status {
				t.Fatalf("POST = %d %q, want %d", st, body, tt.status)
			}
			if tt.status == 400 && body != `{"code":3,"message":"Bad request"}` {
				t.Errorf("body %q", body)
			}
			e := h.nextClose(t)
			if e.reason != tt.reason || !errors.Is(e.cause, tt.cause) {
				t.Errorf("closed with %q %v, want %q %v", e.reason, e.cause, tt.reason, tt.cause)
			}
			if st, _, _ := h.do(t, "GET", q, ""); st != 400 {
				t.Errorf("GET after bad input = %d, want 400", st)
			}
		})
	}
	t.Run("oversized without length", func(t *testing.T) {
		sid, _ := h.handshake(t)
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write([]byte("4" + strings.Repeat("y", 200)))
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", h.url+"EIO=4&transport=polling&sid="+sid, pr)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("status %d", resp.StatusCode)
		}
		if e := h.nextClose(t); !errors.Is(e.cause, ErrPayloadTooLarge) {
			t.Errorf("cause %v", e.cause)
		}
	})
	if n := h.srv.Count(); n != 0 {
		t.Errorf("Count = %d after bad input", n)
	}
}

func TestPollingDuplicateGet(t *testing.T) {
	h := newHarness(t, Config{}, true)
	sid, _ := h.handshake(t)
	q := "EIO=4&transport=polling&sid=" + sid
	first := make(chan string)
	go func() {
		st, body, _ := h.do(t, "GET", q, "")
		first <- fmt.Sprint(st, " ", body)
	}()
	waitFor(t, "the first GET to be pending", func() bool {
		h.srv.mu.RLock()
		conn := h.srv.conns[sid]
		h.srv.mu.RUnlock()
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return conn.pollWaiting
	})
	if st, body, _ := h.do(t, "GET", q, ""); st != 400 || body != `{"code":3,"message":"Bad request"}` {
		t.Errorf("second GET = %d %q", st, body)
	}
	if got := <-first; got != "200 1" {
		t.Errorf("first GET = %q, want 200 1", got)
	}
	if e := h.nextClose(t); e.reason != "transport error" || !errors.Is(e.cause, ErrDuplicatePoll) {
		t.Errorf("close %q %v", e.reason, e.cause)
	}
	if st, _, _ := h.do(t, "GET", q, ""); st != 400 {
		t.Errorf("third GET = %d", st)
	}
}

// pendingGet waits until the session has a GET pending.
func pendingGet(t testing.TB, c *Conn) {
	t.Helper()
	waitFor(t, "a pending GET", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.pollWaiting
	})
}

func TestPollingClientGoesAway(t *testing.T) {
	h := newHarness(t, Config{}, true)
	sid, c := h.handshake(t)
	q := "EIO=4&transport=polling&sid=" + sid
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "GET", h.url+q, nil)
		if resp, err := h.client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	pendingGet(t, c)
	cancel()
	<-done
	if e := h.nextClose(t); e.reason != "transport close" {
		t.Errorf("reason %q", e.reason)
	}
	if st, _, _ := h.do(t, "GET", q, ""); st != 400 {
		t.Errorf("GET after abort = %d", st)
	}
}

func TestPollingClientClose(t *testing.T) {
	h := newHarness(t, Config{}, true)
	t.Run("with a pending GET", func(t *testing.T) {
		sid, c := h.handshake(t)
		q := "EIO=4&transport=polling&sid=" + sid
		got := make(chan string)
		go func() { _, body, _ := h.do(t, "GET", q, ""); got <- body }()
		pendingGet(t, c)
		if st, _, _ := h.do(t, "POST", q, "1"); st != 200 {
			t.Errorf("POST close = %d", st)
		}
		if body := <-got; body != "6" {
			t.Errorf("pending GET = %q, want noop", body)
		}
		if e := h.nextClose(t); e.reason != "transport close" {
			t.Errorf("reason %q", e.reason)
		}
		if st, _, _ := h.do(t, "GET", q, ""); st != 400 {
			t.Errorf("GET after close = %d", st)
		}
	})
	t.Run("GET after the close", func(t *testing.T) {
		sid, _ := h.handshake(t)
		q := "EIO=4&transport=polling&sid=" + sid
		if st, _, _ := h.do(t, "POST", q, "1"); st != 200 {
			t.Errorf("POST close = %d", st)
		}
		h.nextClose(t)
		if st, body, _ := h.do(t, "GET", q, ""); st != 200 || body != "6" {
			t.Errorf("GET = %d %q, want the noop", st, body)
		}
		if st, _, _ := h.do(t, "GET", q, ""); st != 400 {
			t.Errorf("second GET = %d", st)
		}
	})
}

func TestPollingServerClose(t *testing.T) {
	h := newHarness(t, Config{}, false)
	t.Run("no GET pending", func(t *testing.T) {
		sid, c := h.handshake(t)
		q := "EIO=4&transport=polling&sid=" + sid
		if err := c.Send(NewTextMessage([]byte("a")), NewBinaryMessage([]byte{9})); err != nil {
			t.Fatal(err)
		}
		c.Close("forced close")
		if e := h.nextClose(t); e.reason != "forced close" || e.cause != nil {
			t.Errorf("close %q %v", e.reason, e.cause)
		}
		if err := c.Send(NewTextMessage([]byte("late"))); !errors.Is(err, ErrClosed) {
			t.Errorf("Send after Close = %v", err)
		}
		// The queued messages first, the close packet in the next GET:
		// socket.io-client mishandles messages decoded with a close packet.
		if st, body, _ := h.do(t, "GET", q, ""); st != 200 || body != "4a\x1ebCQ==" {
			t.Errorf("GET = %d %q", st, body)
		}
		if st, body, _ := h.do(t, "GET", q, ""); st != 200 || body != "1" {
			t.Errorf("second GET = %d %q, want the close packet", st, body)
		}
		if st, _, _ := h.do(t, "GET", q, ""); st != 400 {
			t.Errorf("GET after = %d", st)
		}
		c.Close("again") // no second OnClose
	})
	t.Run("GET pending", func(t *testing.T) {
		sid, c := h.handshake(t)
		q := "EIO=4&transport=polling&sid=" + sid
		got := make(chan string)
		go func() { _, body, _ := h.do(t, "GET", q, ""); got <- body }()
		pendingGet(t, c)
		c.Close("server namespace disconnect")
		if body := <-got; body != "1" {
			t.Errorf("GET = %q", body)
		}
		if e := h.nextClose(t); e.reason != "server namespace disconnect" {
			t.Errorf("reason %q", e.reason)
		}
	})
	select {
	case e := <-h.closes:
		t.Errorf("extra OnClose %q", e.reason)
	default:
	}
}

func TestWebSocketBadInput(t *testing.T) {
	h := newHarness(t, Config{MaxPayload: 64}, true)
	tests := []struct {
		name   string
		typ    int
		data   string
		reason string
		cause  error
	}{
		{"unknown type", websocket.TextMessage, "abc", "parse error", ErrParse},
		{"empty text", websocket.TextMessage, "", "parse error", ErrParse},
		{"invalid utf8", websocket.TextMessage, "4\xff", "parse error", errWSInvalidUTF8},
		{"oversized", websocket.TextMessage, "4" + strings.Repeat("z", 64), "transport error", ErrPayloadTooLarge},
		{"oversized binary", websocket.BinaryMessage, strings.Repeat("z", 65), "transport error", ErrPayloadTooLarge},
		{"client close", websocket.TextMessage, "1", "transport close", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := h.dial(t, "EIO=4&transport=websocket")
			read(t, ws) // open
			h.nextConn(t)
			send(t, ws, tt.typ, tt.data)
			e := h.nextClose(t)
			if e.reason != tt.reason || !errors.Is(e.cause, tt.cause) {
				t.Errorf("close %q %v, want %q %v", e.reason, e.cause, tt.reason, tt.cause)
			}
			expectClosed(t, ws)
		})
	}
	// The limit is inclusive.
	ws := h.dial(t, "EIO=4&transport=websocket")
	read(t, ws)
	send(t, ws, websocket.TextMessage, "4"+strings.Repeat("z", 63))
	if _, data := read(t, ws); len(data) != 64 {
		t.Errorf("echo of a message at the limit: %d bytes", len(data))
	}
}

func TestWebSocketServerClose(t *testing.T) {
	h := newHarness(t, Config{}, false)
	ws := h.dial(t, "EIO=4&transport=websocket")
	read(t, ws)
	c := h.nextConn(t)
	for i := range 3 {
		if err := c.Send(NewTextMessage(fmt.Appendf(nil, "m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	c.Close("forced close")
	for _, want := range []string{"4m0", "4m1", "4m2", "1"} {
		if _, got := read(t, ws); got != want {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after the close packet: %v, want a normal close frame", err)
	}
	if e := h.nextClose(t); e.reason != "forced close" {
		t.Errorf("reason %q", e.reason)
	}
	if err := c.Send(NewTextMessage([]byte("x"))); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after close = %v", err)
	}
}

func TestMessageOrder(t *testing.T) {
	h := newHarness(t, Config{}, false)
	const n = 300
	t.Run("websocket", func(t *testing.T) {
		ws := h.dial(t, "EIO=4&transport=websocket")
		read(t, ws)
		h.nextConn(t)
		for i := range n {
			send(t, ws, websocket.TextMessage, fmt.Sprintf("4%d", i))
		}
		for i := range n {
			if e := h.nextMsg(t); e.data != fmt.Sprint(i) {
				t.Fatalf("message %d = %q", i, e.data)
			}
		}
	})
	t.Run("polling", func(t *testing.T) {
		sid, _ := h.handshake(t)
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(0x1e)
			}
			fmt.Fprintf(&b, "4%d", i)
		}
		if st, _, _ := h.do(t, "POST", "EIO=4&transport=polling&sid="+sid, b.String()); st != 200 {
			t.Fatal(st)
		}
		for i := range n {
			if e := h.nextMsg(t); e.data != fmt.Sprint(i) {
				t.Fatalf("message %d = %q", i, e.data)
			}
		}
	})
}

// TestSendQueueBytes: the queue takes messages of any size while it holds at
// most WriteQueueBytes; past it TrySend drops and Send closes the session
// with a cause that tells the bytes queued and the bound.
func TestSendQueueBytes(t *testing.T) {
	m := func(s string) *Message { return NewTextMessage([]byte(s)) }
	cost := m("a").queueCost()
	if cost != 2+64 {
		t.Fatalf("a one-byte text message counts %d bytes, want its frame payload (2) + 64", cost)
	}
	if b := NewBinaryMessage([]byte("ab")).queueCost(); b != 2+64 {
		t.Fatalf("a two-byte binary message counts %d bytes, want 2 + 64", b)
	}
	bound := 2 * cost
	h := newHarness(t, Config{WriteQueueBytes: bound}, false)
	sid, c := h.handshake(t)
	if err := c.Send(m("a"), m("b")); err != nil {
		t.Fatal(err)
	}
	// At the bound, not past it: taken.
	if err := c.TrySend(m("c")); err != nil {
		t.Fatalf("TrySend at the bound = %v", err)
	}
	// Past it: dropped, all of them.
	if err := c.TrySend(m("x"), m("y")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("TrySend past the bound = %v, want ErrQueueFull", err)
	}
	q := "EIO=4&transport=polling&sid=" + sid
	if st, body, _ := h.do(t, "GET", q, ""); st != 200 || body != "4a\x1e4b\x1e4c" {
		t.Fatalf("GET = %d %q", st, body)
	}
	// Emptied by the GET: a message ten times the bound is taken, and then
	// nothing more.
	big := strings.Repeat("z", 10*bound)
	if err := c.Send(m(big)); err != nil {
		t.Fatalf("Send of a large message into an empty queue = %v", err)
	}
	if err := c.TrySend(m("d")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("TrySend = %v, want ErrQueueFull", err)
	}
	err := c.Send(m("over"))
	if !errors.Is(err, ErrQueueFull) || !strings.Contains(err.Error(), fmt.Sprint(10*bound+1+64, " bytes queued")) ||
		!strings.Contains(err.Error(), fmt.Sprint("bound of ", bound, " bytes")) {
		t.Fatalf("Send past the bound = %v", err)
	}
	if e := h.nextClose(t); e.reason != "transport error" || e.cause != err {
		t.Errorf("close %q %v, want transport error, %v", e.reason, e.cause, err)
	}
	if err := c.Send(m("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after = %v", err)
	}
}

// TestDefaultWriteQueueBytes: 4 MiB, or two of the largest messages a client
// may send.
func TestDefaultWriteQueueBytes(t *testing.T) {
	for _, tc := range []struct{ cfg, want int }{{0, 4 << 20}, {3 << 20, 6 << 20}, {100, 4 << 20}} {
		srv := NewServer(Config{MaxPayload: tc.cfg})
		if got := srv.cfg.WriteQueueBytes; got != tc.want {
			t.Errorf("MaxPayload %d: WriteQueueBytes %d, want %d", tc.cfg, got, tc.want)
		}
	}
	if got := NewServer(Config{MaxPayload: 3 << 20, WriteQueueBytes: 1000}).cfg.WriteQueueBytes; got != 1000 {
		t.Errorf("a WriteQueueBytes given is kept: %d", got)
	}
}

func TestShutdown(t *testing.T) {
	h := newHarness(t, Config{}, true)
	ws := h.dial(t, "EIO=4&transport=websocket")
	read(t, ws)
	wsConn := h.nextConn(t)
	sid, pc := h.handshake(t)
	got := make(chan string)
	go func() { _, body, _ := h.do(t, "GET", "EIO=4&transport=polling&sid="+sid, ""); got <- body }()
	pendingGet(t, pc)
	_, idle := h.handshake(t)
	if err := wsConn.Send(NewTextMessage([]byte("bye"))); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for range 3 {
		e := h.nextClose(t)
		reasons[e.conn.ID()] = e.reason
	}
	for _, c := range []*Conn{wsConn, pc, idle} {
		if reasons[c.ID()] != "server shutting down" {
			t.Errorf("%s closed with %q", c.Transport(), reasons[c.ID()])
		}
	}
	if body := <-got; body != "1" {
		t.Errorf("pending GET = %q", body)
	}
	if _, data := read(t, ws); data != "4bye" {
		t.Errorf("ws got %q before the close", data)
	}
	if _, data := read(t, ws); data != "1" {
		t.Errorf("ws got %q, want the close packet", data)
	}
	if n := h.srv.Count(); n != 0 {
		t.Errorf("Count = %d", n)
	}
	h.srv.mu.RLock()
	left := len(h.srv.conns)
	h.srv.mu.RUnlock()
	if left != 0 {
		t.Errorf("%d sessions still registered", left)
	}
	if st, _, _ := h.do(t, "GET", "EIO=4&transport=polling", ""); st != http.StatusServiceUnavailable {
		t.Errorf("handshake after Shutdown = %d", st)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket"), nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("WebSocket handshake after Shutdown: %v", err)
	}
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
}

func TestConcurrentSendAndClose(t *testing.T) {
	h := newHarness(t, Config{WriteQueueBytes: 64 * NewTextMessage([]byte("tick")).queueCost()}, false)
	var conns []*Conn
	var sockets []*websocket.Conn
	for range 20 {
		ws := h.dial(t, "EIO=4&transport=websocket")
		read(t, ws)
		sockets = append(sockets, ws)
		conns = append(conns, h.nextConn(t))
	}
	// Readers drain until closed.
	var wg sync.WaitGroup
	for _, ws := range sockets {
		wg.Go(func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		})
	}
	msg := NewTextMessage([]byte("tick"))
	var senders sync.WaitGroup
	for range 4 {
		senders.Go(func() {
			for range 200 {
				for _, c := range conns {
					_ = c.TrySend(msg)
				}
			}
		})
	}
	for i, c := range conns {
		if i%2 == 0 {
			go c.Close("forced close")
		}
	}
	senders.Wait()
	for _, ws := range sockets[1:] {
		ws.Close()
	}
	sockets[0].Close()
	wg.Wait()
	for range conns {
		h.nextClose(t)
	}
}

// TestNoLeftovers closes sessions in every way and checks that no session,
// queue or tracked goroutine is left (goleak checks the rest at exit).
func TestNoLeftovers(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond}, true)
	// WebSocket: client goes away, client close packet, server close, parse error.
	for i, how := range []string{"drop", "1", "server", "abc"} {
		ws := h.dial(t, "EIO=4&transport=websocket")
		read(t, ws)
		c := h.nextConn(t)
		switch how {
		case "drop":
			ws.Close()
		case "server":
			c.Close("forced close")
		default:
			send(t, ws, websocket.TextMessage, how)
		}
		h.nextClose(t)
		_ = i
	}
	// Polling: ping timeout, parse error, server close.
	sid, _ := h.handshake(t)
	h.nextClose(t) // ping timeout after 100ms
	if st, _, _ := h.do(t, "GET", "EIO=4&transport=polling&sid="+sid, ""); st != 400 {
		t.Errorf("GET after the timeout = %d", st)
	}
	sid, _ = h.handshake(t)
	h.do(t, "POST", "EIO=4&transport=polling&sid="+sid, "x")
	h.nextClose(t)
	waitFor(t, "no session and no goroutine left", func() bool {
		h.srv.mu.RLock()
		n := len(h.srv.conns)
		h.srv.mu.RUnlock()
		return n == 0 && h.srv.active.Load() == 0 && h.srv.Count() == 0
	})
}

// A polling client between two GETs when Shutdown starts still reads the
// close packet with its next GET: socket.io-client then reports "transport
// close" rather than "transport error".
// TestShutdownWaitsForOnClose: Shutdown returns only after an OnClose that
// a Close on another goroutine started before it (a connect timer, say) has
// returned, so the layer above can count on no callback running after.
func TestShutdownWaitsForOnClose(t *testing.T) {
	h := newHarness(t, Config{}, true)
	ws := h.dial(t, "EIO=4&transport=websocket")
	read(t, ws)
	c := h.nextConn(t)
	entered, release := make(chan struct{}), make(chan struct{})
	c.OnClose(func(string, error) {
		close(entered)
		<-release
	})
	go c.Close("closed by a timer")
	<-entered
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- h.srv.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while an OnClose was still running", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

func TestShutdownPollingBetweenGets(t *testing.T) {
	h := newHarness(t, Config{}, true)
	sid, pc := h.handshake(t)
	if err := pc.Send(NewTextMessage([]byte("last"))); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	if e := h.nextClose(t); e.reason != "server shutting down" {
		t.Fatalf("closed with %q", e.reason)
	}
	st, body, _ := h.do(t, "GET", "EIO=4&transport=polling&sid="+sid, "")
	if st != http.StatusOK || body != "4last\x1e1" {
		t.Errorf("GET after Shutdown started = %d %q, want the message and the close packet", st, body)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if st, _, _ := h.do(t, "GET", "EIO=4&transport=polling&sid="+sid, ""); st != http.StatusBadRequest {
		t.Errorf("GET after the close packet = %d, want 400", st)
	}
}

// TestConnRequest: Conn.Request is the handshake request as promised (URL,
// query, headers without the WebSocket handshake ones, host, remote
// address), built on first use, the same value on every call.
func TestConnRequest(t *testing.T) {
	h := newHarness(t, Config{}, false)
	hdr := http.Header{"X-Trace": {"abc", "def"}, "Cookie": {"session=1"}}
	ws, _, err := websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket&token=t1"), hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	read(t, ws)
	c := h.nextConn(t)
	r := c.Request()
	if r != c.Request() {
		t.Error("Request returns a new value on each call")
	}
	if r.Method != http.MethodGet || r.URL.Path != "/engine.io/" || r.URL.Query().Get("token") != "t1" ||
		r.RequestURI != "/engine.io/?EIO=4&transport=websocket&token=t1" || r.ProtoMajor != 1 || r.ProtoMinor != 1 {
		t.Errorf("request line: %s %v %q HTTP/%d.%d", r.Method, r.URL, r.RequestURI, r.ProtoMajor, r.ProtoMinor)
	}
	if got := r.Header["X-Trace"]; len(got) != 2 || got[0] != "abc" || got[1] != "def" || r.Header.Get("Cookie") != "session=1" {
		t.Errorf("headers %v", r.Header)
	}
	for _, k := range []string{"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version"} {
		if _, ok := r.Header[k]; ok {
			t.Errorf("handshake header %s kept", k)
		}
	}
	if r.Host != strings.TrimPrefix(h.ts.URL, "http://") || r.RemoteAddr == "" || r.Body != http.NoBody {
		t.Errorf("host %q remote %q body %v", r.Host, r.RemoteAddr, r.Body)
	}
}

// TestWebSocketOverTLS: a WebSocket without a file descriptor to poll (TLS)
// keeps a reader goroutine of its own; messages, fragments and pings work
// and the session closes cleanly.
func TestWebSocketOverTLS(t *testing.T) {
	got := make(chan string, 16)
	closed := make(chan string, 1)
	srv := NewServer(Config{OnConnection: func(c *Conn) {
		c.OnMessage(func(data []byte, binary bool) {
			got <- string(data)
			_ = c.Send(NewTextMessage(append([]byte(nil), data...)))
		})
		c.OnClose(func(reason string, _ error) { closed <- reason })
	}})
	ts := httptest.NewTLSServer(srv)
	defer ts.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	d := websocket.Dialer{TLSClientConfig: ts.Client().Transport.(*http.Transport).TLSClientConfig}
	ws, _, err := d.Dial("wss"+strings.TrimPrefix(ts.URL, "https")+"/engine.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	read(t, ws) // open
	pong := make(chan string, 1)
	ws.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := ws.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		msg := fmt.Sprintf("4tls %d %s", i, strings.Repeat("x", i*5000))
		send(t, ws, websocket.TextMessage, msg)
		if _, data := read(t, ws); data != msg {
			t.Fatalf("echo %d: %d bytes, want %d", i, len(data), len(msg))
		}
		if m := <-got; m != msg[1:] {
			t.Fatalf("OnMessage %d bytes", len(m))
		}
	}
	select {
	case s := <-pong:
		if s != "hi" {
			t.Errorf("pong %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Error("no pong")
	}
	ws.Close()
	select {
	case r := <-closed:
		if r != "transport close" {
			t.Errorf("reason %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not closed")
	}
}
