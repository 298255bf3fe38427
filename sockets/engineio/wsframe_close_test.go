package engineio

import (
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWebSocketCloseCodes: over a real server, the close frame a client
// gets back for a close frame or a message that breaks RFC 6455, and the
// reason the session ends with.
func TestWebSocketCloseCodes(t *testing.T) {
	h := newHarness(t, Config{}, false)
	tests := []struct {
		name   string
		typ    int // websocket.TextMessage or websocket.CloseMessage
		data   []byte
		code   int // of the close frame the client gets
		reason string
		cause  error
	}{
		{"close 1000 echoed", websocket.CloseMessage, closeMsg(1000, "bye ☺"), 1000, "transport close", nil},
		{"close 4000 echoed", websocket.CloseMessage, closeMsg(4000, ""), 4000, "transport close", nil},
		{"close 1005 refused", websocket.CloseMessage, closeMsg(1005, ""), 1002, "transport error", errWSProtocol},
		{"close 2000 refused", websocket.CloseMessage, closeMsg(2000, ""), 1002, "transport error", errWSProtocol},
		{"close with a reason not in utf-8", websocket.CloseMessage, closeMsg(1000, "\xff"), 1007, "parse error", errWSInvalidUTF8},
		{"text not in utf-8", websocket.TextMessage, []byte("4\xc3("), 1007, "parse error", errWSInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := h.dial(t, "EIO=4&transport=websocket")
			read(t, ws) // open
			h.nextConn(t)
			var err error
			if tt.typ == websocket.CloseMessage {
				err = ws.WriteControl(websocket.CloseMessage, tt.data, time.Now().Add(5*time.Second))
			} else {
				err = ws.WriteMessage(tt.typ, tt.data)
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				_, data, err := ws.ReadMessage()
				if err == nil && string(data) == "2" { // a heartbeat
					continue
				}
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != tt.code {
					t.Fatalf("read %q, %v; want a close frame with code %d", data, err, tt.code)
				}
				break
			}
			if e := h.nextClose(t); e.reason != tt.reason || !errors.Is(e.cause, tt.cause) {
				t.Errorf("close %q %v, want %q %v", e.reason, e.cause, tt.reason, tt.cause)
			}
		})
	}
}
