package sockets

import (
	"testing"
	"time"
)

// TestInvalidUTF8Text: a WebSocket text frame that is not UTF-8 fails the
// connection in the engine's frame reader (close code 1007), so the socket
// is disconnected with "transport error", and another client is unaffected.
func TestInvalidUTF8Text(t *testing.T) {
	srv, url := newTestServer(t, Config{})
	reasons := make(chan string, 4)
	srv.OnConnection(func(s *Socket) {
		s.On("message", func(s *Socket, ev *Event) { _ = s.Emit("message-back", ev.Values()...) })
		s.OnDisconnect(func(s *Socket, reason string) { reasons <- reason })
	})
	bystander := dial(t, url)
	bystander.connect("/", "")
	c := dial(t, url)
	c.connect("/", "")
	c.send("2[\"\xff\xfe\"]")
	c.expectClosed()
	select {
	case r := <-reasons:
		if r != ReasonTransportError {
			t.Fatalf("reason %q, want transport error", r)
		}
	case <-time.After(waitTime):
		t.Fatal("no disconnect")
	}
	bystander.send(`2["message","still here"]`)
	bystander.expect(`2["message-back","still here"]`)
}
