package sockets

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// roomServer connects n clients to "/" and returns them with their server-side sockets.
func roomServer(t *testing.T, cfg Config, n int) (*Server, []*tclient, []*Socket) {
	srv, url := newTestServer(t, cfg)
	ch := make(chan *Socket, n)
	srv.OnConnection(func(s *Socket) {
		s.On("join", func(s *Socket, ev *Event) {
			var room string
			_ = ev.Decode(&room)
			s.Join(room)
			_ = ev.Ack.Reply(room)
		})
		ch <- s
	})
	var cs []*tclient
	var ss []*Socket
	for range n {
		c := dial(t, url)
		sid, _ := c.connect("/", "")
		s := <-ch
		if s.ID() != sid {
			t.Fatalf("socket %s, ack %s", s.ID(), sid)
		}
		cs = append(cs, c)
		ss = append(ss, s)
	}
	return srv, cs, ss
}

func TestRoomsAndOperators(t *testing.T) {
	srv, cs, ss := roomServer(t, Config{}, 4)
	a, b, c, d := cs[0], cs[1], cs[2], cs[3]
	sa, sb, sc, sd := ss[0], ss[1], ss[2], ss[3]

	sa.Join("r1", "r2")
	sb.Join("r1")
	sc.Join("r2")
	if got := sa.Rooms(); !slices.Equal(got, sortedStrings(sa.ID(), "r1", "r2")) {
		t.Fatalf("rooms %v", got)
	}

	// Client-driven join, with ack.
	d.send(`21["join","r3"]`)
	d.expect(`31["r3"]`)

	steps := []struct {
		name string
		emit func() error
		want []*tclient
	}{
		{"namespace emit", func() error { return srv.Emit("m", 1) }, []*tclient{a, b, c, d}},
		{"to room", func() error { return srv.To("r1").Emit("m", 2) }, []*tclient{a, b}},
		{"to two rooms once each", func() error { return srv.In("r1", "r2").Emit("m", 3) }, []*tclient{a, b, c}},
		{"except", func() error { return srv.Except("r1").Emit("m", 4) }, []*tclient{c, d}},
		{"to except", func() error { return srv.To("r2").Except("r1").Emit("m", 5) }, []*tclient{c}},
		{"socket broadcast", func() error { return sa.Broadcast().Emit("m", 6) }, []*tclient{b, c, d}},
		{"socket to room", func() error { return sa.To("r1").Emit("m", 7) }, []*tclient{b}},
		{"socket except", func() error { return sb.Except("r2").Emit("m", 8) }, []*tclient{d}},
		{"to id room", func() error { return srv.To(sc.ID()).Emit("m", 9) }, []*tclient{c}},
		{"local volatile", func() error { return srv.Local().Volatile().Emit("m", 10) }, []*tclient{a, b, c, d}},
		{"socket emit", func() error { return sd.Emit("m", 11) }, []*tclient{d}},
		{"socket volatile", func() error { return sd.EmitVolatile("m", 12) }, []*tclient{d}},
	}
	for _, st := range steps {
		if err := st.emit(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		// The marker reaches everyone after the step's packet (one order per namespace).
		if err := srv.Emit("marker"); err != nil {
			t.Fatal(err)
		}
		for i, cl := range cs {
			got := cl.next()
			if slices.Contains(st.want, cl) {
				if !strings.HasPrefix(got.data, `42["m",`) {
					t.Fatalf("%s: client %d got %q, want the event", st.name, i, got.data)
				}
				got = cl.next()
			}
			if got.data != `42["marker"]` {
				t.Fatalf("%s: client %d got %q, want the marker", st.name, i, got.data)
			}
		}
	}

	// FetchSockets, SocketsJoin, SocketsLeave.
	ctx := context.Background()
	rs, err := srv.Of("/").In("r1").FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, sortedStrings(sa.ID(), sb.ID())) {
		t.Fatalf("fetch r1: %v", ids)
	}
	if err := srv.Of("/").In("r2").SocketsJoin(ctx, "r4"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(sc.Rooms(), "r4") || !slices.Contains(sa.Rooms(), "r4") || slices.Contains(sb.Rooms(), "r4") {
		t.Fatal("SocketsJoin")
	}
	if err := srv.Of("/").Except("r1").SocketsLeave(ctx, "r4"); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(sc.Rooms(), "r4") || !slices.Contains(sa.Rooms(), "r4") {
		t.Fatal("SocketsLeave")
	}
	sa.Leave("r4")
	if slices.Contains(sa.Rooms(), "r4") {
		t.Fatal("Leave")
	}
	// RemoteSocket methods.
	for _, r := range rs {
		if r.ID == sb.ID() {
			if err := r.Emit("remote", "hi"); err != nil {
				t.Fatal(err)
			}
			b.expect(`2["remote","hi"]`)
			if err := r.Join(ctx, "r9"); err != nil || !slices.Contains(sb.Rooms(), "r9") {
				t.Fatalf("remote join %v", err)
			}
		}
	}

	// DisconnectSockets: r3 members get DISCONNECT, engine connection kept.
	if err := srv.Of("/").In("r3").DisconnectSockets(ctx, false); err != nil {
		t.Fatal(err)
	}
	d.expect("1")
	if sd.Connected() || sd.DisconnectReason() != ReasonServerNamespaceDisconnect {
		t.Fatalf("d: connected %v reason %q", sd.Connected(), sd.DisconnectReason())
	}
	if rooms := sd.Rooms(); len(rooms) != 0 {
		t.Fatalf("rooms after disconnect %v", rooms)
	}
	// With close: the engine connection goes too.
	if err := srv.Of("/").In(sc.ID()).DisconnectSockets(ctx, true); err != nil {
		t.Fatal(err)
	}
	c.expect("1")
	c.expectClosed()
	if n := srv.Of("/").Sockets(); n != 2 {
		t.Fatalf("sockets left %d", n)
	}
}

func sortedStrings(s ...string) []string {
	slices.Sort(s)
	return s
}

func TestDisconnectReasons(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		do   func(t *testing.T, srv *Server, c *tclient, s *Socket)
		want string
	}{
		{"client namespace disconnect", Config{}, func(t *testing.T, srv *Server, c *tclient, s *Socket) { c.send("1") }, ReasonClientNamespaceDisconnect},
		{"server namespace disconnect", Config{}, func(t *testing.T, srv *Server, c *tclient, s *Socket) {
			s.Disconnect(false)
			c.expect("1")
		}, ReasonServerNamespaceDisconnect},
		{"server disconnect with close", Config{}, func(t *testing.T, srv *Server, c *tclient, s *Socket) {
			s.Disconnect(true)
			c.expect("1")
			c.expectClosed()
		}, ReasonServerNamespaceDisconnect},
		{"transport close", Config{}, func(t *testing.T, srv *Server, c *tclient, s *Socket) { c.ws.Close() }, ReasonTransportClose},
		{"forced close", Config{}, func(t *testing.T, srv *Server, c *tclient, s *Socket) {
			_ = s.Emit("before")
			s.CloseConn()
			c.expect(`2["before"]`) // flushed before the close
			c.expectClosed()
		}, ReasonForcedClose},
		{"parse error", Config{}, func(t *testing.T, srv *Server, c *tclient, s *Socket) { c.send("2{}") }, ReasonParseError},
		{"server shutting down", Config{}, func(t *testing.T, srv *Server, c *tclient, s *Socket) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTime)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			c.expectClosed()
		}, ReasonServerShuttingDown},
		{"ping timeout", Config{PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond}, nil, ReasonPingTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, url := newTestServer(t, tt.cfg)
			ch := make(chan *Socket, 1)
			reasons := make(chan string, 2)
			srv.OnConnection(func(s *Socket) {
				s.OnDisconnect(func(s *Socket, reason string) { reasons <- reason })
				ch <- s
			})
			c := dialOpts(t, url, tt.do == nil)
			c.connect("/", "")
			s := <-ch
			if tt.do != nil {
				tt.do(t, srv, c, s)
			}
			select {
			case r := <-reasons:
				if r != tt.want {
					t.Fatalf("reason %q, want %q", r, tt.want)
				}
			case <-time.After(waitTime):
				t.Fatal("no disconnect")
			}
			if s.DisconnectReason() != tt.want || s.Connected() {
				t.Fatalf("DisconnectReason %q", s.DisconnectReason())
			}
			select {
			case r := <-reasons:
				t.Fatalf("second disconnect %q", r)
			case <-time.After(20 * time.Millisecond):
			}
		})
	}
}

func TestShutdownIdempotent(t *testing.T) {
	srv, url := newTestServer(t, Config{})
	var cs []*tclient
	for range 5 {
		c := dial(t, url)
		c.connect("/", "")
		cs = append(cs, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		c.expectClosed()
	}
	if n := srv.Count(); n != 0 {
		t.Fatalf("sessions after shutdown: %d", n)
	}
	if n := srv.Of("/").Sockets(); n != 0 {
		t.Fatalf("sockets after shutdown: %d", n)
	}
}

func TestSlowClientDisconnected(t *testing.T) {
	srv, _, ss := roomServer(t, Config{WriteQueueBytes: 8 << 10}, 2)
	// Fill the first socket's queue faster than any writer can drain it: volatile emits are
	// dropped, the connection stays; plain emits overflow and close it.
	for range 1000 {
		_ = ss[0].EmitVolatile("v", strings.Repeat("x", 1000))
	}
	if !ss[0].Connected() {
		t.Fatal("volatile emits closed the connection")
	}
	deadline := time.Now().Add(waitTime)
	for ss[0].Connected() && time.Now().Before(deadline) {
		_ = srv.To(ss[0].ID()).Emit("e", strings.Repeat("x", 1000))
	}
	if ss[0].Connected() {
		t.Fatal("a slow client was never disconnected")
	}
	for ss[0].DisconnectReason() == "" && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if r := ss[0].DisconnectReason(); r != ReasonTransportError {
		t.Fatalf("reason %q", r)
	}
	if !ss[1].Connected() {
		t.Fatal("the other client was dropped")
	}
}

func TestBroadcastWithAck(t *testing.T) {
	srv, cs, ss := roomServer(t, Config{AckTimeout: 300 * time.Millisecond}, 3)
	for _, s := range ss {
		s.Join("room")
	}
	answer := func(c *tclient, reply string) {
		pkt := c.expectPrefix("2")
		id := pkt[1:strings.IndexByte(pkt, '[')]
		if pkt[1+len(id):] != `["q",1]` {
			t.Errorf("packet %q", pkt)
		}
		if reply != "" {
			c.send("3" + id + reply)
		}
	}
	type result struct {
		rs  []*Reply
		err error
	}
	res := make(chan result, 1)
	go func() {
		rs, err := srv.To("room").EmitWithAck(context.Background(), "q", 1)
		res <- result{rs, err}
	}()
	answer(cs[0], `["a"]`)
	answer(cs[1], `["b"]`)
	answer(cs[2], `["c"]`)
	got := <-res
	if got.err != nil || len(got.rs) != 3 {
		t.Fatalf("replies %d, err %v", len(got.rs), got.err)
	}
	var all []string
	for _, r := range got.rs {
		var v string
		_ = r.Decode(&v)
		all = append(all, v)
	}
	slices.Sort(all)
	if !slices.Equal(all, []string{"a", "b", "c"}) {
		t.Fatalf("replies %v", all)
	}

	// One client silent: ErrAckTimeout with the replies received.
	go func() {
		rs, err := srv.To("room").EmitWithAck(context.Background(), "q", 1)
		res <- result{rs, err}
	}()
	answer(cs[0], `["a"]`)
	answer(cs[1], "")
	answer(cs[2], `["c"]`)
	got = <-res
	if !errors.Is(got.err, ErrAckTimeout) || len(got.rs) != 2 {
		t.Fatalf("replies %d, err %v", len(got.rs), got.err)
	}

	// A disconnection counts as an answer.
	go func() {
		rs, err := srv.To("room").EmitWithAck(context.Background(), "q", 1)
		res <- result{rs, err}
	}()
	answer(cs[0], `["a"]`)
	answer(cs[1], "")
	answer(cs[2], `["c"]`)
	cs[1].send("1")
	got = <-res
	if got.err != nil || len(got.rs) != 2 {
		t.Fatalf("replies %d, err %v", len(got.rs), got.err)
	}
}
