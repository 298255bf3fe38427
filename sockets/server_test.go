package sockets

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// officialHandlers installs the behaviour the official Socket.IO v5 suite expects.
func officialHandlers(nsp *Namespace, echo bool) {
	nsp.OnConnection(func(s *Socket) {
		_ = s.Emit("auth", s.Auth())
		if !echo {
			return
		}
		s.On("message", func(s *Socket, ev *Event) { _ = s.Emit("message-back", ev.Values()...) })
		s.On("message-with-ack", func(s *Socket, ev *Event) { _ = ev.Ack.Reply(ev.Values()...) })
	})
}

func officialServer(t testing.TB) (*Server, string) {
	srv, url := newTestServer(t, Config{})
	officialHandlers(srv.Of("/"), true)
	officialHandlers(srv.Of("/custom"), false)
	return srv, url
}

func TestOfficialConnect(t *testing.T) {
	_, url := officialServer(t)
	tests := []struct {
		name, connect, ackPrefix, auth string
	}{
		{"main", "0", "0", `2["auth",{}]`},
		{"main with payload", `0{"token":"123"}`, "0", `2["auth",{"token":"123"}]`},
		{"custom", "0/custom,", "0/custom,", `2/custom,["auth",{}]`},
		{"custom without comma", "0/custom", "0/custom,", `2/custom,["auth",{}]`},
		{"custom with payload", `0/custom,{"token":"abc"}`, "0/custom,", `2/custom,["auth",{"token":"abc"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, url)
			c.send(tt.connect)
			ack := c.expectPrefix(tt.ackPrefix + "{")
			var v map[string]any
			if err := json.Unmarshal([]byte(ack[len(tt.ackPrefix):]), &v); err != nil || len(v) != 1 || v["sid"] == "" {
				t.Fatalf("ack %q: keys %v (%v)", ack, v, err)
			}
			c.expect(tt.auth)
		})
	}
}

func TestInvalidNamespaceKeepsConnection(t *testing.T) {
	_, url := officialServer(t)
	c := dial(t, url)
	c.send("0/random")
	c.expect(`4/random,{"message":"Invalid namespace"}`)
	c.connect("/", "")
	c.expect(`2["auth",{}]`)
}

func TestOfficialMessages(t *testing.T) {
	_, url := officialServer(t)
	c := dial(t, url)
	c.connect("/", "")
	c.expect(`2["auth",{}]`)

	c.send(`2["message",1,"2",{"3":[true]}]`)
	c.expect(`2["message-back",1,"2",{"3":[true]}]`)

	c.send(`2456["message-with-ack",1,"2",{"3":[false]}]`)
	c.expect(`3456[1,"2",{"3":[false]}]`)

	c.send(`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	c.sendBin([]byte{1, 2, 3})
	c.sendBin([]byte{4, 5, 6})
	c.expect(`52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	c.expectBin([]byte{1, 2, 3})
	c.expectBin([]byte{4, 5, 6})

	c.send(`52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	c.sendBin([]byte{1, 2, 3})
	c.sendBin([]byte{4, 5, 6})
	c.expect(`62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	c.expectBin([]byte{1, 2, 3})
	c.expectBin([]byte{4, 5, 6})

	// Numbers and HTML characters are kept as they came.
	c.send(`2["message",1.50,1e3,"<a&b>"]`)
	c.expect(`2["message-back",1.50,1e3,"<a&b>"]`)
}

func TestOfficialDisconnect(t *testing.T) {
	_, url := officialServer(t)
	c := dial(t, url)
	c.connect("/", "")
	c.expect(`2["auth",{}]`)
	c.connect("/custom", "")
	c.expect(`2/custom,["auth",{}]`)
	c.send("1/custom")
	c.send(`2["message","message to main namespace"]`)
	c.expect(`2["message-back","message to main namespace"]`)
	c.send("1")
	c.send(`2["message","gone"]`)
	c.expectSilence(100 * time.Millisecond)
}

// TestBadInput sends every kind of malformed packet: the client's connection is closed with
// reason "parse error", and another client is unaffected.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name   string
		frames []any // string: a Socket.IO packet; []byte: a binary frame; raw: an Engine.IO frame
	}{
		{"unknown type", []any{"abc"}},
		{"unknown type digit", []any{"9"}},
		{"connect error from client", []any{"4abc"}},
		{"payload not an array", []any{"2{}"}},
		{"bad JSON", []any{`2["message",`}},
		{"garbage ack id", []any{`2abc["message-with-ack",1]`}},
		{"ack id too large", []any{`299999999999999999["message"]`}},
		{"event without name", []any{`2[]`}},
		{"reserved event", []any{`2["disconnect"]`}},
		{"too many attachments", []any{`511-["message"]`}},
		{"attachment count garbage", []any{`5x-["message"]`}},
		{"placeholder out of range", []any{`51-["message",{"_placeholder":true,"num":3}]`, []byte{1}}},
		{"text while awaiting attachments", []any{`51-["message",{"_placeholder":true,"num":0}]`, `2["message"]`}},
		{"binary without packet", []any{[]byte{1, 2}}},
		{"invalid UTF-8", []any{"2[\"\xff\xfe\"]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
			for _, f := range tt.frames {
				switch f := f.(type) {
				case string:
					c.send(f)
				case []byte:
					c.sendBin(f)
				}
			}
			c.expectClosed()
			select {
			case r := <-reasons:
				if r != ReasonParseError {
					t.Fatalf("reason %q, want parse error", r)
				}
			case <-time.After(waitTime):
				t.Fatal("no disconnect")
			}
			bystander.send(`2["message","still here"]`)
			bystander.expect(`2["message-back","still here"]`)
			// The session and the socket are gone; the bystander's stay.
			deadline := time.Now().Add(waitTime)
			for (srv.Count() != 1 || srv.Of("/").Sockets() != 1) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if srv.Count() != 1 || srv.Of("/").Sockets() != 1 {
				t.Fatalf("sessions %d, sockets %d after the bad client left", srv.Count(), srv.Of("/").Sockets())
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	srv, url := newTestServer(t, Config{})
	secure := srv.Of("/secure")
	var calls []string
	var mu sync.Mutex
	secure.Use(func(s *Socket) error {
		mu.Lock()
		calls = append(calls, "first")
		mu.Unlock()
		return nil
	})
	secure.Use(func(s *Socket) error {
		var auth struct{ Token string }
		_ = json.Unmarshal(s.Auth(), &auth)
		if auth.Token != "letmein" {
			return &ConnectError{Message: "unauthorized", Data: map[string]string{"reason": "invalid token"}}
		}
		return nil
	})
	secure.Use(func(s *Socket) error {
		if s.Request().URL.Query().Get("deny") != "" {
			return errors.New("plain error")
		}
		s.Join("vip")
		return nil
	})
	connected := make(chan string, 1)
	secure.OnConnection(func(s *Socket) {
		if !slices.Contains(s.Rooms(), "vip") {
			t.Error("room joined in a middleware missing")
		}
		connected <- s.ID()
	})

	c := dial(t, url)
	c.send(`0/secure,{"token":"nope"}`)
	c.expect(`4/secure,{"message":"unauthorized","data":{"reason":"invalid token"}}`)
	c.send(`0/secure,`)
	c.expect(`4/secure,{"message":"unauthorized","data":{"reason":"invalid token"}}`)
	sid, _ := c.connect("/secure", `{"token":"letmein"}`)
	if got := <-connected; got != sid {
		t.Fatalf("connected %q, ack sid %q", got, sid)
	}
	mu.Lock()
	n := len(calls)
	mu.Unlock()
	if n != 3 {
		t.Fatalf("first middleware ran %d times, want 3", n)
	}

	// A plain error refuses with its text and no data.
	d := dialURL(t, url+"/socket.io/?EIO=4&transport=websocket&deny=1")
	d.send(`0/secure,{"token":"letmein"}`)
	d.expect(`4/secure,{"message":"plain error"}`)
}

func TestConnectTimeout(t *testing.T) {
	_, url := newTestServer(t, Config{ConnectTimeout: 100 * time.Millisecond})
	c := dial(t, url)
	c.expectClosed()

	// A connected client is not closed.
	c2 := dial(t, url)
	c2.connect("/", "")
	c2.expectSilence(300 * time.Millisecond)
}

func TestAcks(t *testing.T) {
	srv, url := newTestServer(t, Config{AckTimeout: 200 * time.Millisecond})
	sockets := make(chan *Socket, 1)
	srv.OnConnection(func(s *Socket) { sockets <- s })
	c := dial(t, url)
	c.connect("/", "")
	s := <-sockets

	// Server to client, blocking form.
	type result struct {
		r   *Reply
		err error
	}
	res := make(chan result, 1)
	go func() {
		r, err := s.EmitWithAck(context.Background(), "ack-me", "tag")
		res <- result{r, err}
	}()
	c.expect(`20["ack-me","tag"]`)
	c.send(`30[{"ok":true,"n":7}]`)
	got := <-res
	if got.err != nil {
		t.Fatal(got.err)
	}
	var v struct {
		OK bool `json:"ok"`
		N  int  `json:"n"`
	}
	if err := got.r.Decode(&v); err != nil || !v.OK || v.N != 7 {
		t.Fatalf("reply %+v %v", v, err)
	}

	// Binary reply.
	go func() {
		r, err := s.EmitWithAck(context.Background(), "ack-me", "bin")
		res <- result{r, err}
	}()
	c.expect(`21["ack-me","bin"]`)
	c.send(`61-1[{"_placeholder":true,"num":0}]`)
	c.sendBin([]byte{9, 8})
	got = <-res
	var b []byte
	if got.err != nil || got.r.Decode(&b) != nil || string(b) != "\x09\x08" {
		t.Fatalf("binary reply %v %v", b, got.err)
	}

	// Timeout (Config.AckTimeout), then a late reply is ignored.
	go func() {
		r, err := s.EmitWithAck(context.Background(), "ack-me", "late")
		res <- result{r, err}
	}()
	c.expect(`22["ack-me","late"]`)
	if got = <-res; !errors.Is(got.err, ErrAckTimeout) {
		t.Fatalf("err %v, want ErrAckTimeout", got.err)
	}
	c.send(`32["late"]`)

	// Context deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.EmitWithAck(ctx, "ack-me", "ctx"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want deadline", err)
	}
	c.expect(`23["ack-me","ctx"]`)

	// Callback form, then disconnection fails the pending ack.
	cb := make(chan error, 1)
	if err := s.EmitWithAckFunc("ack-me", time.Minute, func(r *Reply, err error) { cb <- err }, "cb"); err != nil {
		t.Fatal(err)
	}
	c.expect(`24["ack-me","cb"]`)
	c.send("1")
	if err := <-cb; !errors.Is(err, ErrDisconnected) {
		t.Fatalf("err %v, want ErrDisconnected", err)
	}
	if err := s.Emit("x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("emit after disconnect: %v", err)
	}
}

func TestClientAck(t *testing.T) {
	srv, url := newTestServer(t, Config{})
	later := make(chan *Ack, 1)
	srv.OnConnection(func(s *Socket) {
		s.On("now", func(s *Socket, ev *Event) {
			var n int
			if err := ev.Decode(&n); err != nil {
				t.Error(err)
			}
			if err := ev.Ack.Reply(n+1, Binary{7}); err != nil {
				t.Error(err)
			}
			if err := ev.Ack.Reply(0); !errors.Is(err, ErrAckUsed) {
				t.Errorf("second reply: %v", err)
			}
		})
		s.On("later", func(s *Socket, ev *Event) { later <- ev.Ack })
		s.On("noack", func(s *Socket, ev *Event) {
			if ev.Ack.Wanted() || !errors.Is(ev.Ack.Reply(), ErrAckUsed) {
				t.Error("ack on an event without id")
			}
			_ = s.Emit("noack-done")
		})
	})
	c := dial(t, url)
	c.connect("/", "")
	c.send(`25["now",41]`)
	c.expect(`61-5[42,{"_placeholder":true,"num":0}]`)
	c.expectBin([]byte{7})
	c.send(`26["later"]`)
	ack := <-later
	go func() { _ = ack.Reply("from another goroutine") }()
	c.expect(`36["from another goroutine"]`)
	c.send(`2["noack"]`)
	c.expect(`2["noack-done"]`)
}

type fileMsg struct {
	Name  string   `json:"name"`
	Data  []byte   `json:"data"`
	Parts [][]byte `json:"parts,omitempty"`
}

func TestBinaryNested(t *testing.T) {
	srv, url := newTestServer(t, Config{})
	got := make(chan fileMsg, 1)
	srv.OnConnection(func(s *Socket) {
		s.On("upload", Handle(func(s *Socket, f fileMsg, ack *Ack) {
			got <- f
			_ = ack.Reply(map[string]any{"ok": true, "echo": f})
		}, nil))
		_ = s.Emit("file", fileMsg{Name: "a<b", Data: []byte{1}, Parts: [][]byte{{2}, {3}}})
	})
	c := dial(t, url)
	c.connect("/", "")
	c.expect(`53-["file",{"name":"a<b","data":{"_placeholder":true,"num":0},"parts":[{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]}]`)
	c.expectBin([]byte{1})
	c.expectBin([]byte{2})
	c.expectBin([]byte{3})

	c.send(`52-9["upload",{"name":"x","data":{"_placeholder":true,"num":1},"parts":[{"_placeholder":true,"num":0}]}]`)
	c.sendBin([]byte("p0"))
	c.sendBin([]byte("d1"))
	f := <-got
	if f.Name != "x" || string(f.Data) != "d1" || len(f.Parts) != 1 || string(f.Parts[0]) != "p0" {
		t.Fatalf("decoded %+v", f)
	}
	c.expect(`62-9[{"echo":{"name":"x","data":{"_placeholder":true,"num":0},"parts":[{"_placeholder":true,"num":1}]},"ok":true}]`)
	c.expectBin([]byte("d1"))
	c.expectBin([]byte("p0"))

	srv2 := srv.Of("/")
	many := make([]any, 11)
	for i := range many {
		many[i] = []byte{byte(i)}
	}
	if err := srv2.Emit("too-many", many...); !errors.Is(err, ErrTooManyAttachments) {
		t.Fatalf("11 attachments: %v", err)
	}
	if err := srv2.Emit("disconnect"); !errors.Is(err, ErrReservedEvent) {
		t.Fatalf("reserved: %v", err)
	}
}

func TestOnAnyAndDecode(t *testing.T) {
	srv, url := newTestServer(t, Config{})
	var order []string
	done := make(chan struct{})
	srv.Of("/").OnAny(func(s *Socket, ev *Event) { order = append(order, "nsany:"+ev.Name) })
	srv.On("b", func(s *Socket, ev *Event) { order = append(order, "nsb") })
	srv.On("a", func(s *Socket, ev *Event) { order = append(order, "shadowed") })
	srv.OnConnection(func(s *Socket) {
		s.OnAny(func(s *Socket, ev *Event) { order = append(order, "any:"+ev.Name) })
		s.On("a", func(s *Socket, ev *Event) {
			order = append(order, "a")
			var x, y int
			var raw json.RawMessage
			if err := ev.Decode(&x, nil, &raw); err != nil || x != 1 || string(raw) != `{"k": [1]}` {
				t.Errorf("decode %v %v %s", err, x, raw)
			}
			if err := ev.Decode(nil, nil, nil, &y); !errors.Is(err, ErrMissingArg) {
				t.Errorf("missing arg: %v", err)
			}
		})
		s.On("end", func(s *Socket, ev *Event) { close(done) })
	})
	c := dial(t, url)
	c.connect("/", "")
	c.send(`2["a",1,"skip",{"k": [1]}]`)
	c.send(`2["b"]`)
	c.send(`2["end"]`)
	<-done
	want := []string{"nsany:a", "any:a", "a", "nsany:b", "any:b", "nsb", "nsany:end", "any:end"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestHandlerPanicDropsOnlyThatClient(t *testing.T) {
	srv, url := newTestServer(t, Config{})
	reasons := make(chan string, 1)
	srv.OnConnection(func(s *Socket) {
		s.On("boom", func(s *Socket, ev *Event) { panic("boom") })
		s.On("ping", func(s *Socket, ev *Event) { _ = ev.Ack.Reply("pong") })
		s.OnDisconnect(func(s *Socket, reason string) { reasons <- reason })
	})
	ok := dial(t, url)
	ok.connect("/", "")
	c := dial(t, url)
	c.connect("/", "")
	c.send(`2["boom"]`)
	c.expectClosed()
	if r := <-reasons; r != ReasonParseError {
		t.Fatalf("reason %q", r)
	}
	ok.send(`21["ping"]`)
	ok.expect(`31["pong"]`)
}
