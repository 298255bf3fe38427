package main

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// These tests cover, in our own code, the behaviours the official Engine.IO
// v4 protocol suite checks, against the --official plain Engine.IO echo
// server at /engine.io/ (pingInterval 300 ms, pingTimeout 200 ms).

const eioPath = "/engine.io/"

func TestEngineHandshake(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)

	t.Run("polling", func(t *testing.T) {
		_, o := pollingSession(t, base, eioPath)
		if len(o.Upgrades) != 1 || o.Upgrades[0] != "websocket" || o.PingInterval != 300 || o.PingTimeout != 200 || o.MaxPayload != 1000000 {
			t.Fatalf("open packet %+v", o)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		ws := wsDial(t, wsURL(base, eioPath, "EIO=4&transport=websocket"))
		o := parseOpen(t, wsReadText(t, ws, false))
		if o.Upgrades == nil || len(o.Upgrades) != 0 || o.PingInterval != 300 || o.PingTimeout != 200 || o.MaxPayload != 1000000 {
			t.Fatalf("open packet %+v", o)
		}
	})

	bad := []struct {
		name, method, query, body string
	}{
		{"no EIO", "GET", "transport=polling", `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO=abc", "GET", "EIO=abc&transport=polling", `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO=3", "GET", "EIO=3&transport=polling", `{"code":5,"message":"Unsupported protocol version"}`},
		{"no transport", "GET", "EIO=4", `{"code":0,"message":"Transport unknown"}`},
		{"transport=abc", "GET", "EIO=4&transport=abc", `{"code":0,"message":"Transport unknown"}`},
		{"POST handshake", "POST", "EIO=4&transport=polling", `{"code":2,"message":"Bad handshake method"}`},
		{"PUT handshake", "PUT", "EIO=4&transport=polling", `{"code":2,"message":"Bad handshake method"}`},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", `{"code":1,"message":"Session ID unknown"}`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			code, body := httpDo(t, tc.method, base+eioPath+"?"+tc.query, "")
			if code != http.StatusBadRequest || body != tc.body {
				t.Fatalf("got %d %q, want 400 %q", code, body, tc.body)
			}
		})
	}
	for _, q := range []string{"transport=websocket", "EIO=abc&transport=websocket", "EIO=4", "EIO=4&transport=abc"} {
		t.Run("websocket "+q, func(t *testing.T) {
			ws, resp, err := websocket.DefaultDialer.Dial(wsURL(base, eioPath, q), nil)
			if err == nil {
				ws.Close()
				t.Fatal("handshake accepted")
			}
			if resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("got %v, want a 400 answer", err)
			}
		})
	}
}

func TestEnginePollingMessages(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)
	for _, body := range []string{"4hello", "4test1\x1e4test2\x1e4test3", "4hello\x1ebAQIDBA==", "4é€😀"} {
		t.Run(body, func(t *testing.T) {
			u, _ := pollingSession(t, base, eioPath)
			if code, got := httpDo(t, "POST", u, body); code != 200 || got != "ok" {
				t.Fatalf("POST: %d %q", code, got)
			}
			if code, got := httpDo(t, "GET", u, ""); code != 200 || got != body {
				t.Fatalf("GET: %d %q, want %q", code, got, body)
			}
		})
	}
}

func TestEnginePollingInvalidPacketClosesSession(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)
	for _, body := range []string{"abc", "9", "", "bnot-base64!"} {
		t.Run(body, func(t *testing.T) {
			u, _ := pollingSession(t, base, eioPath)
			if code, _ := httpDo(t, "POST", u, body); code != 400 {
				t.Fatalf("POST %q: status %d, want 400", body, code)
			}
			if code, _ := httpDo(t, "GET", u, ""); code != 400 {
				t.Fatalf("GET after a bad POST: status %d, want 400", code)
			}
		})
	}
}

func TestEngineDuplicatePollClosesSession(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)
	u, _ := pollingSession(t, base, eioPath)
	var wg sync.WaitGroup
	var code1 int
	var body1 string
	wg.Add(1)
	go func() {
		defer wg.Done()
		code1, body1 = httpDo(t, "GET", u, "")
	}()
	time.Sleep(50 * time.Millisecond) // let the first GET be held
	code2, _ := httpDo(t, "GET", u+"&t=burst", "")
	wg.Wait()
	if code1 != 200 || body1 != "1" {
		t.Fatalf("first GET: %d %q, want 200 \"1\"", code1, body1)
	}
	if code2 != 400 && code2 != 500 {
		t.Fatalf("second GET: %d, want 400 or 500", code2)
	}
	if code, _ := httpDo(t, "GET", u, ""); code != 400 {
		t.Fatalf("GET after the burst: %d, want 400", code)
	}
}

func TestEngineWebSocketMessages(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)
	ws := wsDial(t, wsURL(base, eioPath, "EIO=4&transport=websocket"))
	parseOpen(t, wsReadText(t, ws, false))
	wsSend(t, ws, websocket.TextMessage, "4hello")
	if got := wsReadText(t, ws, true); got != "4hello" {
		t.Fatalf("text echo %q", got)
	}
	wsSend(t, ws, websocket.BinaryMessage, "\x01\x02\x03\x04")
	for {
		typ, msg := wsRead(t, ws, 5*time.Second)
		if typ == websocket.TextMessage && string(msg) == "2" {
			continue
		}
		if typ != websocket.BinaryMessage || !bytes.Equal(msg, []byte{1, 2, 3, 4}) {
			t.Fatalf("binary echo: type %d %v", typ, msg)
		}
		break
	}
	wsSend(t, ws, websocket.TextMessage, "abc")
	wsWaitClosed(t, ws, 2*time.Second)
}

func TestEngineHeartbeat(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)

	t.Run("polling ping pong", func(t *testing.T) {
		t.Parallel()
		u, _ := pollingSession(t, base, eioPath)
		for i := 0; i < 3; i++ {
			if code, body := httpDo(t, "GET", u, ""); code != 200 || body != "2" {
				t.Fatalf("poll %d: %d %q, want ping", i, code, body)
			}
			if code, body := httpDo(t, "POST", u, "3"); code != 200 || body != "ok" {
				t.Fatalf("pong %d: %d %q", i, code, body)
			}
		}
	})
	t.Run("polling ping timeout", func(t *testing.T) {
		t.Parallel()
		u, _ := pollingSession(t, base, eioPath)
		time.Sleep(500 * time.Millisecond)
		if code, _ := httpDo(t, "GET", u, ""); code != 400 {
			t.Fatalf("GET 500 ms after a silent handshake: %d, want 400", code)
		}
	})
	t.Run("websocket ping pong", func(t *testing.T) {
		t.Parallel()
		ws := wsDial(t, wsURL(base, eioPath, "EIO=4&transport=websocket"))
		parseOpen(t, wsReadText(t, ws, false))
		for i := 0; i < 3; i++ {
			if got := wsReadText(t, ws, false); got != "2" {
				t.Fatalf("message %d: %q, want ping", i, got)
			}
			wsSend(t, ws, websocket.TextMessage, "3")
		}
	})
	t.Run("websocket ping timeout", func(t *testing.T) {
		t.Parallel()
		ws := wsDial(t, wsURL(base, eioPath, "EIO=4&transport=websocket"))
		start := time.Now()
		wsWaitClosed(t, ws, 3*time.Second)
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Fatalf("closed after %v, before pingInterval+pingTimeout", d)
		}
	})
}

func TestEngineClose(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)
	t.Run("polling", func(t *testing.T) {
		u, _ := pollingSession(t, base, eioPath)
		var code int
		var body string
		done := make(chan struct{})
		go func() { defer close(done); code, body = httpDo(t, "GET", u, "") }()
		time.Sleep(50 * time.Millisecond)
		httpDo(t, "POST", u, "1")
		<-done
		if code != 200 || body != "6" {
			t.Fatalf("held GET: %d %q, want 200 noop", code, body)
		}
		if c, _ := httpDo(t, "GET", u, ""); c != 400 {
			t.Fatalf("GET after close: %d, want 400", c)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		ws := wsDial(t, wsURL(base, eioPath, "EIO=4&transport=websocket"))
		parseOpen(t, wsReadText(t, ws, false))
		wsSend(t, ws, websocket.TextMessage, "1")
		wsWaitClosed(t, ws, 2*time.Second)
	})
}

func TestEngineUpgrade(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)

	t.Run("probe noop upgrade", func(t *testing.T) {
		u, o := pollingSession(t, base, eioPath)
		ws := wsDial(t, wsURL(base, eioPath, "EIO=4&transport=websocket&sid="+o.SID))
		wsSend(t, ws, websocket.TextMessage, "2probe")
		if got := wsReadText(t, ws, false); got != "3probe" {
			t.Fatalf("probe answer %q", got)
		}
		if code, body := httpDo(t, "GET", u, ""); code != 200 || body != "6" {
			t.Fatalf("poll during upgrade: %d %q, want noop", code, body)
		}
		wsSend(t, ws, websocket.TextMessage, "5")
		wsSend(t, ws, websocket.TextMessage, "4hello")
		if got := wsReadText(t, ws, true); got != "4hello" {
			t.Fatalf("echo after upgrade %q", got)
		}
	})
	t.Run("polling refused after upgrade", func(t *testing.T) {
		u, o := pollingSession(t, base, eioPath)
		ws := wsDial(t, wsURL(base, eioPath, "EIO=4&transport=websocket&sid="+o.SID))
		wsSend(t, ws, websocket.TextMessage, "2probe")
		wsSend(t, ws, websocket.TextMessage, "5")
		if got := wsReadText(t, ws, false); got != "3probe" {
			t.Fatalf("probe answer %q", got)
		}
		if code, _ := httpDo(t, "GET", u, ""); code != 400 {
			t.Fatalf("poll after upgrade: %d, want 400", code)
		}
		wsSend(t, ws, websocket.TextMessage, "4hello")
		if got := wsReadText(t, ws, true); got != "4hello" {
			t.Fatalf("echo after upgrade %q", got)
		}
	})
}

// TestEngineSecondWebSocketAfterUpgrade: a second WebSocket for a session
// that is upgrading or upgraded is accepted and closed at once (as the Node
// server does); the session keeps working on its first WebSocket.
func TestEngineSecondWebSocketAfterUpgrade(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)
	_, o := pollingSession(t, base, eioPath)
	ws := wsDial(t, wsURL(base, eioPath, "EIO=4&transport=websocket&sid="+o.SID))
	wsSend(t, ws, websocket.TextMessage, "2probe")
	wsSend(t, ws, websocket.TextMessage, "5")
	if got := wsReadText(t, ws, false); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	ws2, resp, err := websocket.DefaultDialer.Dial(wsURL(base, eioPath, "EIO=4&transport=websocket&sid="+o.SID), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("second WebSocket refused with HTTP %d instead of open-then-close: %v", status, err)
	}
	defer ws2.Close()
	wsWaitClosed(t, ws2, 2*time.Second)
	wsSend(t, ws, websocket.TextMessage, "4hello")
	if got := wsReadText(t, ws, true); got != "4hello" {
		t.Fatalf("echo on the first WebSocket %q", got)
	}
}

// TestEnginePollAfterQuickUpgrade: a client that sends "2probe" and "5" back
// to back and then polls must get 400 (the session is on WebSocket now), as
// the official suites check, however the server's goroutines interleave.
func TestEnginePollAfterQuickUpgrade(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)
	fails := 0
	const rounds = 30
	for i := 0; i < rounds; i++ {
		u, o := pollingSession(t, base, eioPath)
		ws := wsDial(t, wsURL(base, eioPath, "EIO=4&transport=websocket&sid="+o.SID))
		wsSend(t, ws, websocket.TextMessage, "2probe")
		wsSend(t, ws, websocket.TextMessage, "5")
		if code, _ := httpDo(t, "GET", u, ""); code != 400 {
			fails++
		}
		ws.Close()
	}
	if fails > 0 {
		t.Errorf("%d of %d polls right after a quick upgrade were answered instead of refused with 400", fails, rounds)
	}
}
