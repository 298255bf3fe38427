package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// These tests cover, in our own code and at the frame level, the Socket.IO
// behaviours the official Socket.IO v5 suite checks against --official mode,
// and a few more of CONFORMANCE.md.

const sioPath = "/socket.io/"

// sioDial opens a WebSocket Engine.IO session at /socket.io/ and reads the
// open packet.
func sioDial(tb testing.TB, base string) *websocket.Conn {
	tb.Helper()
	ws := wsDial(tb, wsURL(base, sioPath, "EIO=4&transport=websocket"))
	parseOpen(tb, wsReadText(tb, ws, false))
	return ws
}

// sioConnect sends CONNECT for nsp prefix ("" for "/", else "/name,") with
// payload and returns the socket id from the answer.
func sioConnect(tb testing.TB, ws *websocket.Conn, prefix, payload string) string {
	tb.Helper()
	wsSend(tb, ws, websocket.TextMessage, "40"+prefix+payload)
	ans := wsReadText(tb, ws, true)
	if !strings.HasPrefix(ans, "40"+prefix) {
		tb.Fatalf("CONNECT answer %q", ans)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(ans[2+len(prefix):]), &body); err != nil {
		tb.Fatalf("CONNECT answer %q: %v", ans, err)
	}
	sid, _ := body["sid"].(string)
	if sid == "" {
		tb.Fatalf("CONNECT answer %q: no sid", ans)
	}
	return sid
}

func TestSocketIOOfficialConnect(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)
	tests := []struct {
		name, prefix, payload, auth string
	}{
		{"main", "", "", `42["auth",{}]`},
		{"main with payload", "", `{"token":"123"}`, `42["auth",{"token":"123"}]`},
		{"custom", "/custom,", "", `42/custom,["auth",{}]`},
		{"custom with payload", "/custom,", `{"token":"abc","n":1,"html":"<&>"}`, `42/custom,["auth",{"token":"abc","n":1,"html":"<&>"}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := sioDial(t, base)
			wsSend(t, ws, websocket.TextMessage, "40"+tc.prefix+tc.payload)
			ans := wsReadText(t, ws, true)
			var body map[string]any
			if !strings.HasPrefix(ans, "40"+tc.prefix) || json.Unmarshal([]byte(ans[2+len(tc.prefix):]), &body) != nil {
				t.Fatalf("CONNECT answer %q", ans)
			}
			if _, ok := body["sid"].(string); !ok || len(body) != 1 {
				t.Fatalf("CONNECT answer %q: want exactly {sid} (recovery is off)", ans)
			}
			if got := wsReadText(t, ws, true); got != tc.auth {
				t.Fatalf("first event %q, want %q", got, tc.auth)
			}
		})
	}
	t.Run("custom namespace without the trailing comma", func(t *testing.T) {
		ws := sioDial(t, base)
		wsSend(t, ws, websocket.TextMessage, "40/custom")
		if ans := wsReadText(t, ws, true); !strings.HasPrefix(ans, "40/custom,{") {
			t.Fatalf("CONNECT answer %q", ans)
		}
	})
	t.Run("unknown namespace", func(t *testing.T) {
		ws := sioDial(t, base)
		wsSend(t, ws, websocket.TextMessage, "40/random")
		if got := wsReadText(t, ws, true); got != `44/random,{"message":"Invalid namespace"}` {
			t.Fatalf("got %q", got)
		}
		// the engine connection stays open and usable
		sioConnect(t, ws, "", "")
		if got := wsReadText(t, ws, true); got != `42["auth",{}]` {
			t.Fatalf("after the refusal: %q", got)
		}
	})
	t.Run("invalid handshake closes", func(t *testing.T) {
		ws := sioDial(t, base)
		wsSend(t, ws, websocket.TextMessage, "4abc")
		wsWaitClosed(t, ws, 2*time.Second)
	})
	t.Run("no CONNECT within the connect timeout closes", func(t *testing.T) {
		ws := sioDial(t, base)
		start := time.Now()
		// answer the pings so that only the connect timeout can close it
		_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				break
			}
			if string(msg) == "2" {
				wsSend(t, ws, websocket.TextMessage, "3")
			}
		}
		if d := time.Since(start); d < 900*time.Millisecond || d > 2500*time.Millisecond {
			t.Fatalf("closed after %v, want about the 1 s connect timeout", d)
		}
	})
}

func TestSocketIOOfficialDisconnect(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)
	t.Run("main namespace: nothing but pings afterwards", func(t *testing.T) {
		ws := sioDial(t, base)
		sioConnect(t, ws, "", "")
		wsReadText(t, ws, true) // auth
		wsSend(t, ws, websocket.TextMessage, "41")
		wsSend(t, ws, websocket.TextMessage, `42["message","after"]`) // not connected any more: ignored
		if got := wsReadText(t, ws, false); got != "2" {
			t.Fatalf("after DISCONNECT: %q, want a ping", got)
		}
	})
	t.Run("custom namespace then main", func(t *testing.T) {
		ws := sioDial(t, base)
		sioConnect(t, ws, "", "")
		wsReadText(t, ws, true)
		sioConnect(t, ws, "/custom,", "")
		if got := wsReadText(t, ws, true); got != `42/custom,["auth",{}]` {
			t.Fatalf("auth on /custom: %q", got)
		}
		wsSend(t, ws, websocket.TextMessage, "41/custom")
		wsSend(t, ws, websocket.TextMessage, `42["message","message to main namespace"]`)
		if got := wsReadText(t, ws, true); got != `42["message-back","message to main namespace"]` {
			t.Fatalf("got %q", got)
		}
	})
}

func TestSocketIOOfficialMessages(t *testing.T) {
	t.Parallel()
	base := startApp(t, true)
	connected := func(t *testing.T) *websocket.Conn {
		ws := sioDial(t, base)
		sioConnect(t, ws, "", "")
		if got := wsReadText(t, ws, true); got != `42["auth",{}]` {
			t.Fatalf("auth: %q", got)
		}
		return ws
	}
	text := []struct{ name, in, want string }{
		{"event", `42["message",1,"2",{"3":[true]}]`, `42["message-back",1,"2",{"3":[true]}]`},
		{"numbers kept as sent", `42["message",1.0,1e3,-0,12345678901234567890]`, `42["message-back",1.0,1e3,-0,12345678901234567890]`},
		{"no HTML escaping", `42["message","<a>&amp;</a>","\u003c"]`, `42["message-back","<a>&amp;</a>","\u003c"]`},
		{"event with ack", `42456["message-with-ack",1,"2",{"3":[false]}]`, `43456[1,"2",{"3":[false]}]`},
		{"large ack id", `429007199254740991["message-with-ack"]`, `439007199254740991[]`},
	}
	for _, tc := range text {
		t.Run(tc.name, func(t *testing.T) {
			ws := connected(t)
			wsSend(t, ws, websocket.TextMessage, tc.in)
			if got := wsReadText(t, ws, true); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	binary := []struct{ name, in, want string }{
		{"binary event", `452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			`452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`},
		{"binary event with ack", `452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			`462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`},
	}
	for _, tc := range binary {
		t.Run(tc.name, func(t *testing.T) {
			ws := connected(t)
			wsSend(t, ws, websocket.TextMessage, tc.in)
			wsSend(t, ws, websocket.BinaryMessage, "\x01\x02\x03")
			wsSend(t, ws, websocket.BinaryMessage, "\x04\x05\x06")
			if got := wsReadText(t, ws, true); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for _, want := range [][]byte{{1, 2, 3}, {4, 5, 6}} {
				typ, msg := wsRead(t, ws, 5*time.Second)
				if typ != websocket.BinaryMessage || !bytes.Equal(msg, want) {
					t.Fatalf("attachment: type %d %v, want %v", typ, msg, want)
				}
			}
		})
	}
	bad := []struct{ name, in string }{
		{"unknown packet type", "4abc"},
		{"payload not an array", "42{}"},
		{"invalid ack id", `42abc["message-with-ack",1,"2",{"3":[false]}]`},
		{"bad JSON", `42["message",`},
		{"empty array", `42[]`},
		{"event name not a string", `42[1,2]`},
		{"more than 10 attachments", `4511-["message"]`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			ws := connected(t)
			wsSend(t, ws, websocket.TextMessage, tc.in)
			wsWaitClosed(t, ws, 2*time.Second)
		})
	}
	t.Run("other clients are unaffected by a bad one", func(t *testing.T) {
		good := connected(t)
		badWS := connected(t)
		wsSend(t, badWS, websocket.TextMessage, "4abc")
		wsWaitClosed(t, badWS, 2*time.Second)
		wsSend(t, good, websocket.TextMessage, `42["message","still here"]`)
		if got := wsReadText(t, good, true); got != `42["message-back","still here"]` {
			t.Fatalf("good client got %q", got)
		}
	})
}
