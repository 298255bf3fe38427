package sockets

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestAckReplyRaw(t *testing.T) {
	tests := []struct {
		name string
		nsp  string
		args []json.RawMessage
		want string // the ACK frame after the namespace prefix and the id
	}{
		{"object", "/", []json.RawMessage{json.RawMessage(`{"ok":true,"rev":4411}`)}, `[{"ok":true,"rev":4411}]`},
		{"several", "/", []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`"two"`), json.RawMessage(`[3,{"x":null}]`)}, `[1,"two",[3,{"x":null}]]`},
		{"none", "/", nil, `[]`},
		{"namespace", "/chat", []json.RawMessage{json.RawMessage(`"é<&>"`)}, `["é<&>"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, url := newTestServer(t, Config{})
			errs := make(chan error, 4)
			srv.Of(tt.nsp).OnConnection(func(s *Socket) {
				s.On("raw", func(s *Socket, ev *Event) {
					errs <- ev.Ack.ReplyRaw(tt.args...)
					errs <- ev.Ack.ReplyRaw(tt.args...) // a second reply is refused
					errs <- ev.Ack.Reply(1)             // whichever form
				})
			})
			c := dial(t, url)
			c.connect(tt.nsp, "")
			prefix := ""
			if tt.nsp != "/" {
				prefix = tt.nsp + ","
			}
			c.send("2" + prefix + `12["raw"]`)
			c.expect("3" + prefix + "12" + tt.want)
			if err := <-errs; err != nil {
				t.Fatalf("ReplyRaw: %v", err)
			}
			for range 2 {
				if err := <-errs; !errors.Is(err, ErrAckUsed) {
					t.Fatalf("second reply: %v, want ErrAckUsed", err)
				}
			}
		})
	}
}

func TestAckReplyRawErrors(t *testing.T) {
	srv, url := newTestServer(t, Config{})
	errs := make(chan error, 1)
	later := make(chan *Ack, 1)
	gone := make(chan struct{})
	srv.OnConnection(func(s *Socket) {
		s.OnDisconnect(func(*Socket, string) { close(gone) })
		s.On("empty", func(s *Socket, ev *Event) {
			errs <- ev.Ack.ReplyRaw(json.RawMessage(`1`), nil)
		})
		s.On("noack", func(s *Socket, ev *Event) { errs <- ev.Ack.ReplyRaw(json.RawMessage(`1`)) })
		s.On("later", func(s *Socket, ev *Event) { later <- ev.Ack })
		s.On("ping", func(s *Socket, ev *Event) { _ = s.Emit("pong") })
	})
	c := dial(t, url)
	c.connect("/", "")

	c.send(`23["empty"]`)
	if err := <-errs; !errors.Is(err, ErrEmptyArg) {
		t.Fatalf("empty argument: %v, want ErrEmptyArg", err)
	}
	c.send(`2["noack"]`)
	if err := <-errs; !errors.Is(err, ErrAckUsed) {
		t.Fatalf("event without ack id: %v, want ErrAckUsed", err)
	}
	// Nothing was sent for either: the next frame is the pong.
	c.send(`2["ping"]`)
	c.expect(`2["pong"]`)

	c.send(`24["later"]`)
	ack := <-later
	c.send("1") // the client leaves the namespace
	<-gone
	if err := ack.ReplyRaw(json.RawMessage(`true`)); !errors.Is(err, ErrClosed) {
		t.Fatalf("reply after disconnect: %v, want ErrClosed", err)
	}
}
