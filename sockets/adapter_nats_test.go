package sockets

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/collabd/collabd/internal/natstest"
	"github.com/collabd/collabd/sockets/parser"
)

// runNATS starts an embedded nats-server on 127.0.0.1 at a random port; it is shut down at
// cleanup. It returns its client URL.
func runNATS(t testing.TB) string {
	t.Helper()
	return startNATS(t, -1).ClientURL()
}

// startNATS starts an embedded nats-server on 127.0.0.1 at port (-1: a random one) and shuts
// it down at cleanup (shutting it down earlier is fine).
func startNATS(t testing.TB, port int) *natsserver.Server {
	t.Helper()
	return natstest.Run(t, natstest.Options("", port, false))
}

// natsConn connects to url; the connection is closed at cleanup.
func natsConn(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name(t.Name())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// natsNode is one collabd node: a Server with its own NATS connection, on its own loopback
// HTTP server.
type natsNode struct {
	srv  *Server
	url  string
	conn chan *Socket // sockets of "/" as they connect
}

func newNATSNode(t *testing.T, natsURL string, cfg Config, opts NATSAdapterOptions) *natsNode {
	t.Helper()
	return newNATSNodeConn(t, natsConn(t, natsURL), cfg, opts)
}

func newNATSNodeConn(t *testing.T, nc *nats.Conn, cfg Config, opts NATSAdapterOptions) *natsNode {
	t.Helper()
	cfg.Adapter = NewNATSAdapter(nc, opts)
	srv, url := newTestServer(t, cfg)
	n := &natsNode{srv: srv, url: url, conn: make(chan *Socket, 16)}
	srv.OnConnection(func(s *Socket) { n.conn <- s })
	return n
}

// client connects a client to "/" of the node and returns it with its server-side socket.
func (n *natsNode) client(t *testing.T) (*tclient, *Socket) {
	t.Helper()
	c := dial(t, n.url)
	sid, _ := c.connect("/", "")
	select {
	case s := <-n.conn:
		if s.ID() != sid {
			t.Fatalf("socket %s, ack %s", s.ID(), sid)
		}
		return c, s
	case <-time.After(waitTime):
		t.Fatal("no socket")
	}
	return nil, nil
}

// waitPeers waits until every node's adapter of nsp knows every other node.
func waitPeers(t testing.TB, nsp string, nodes ...*natsNode) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for _, n := range nodes {
		if n == nil {
			continue // a node that is not a Server (a raw NATS client), counted all the same
		}
		a := n.srv.Of(nsp).Adapter().(*natsAdapter)
		for a.peerCount() != len(nodes)-1 {
			if time.Now().After(deadline) {
				t.Fatalf("node knows %d peers, want %d", a.peerCount(), len(nodes)-1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// expectEvents checks that the clients in want, and only them, receive the packet that
// starts with prefix exactly once, before the marker that follows it.
func expectEvents(t *testing.T, step, prefix string, all, want []*tclient) {
	t.Helper()
	for i, cl := range all {
		got := cl.next()
		if slices.Contains(want, cl) {
			if got.binary || !strings.HasPrefix(got.data, "4"+prefix) {
				t.Fatalf("%s: client %d got %q, want %q...", step, i, got.data, prefix)
			}
			got = cl.next()
		}
		if got.data != `42["marker"]` {
			t.Fatalf("%s: client %d got %q, want the marker", step, i, got.data)
		}
	}
}

func TestNATSAdapterBroadcast(t *testing.T) {
	natsURL := runNATS(t)
	na := newNATSNode(t, natsURL, Config{}, NATSAdapterOptions{})
	nb := newNATSNode(t, natsURL, Config{}, NATSAdapterOptions{})
	nc := newNATSNode(t, natsURL, Config{}, NATSAdapterOptions{})
	waitPeers(t, "/", na, nb, nc)
	a1, sa1 := na.client(t)
	a2, _ := na.client(t)
	b1, sb1 := nb.client(t)
	b2, sb2 := nb.client(t)
	c1, _ := nc.client(t)
	all := []*tclient{a1, a2, b1, b2, c1}
	sa1.Join("r1")
	sb1.Join("r1")
	sb2.Join("r2")

	A, B := na.srv, nb.srv
	steps := []struct {
		name   string
		from   *Server // where the marker comes from: the same node as the step
		emit   func() error
		prefix string
		want   []*tclient
	}{
		{"namespace emit", A, func() error { return A.Emit("m", 1) }, `2["m",1]`, all},
		{"to room", A, func() error { return A.To("r1").Emit("m", 2) }, `2["m",2]`, []*tclient{a1, b1}},
		{"to two rooms once each", A, func() error { return A.To("r1", "r2").Emit("m", 3) }, `2["m",3]`, []*tclient{a1, b1, b2}},
		{"except", A, func() error { return A.Except("r1").Emit("m", 4) }, `2["m",4]`, []*tclient{a2, b2, c1}},
		{"to except socket id", A, func() error { return A.To("r1", "r2").Except(sb1.ID()).Emit("m", 5) }, `2["m",5]`, []*tclient{a1, b2}},
		{"to remote socket id", A, func() error { return A.To(sb2.ID()).Emit("m", 6) }, `2["m",6]`, []*tclient{b2}},
		{"socket broadcast skips the sender only", A, func() error { return sa1.Broadcast().Emit("m", 7) }, `2["m",7]`, []*tclient{a2, b1, b2, c1}},
		{"socket to room", A, func() error { return sa1.To("r1").Emit("m", 8) }, `2["m",8]`, []*tclient{b1}},
		{"local stays local", A, func() error { return A.Local().Emit("m", 9) }, `2["m",9]`, []*tclient{a1, a2}},
		{"local to room", A, func() error { return A.Local().To("r1").Emit("m", 10) }, `2["m",10]`, []*tclient{a1}},
		{"volatile", A, func() error { return A.Volatile().To("r2").Emit("m", 11) }, `2["m",11]`, []*tclient{b2}},
		{"from the other node", B, func() error { return sb1.To("r1").Emit("m", 12) }, `2["m",12]`, []*tclient{a1}},
		{"binary", A, func() error { return A.To("r2").Emit("m", []byte{1, 2, 3}) }, `51-["m",{"_placeholder":true,"num":0}]`, []*tclient{b2}},
	}
	for _, st := range steps {
		if err := st.emit(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.prefix[0] == '5' {
			// The attachment follows the text frame; check it here, then the marker.
			got := b2.next()
			if got.data != "4"+st.prefix {
				t.Fatalf("%s: got %q", st.name, got.data)
			}
			b2.expectBin([]byte{1, 2, 3})
			if err := st.from.Emit("marker"); err != nil {
				t.Fatal(err)
			}
			expectEvents(t, st.name, "", all, nil)
			continue
		}
		// The marker reaches everyone after the step's packet: one node's broadcasts reach
		// every receiver in one order.
		if err := st.from.Emit("marker"); err != nil {
			t.Fatal(err)
		}
		expectEvents(t, st.name, st.prefix, all, st.want)
	}

	// A socket that left its room is no longer reached from the other node.
	sb1.Leave("r1")
	if err := A.To("r1").Emit("m", 13); err != nil {
		t.Fatal(err)
	}
	if err := A.Emit("marker"); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, "after leave", `2["m",13]`, all, []*tclient{a1})

	// Another namespace of the same nodes is a separate channel.
	chatA := A.Of("/chat")
	B.Of("/chat")
	nc.srv.Of("/chat")
	waitPeers(t, "/chat", na, nb, nc)
	b1.send("0/chat,")
	b1.expectPrefix(`0/chat,{"sid"`)
	if err := chatA.Emit("hi"); err != nil {
		t.Fatal(err)
	}
	b1.expect(`2/chat,["hi"]`)
	if err := A.Emit("marker"); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, "other namespace", "", all, nil)
}

func TestNATSAdapterRemoteOps(t *testing.T) {
	natsURL := runNATS(t)
	na := newNATSNode(t, natsURL, Config{}, NATSAdapterOptions{})
	nb := newNATSNode(t, natsURL, Config{}, NATSAdapterOptions{})
	waitPeers(t, "/", na, nb)
	_, sa1 := na.client(t)
	b1, sb1 := nb.client(t)
	b2, sb2 := nb.client(t)
	sa1.Join("r1")
	sb1.Join("r1")
	sb1.SetData(map[string]int{"n": 7})
	ctx := context.Background()
	A := na.srv

	// FetchSockets sees both nodes; remote Data arrives as JSON.
	rs, err := A.Of("/").In("r1").FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
		if r.ID == sb1.ID() {
			if d, ok := r.Data.(json.RawMessage); !ok || string(d) != `{"n":7}` {
				t.Fatalf("remote data %#v", r.Data)
			}
			if !slices.Equal(r.Rooms, sortedStrings(sb1.ID(), "r1")) {
				t.Fatalf("remote rooms %v", r.Rooms)
			}
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, sortedStrings(sa1.ID(), sb1.ID())) {
		t.Fatalf("fetch r1: %v", ids)
	}
	if rs, err := A.Of("/").Local().FetchSockets(ctx); err != nil || len(rs) != 1 {
		t.Fatalf("local fetch: %d, %v", len(rs), err)
	}

	// SocketsJoin and SocketsLeave reach the other node before they return.
	if err := A.Of("/").Except("r1").SocketsJoin(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(sb2.Rooms(), "r2") || slices.Contains(sb1.Rooms(), "r2") || slices.Contains(sa1.Rooms(), "r2") {
		t.Fatalf("SocketsJoin: %v %v %v", sa1.Rooms(), sb1.Rooms(), sb2.Rooms())
	}
	if err := A.Of("/").In("r2").SocketsLeave(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(sb2.Rooms(), "r2") {
		t.Fatal("SocketsLeave")
	}

	// RemoteSocket methods act on the other node.
	for _, r := range rs {
		if r.ID != sb1.ID() {
			continue
		}
		if err := r.Emit("remote", "hi"); err != nil {
			t.Fatal(err)
		}
		b1.expect(`2["remote","hi"]`)
		if err := r.Join(ctx, "r9"); err != nil || !slices.Contains(sb1.Rooms(), "r9") {
			t.Fatalf("remote join: %v, %v", err, sb1.Rooms())
		}
	}

	// DisconnectSockets on the other node.
	if err := A.Of("/").In(sb2.ID()).DisconnectSockets(ctx, false); err != nil {
		t.Fatal(err)
	}
	b2.expect("1")
	if sb2.Connected() || sb2.DisconnectReason() != ReasonServerNamespaceDisconnect {
		t.Fatalf("b2: connected %v, reason %q", sb2.Connected(), sb2.DisconnectReason())
	}
	b2.expectSilence(50 * time.Millisecond)
}

func TestNATSAdapterEmitWithAck(t *testing.T) {
	natsURL := runNATS(t)
	na := newNATSNode(t, natsURL, Config{AckTimeout: 300 * time.Millisecond}, NATSAdapterOptions{})
	nb := newNATSNode(t, natsURL, Config{AckTimeout: 300 * time.Millisecond}, NATSAdapterOptions{})
	nc := newNATSNode(t, natsURL, Config{}, NATSAdapterOptions{}) // no socket in the room
	waitPeers(t, "/", na, nb, nc)
	a1, sa1 := na.client(t)
	b1, sb1 := nb.client(t)
	b2, sb2 := nb.client(t)
	c1, _ := nc.client(t)
	for _, s := range []*Socket{sa1, sb1, sb2} {
		s.Join("room")
	}
	bAdapter := nb.srv.Of("/").Adapter().(*natsAdapter)

	// answer reads the question and, unless reply is empty, acknowledges it.
	answer := func(c *tclient, reply string) {
		t.Helper()
		pkt := c.expectPrefix("2")
		id := pkt[1:strings.IndexByte(pkt, '[')]
		if pkt[1+len(id):] != `["q",1]` {
			t.Fatalf("packet %q", pkt)
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
	emit := func(op BroadcastOperator) {
		go func() {
			rs, err := op.EmitWithAck(context.Background(), "q", 1)
			res <- result{rs, err}
		}()
	}
	replies := func(got result) []string {
		var all []string
		for _, r := range got.rs {
			var v string
			if err := r.Decode(&v); err != nil {
				t.Fatal(err)
			}
			all = append(all, v)
		}
		slices.Sort(all)
		return all
	}
	servedEmpty := func() {
		t.Helper()
		deadline := time.Now().Add(waitTime)
		for {
			bAdapter.mu.Lock()
			n := len(bAdapter.served)
			bAdapter.mu.Unlock()
			if n == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("node B still awaits %d acknowledgements", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// Every member, on both nodes, answers.
	emit(na.srv.To("room"))
	answer(a1, `["a"]`)
	answer(b1, `["b1"]`)
	answer(b2, `["b2"]`)
	got := <-res
	if got.err != nil || !slices.Equal(replies(got), []string{"a", "b1", "b2"}) {
		t.Fatalf("replies %v, err %v", replies(got), got.err)
	}
	servedEmpty()

	// A remote member silent: ErrAckTimeout with the others' replies, and node B forgets
	// the acknowledgement it still awaited.
	emit(na.srv.To("room"))
	answer(a1, `["a"]`)
	answer(b1, `["b1"]`)
	answer(b2, "")
	got = <-res
	if !errors.Is(got.err, ErrAckTimeout) || !slices.Equal(replies(got), []string{"a", "b1"}) {
		t.Fatalf("replies %v, err %v", replies(got), got.err)
	}
	servedEmpty()

	// From node B, except a socket of node A; binary replies cross too.
	emit(nb.srv.To("room").Except(sa1.ID()))
	answer(b1, `["b1"]`)
	pkt := b2.expectPrefix("2")
	id := pkt[1:strings.IndexByte(pkt, '[')]
	b2.send("61-" + id + `[{"_placeholder":true,"num":0}]`)
	b2.sendBin([]byte{4, 2})
	got = <-res
	if got.err != nil || len(got.rs) != 2 {
		t.Fatalf("replies %d, err %v", len(got.rs), got.err)
	}
	if !slices.ContainsFunc(got.rs, func(r *Reply) bool {
		var bin []byte
		return r.Decode(&bin) == nil && string(bin) == "\x04\x02"
	}) {
		t.Fatal("the binary reply did not cross")
	}

	// A remote member that disconnects counts as answered.
	emit(na.srv.To("room"))
	answer(a1, `["a"]`)
	answer(b1, `["b1"]`)
	answer(b2, "")
	b2.send("1")
	got = <-res
	if got.err != nil || !slices.Equal(replies(got), []string{"a", "b1"}) {
		t.Fatalf("replies %v, err %v", replies(got), got.err)
	}
	servedEmpty()

	// Local() asks this node's sockets only.
	emit(na.srv.Local().To("room"))
	answer(a1, `["a"]`)
	got = <-res
	if got.err != nil || !slices.Equal(replies(got), []string{"a"}) {
		t.Fatalf("replies %v, err %v", replies(got), got.err)
	}
	b1.expectSilence(50 * time.Millisecond)
	c1.expectSilence(10 * time.Millisecond) // node C had no member: it never got a question
}

// The adapter carries on after NATS restarts: nats.go reconnects and subscribes again.
func TestNATSAdapterReconnect(t *testing.T) {
	ns := startNATS(t, -1)
	url := ns.ClientURL()
	port := ns.Addr().(*net.TCPAddr).Port
	reconnected := make(chan struct{}, 2)
	conn := func() *nats.Conn {
		return natsConn(t, url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
			nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	}
	ncA, ncB := conn(), conn()
	na := newNATSNodeConn(t, ncA, Config{}, NATSAdapterOptions{})
	nb := newNATSNodeConn(t, ncB, Config{}, NATSAdapterOptions{})
	waitPeers(t, "/", na, nb)
	a1, sa1 := na.client(t)
	b1, sb1 := nb.client(t)
	sa1.Join("r")
	sb1.Join("r")
	if err := na.srv.To("r").Emit("m", 1); err != nil {
		t.Fatal(err)
	}
	a1.expect(`2["m",1]`)
	b1.expect(`2["m",1]`)

	ns.Shutdown()
	ns.WaitForShutdown()
	startNATS(t, port)
	for range 2 {
		select {
		case <-reconnected:
		case <-time.After(waitTime):
			t.Fatal("not reconnected")
		}
	}
	// A round trip on each connection: its subscriptions, sent first, are in place.
	for _, nc := range []*nats.Conn{ncA, ncB} {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := nb.srv.To("r").Emit("m", 2); err != nil {
		t.Fatal(err)
	}
	a1.expect(`2["m",2]`)
	b1.expect(`2["m",2]`)
	if rs, err := na.srv.Of("/").FetchSockets(context.Background()); err != nil || len(rs) != 2 {
		t.Fatalf("fetch after reconnect: %d sockets, %v", len(rs), err)
	}
}

// A node that is known but does not answer makes remote operations time out with the
// answers of the others.
func TestNATSAdapterRequestTimeout(t *testing.T) {
	natsURL := runNATS(t)
	opts := NATSAdapterOptions{RequestTimeout: 200 * time.Millisecond}
	na := newNATSNode(t, natsURL, Config{}, opts)
	nb := newNATSNode(t, natsURL, Config{}, opts)
	waitPeers(t, "/", na, nb)
	_, sb := nb.client(t)

	// A mute node: it says hello, then never answers.
	mute := natsConn(t, natsURL)
	a := na.srv.Of("/").Adapter().(*natsAdapter)
	hello := append([]byte{natsVersion, natsKindHello}, appendString(appendString(nil, "mute"), "/")...)
	if err := mute.Publish(a.subj, hello); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTime)
	for a.peerCount() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the mute node is not known")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	rs, err := na.srv.Of("/").FetchSockets(context.Background())
	if !errors.Is(err, ErrNATSTimeout) {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d < opts.RequestTimeout {
		t.Fatalf("returned after %v", d)
	}
	if len(rs) != 1 || rs[0].ID != sb.ID() {
		t.Fatalf("sockets %v", rs)
	}

	// EmitWithAck cannot know how many replies to wait for: it fails, and node B, which
	// counted, is told to forget what it awaits.
	sb.Join("r")
	if _, err := na.srv.To("r").EmitWithAck(context.Background(), "q"); !errors.Is(err, ErrNATSTimeout) {
		t.Fatalf("EmitWithAck: %v", err)
	}
	b := nb.srv.Of("/").Adapter().(*natsAdapter)
	for {
		b.mu.Lock()
		n := len(b.served)
		b.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node B still awaits acknowledgements")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Its goodbye: no longer waited for.
	bye := append([]byte{natsVersion, natsKindBye}, appendString(appendString(nil, "mute"), "/")...)
	if err := mute.Publish(a.subj, bye); err != nil {
		t.Fatal(err)
	}
	for a.peerCount() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the mute node is still known")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := na.srv.Of("/").FetchSockets(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// With recovery on, each node appends its own offset to the broadcasts it delivers and keeps
// them, so a session recovers on its node with the broadcasts of every node it missed.
func TestNATSAdapterRecovery(t *testing.T) {
	natsURL := runNATS(t)
	cfg := Config{Recovery: Recovery{Enabled: true}}
	na := newNATSNode(t, natsURL, cfg, NATSAdapterOptions{})
	nb := newNATSNode(t, natsURL, cfg, NATSAdapterOptions{})
	waitPeers(t, "/", na, nb)
	a1, sa1 := na.client(t)
	b1 := dial(t, nb.url)
	_, pid := b1.connect("/", "")
	sb1 := <-nb.conn
	sb1.Join("r")
	sa1.Join("r")

	if err := na.srv.To("r").Emit("m", 1); err != nil {
		t.Fatal(err)
	}
	offA := lastArg(t, a1.expectPrefix(`2["m",1,`))
	offB := lastArg(t, b1.expectPrefix(`2["m",1,`))

	// b1 drops; a broadcast from A and one from B are missed meanwhile.
	b1.ws.Close()
	deadline := time.Now().Add(waitTime)
	for sb1.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("b1 still connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := na.srv.To("r").Emit("m", 2); err != nil {
		t.Fatal(err)
	}
	if err := nb.srv.To("r").Emit("m", 3); err != nil {
		t.Fatal(err)
	}
	a1.expectPrefix(`2["m",2,`)
	a1.expectPrefix(`2["m",3,`)
	_ = offA

	b1 = dial(t, nb.url)
	b1.send(`0{"pid":"` + pid + `","offset":"` + offB + `"}`)
	// The two nodes' broadcasts have no common order: either may come first.
	var missed []string
	for range 2 {
		pkt := b1.expectPrefix(`2["m",`)
		missed = append(missed, pkt[:7])
	}
	slices.Sort(missed)
	if !slices.Equal(missed, []string{`2["m",2`, `2["m",3`}) {
		t.Fatalf("missed %v", missed)
	}
	b1.expectPrefix(`0{"sid":"` + sb1.ID() + `"`)
	if s := <-nb.conn; !s.Recovered() {
		t.Fatal("not recovered")
	}
}

func TestNATSEnvelope(t *testing.T) {
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	a := &natsAdapter{memoryAdapter: srv.main.adapter.(*memoryAdapter), node: "node1"}
	p := &parser.Packet{Type: parser.Event, Namespace: "/", Data: []byte(`["m",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1, 2}}}
	opts := BroadcastOptions{Rooms: []string{"r1", "r2"}, Except: []string{"x"}, Volatile: true}
	env := a.encodeBroadcast(nil, p, opts)

	r := &wireReader{b: env}
	if v, k, o, ns := r.byte(), r.byte(), r.string(), r.string(); v != natsVersion || k != natsKindBroadcast || o != "node1" || ns != "/" {
		t.Fatalf("header %d %c %q %q", v, k, o, ns)
	}
	got, gotOpts := decodeBroadcast(r, "/")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got.Type != p.Type || string(got.Data) != string(p.Data) || len(got.Attachments) != 1 || string(got.Attachments[0]) != "\x01\x02" ||
		!slices.Equal(gotOpts.Rooms, opts.Rooms) || !slices.Equal(gotOpts.Except, opts.Except) || !gotOpts.Volatile || got.HasID {
		t.Fatalf("decoded %+v %+v", got, gotOpts)
	}
	// Appending to the payload (a recovery offset) must not overwrite the attachment.
	got.Data = append(got.Data, 'x')
	if got.Attachments[0][0] != 1 {
		t.Fatal("payload aliases the attachment")
	}
	// An origin that is not a node id would be a subject token in answers: dropped.
	for _, origin := range []string{"", "a.b", "a*", ">", "a b", strings.Repeat("a", 65)} {
		b := &natsAdapter{memoryAdapter: a.memoryAdapter, node: origin, log: srv.cfg.Logger}
		if _, _, ok := b.readHeader(&wireReader{b: b.encodeBroadcast(nil, p, opts)}); ok {
			t.Fatalf("origin %q accepted", origin)
		}
	}
	a.log = srv.cfg.Logger
	if _, _, ok := a.readHeader(&wireReader{b: env}); !ok {
		t.Fatal("valid header refused")
	}

	// Every truncation is an error, never a panic.
	for n := range len(env) {
		r := &wireReader{b: env[:n]}
		_, _, _, _ = r.byte(), r.byte(), r.string(), r.string()
		decodeBroadcast(r, "/")
		if r.err == nil {
			t.Fatalf("truncated at %d: no error", n)
		}
	}
}

// Envelopes come from the network: decoding any bytes must fail cleanly, never panic, and
// what decodes must survive a round trip.
func FuzzNATSEnvelope(f *testing.F) {
	p := &parser.Packet{Type: parser.Event, Data: []byte(`["m",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1, 2}}}
	f.Add(appendBroadcast(nil, p, BroadcastOptions{Rooms: []string{"r1", "r2"}, Except: []string{"x"}, Volatile: true}))
	f.Add(appendBroadcast(nil, &parser.Packet{Type: parser.Event, Data: []byte(`["m"]`), ID: 7, HasID: true}, BroadcastOptions{}))
	f.Add(appendAckReply(nil, &Reply{Args{raw: []json.RawMessage{json.RawMessage(`"a"`)}, atts: [][]byte{{3}}}}, nil))
	f.Add(appendAckReply(nil, nil, ErrDisconnected))
	f.Add(appendAckReply(nil, nil, errors.New("boom")))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &wireReader{b: b}
		got, opts := decodeBroadcast(r, "/")
		if r.err == nil {
			// Not byte for byte (unknown flag bits, long varints are accepted), but the
			// decoded values survive a second round.
			r2 := &wireReader{b: appendBroadcast(nil, got, opts)}
			got2, opts2 := decodeBroadcast(r2, "/")
			if r2.err != nil || got2.Type != got.Type || got2.ID != got.ID || got2.HasID != got.HasID ||
				string(got2.Data) != string(got.Data) || !slices.EqualFunc(got2.Attachments, got.Attachments, slices.Equal) ||
				!slices.Equal(opts2.Rooms, opts.Rooms) || !slices.Equal(opts2.Except, opts.Except) || opts2.Volatile != opts.Volatile {
				t.Fatalf("round trip of %x: %v", b, r2.err)
			}
		}
		r = &wireReader{b: b}
		ans := decodeAckReply(r)
		if r.err == nil && ans.r != nil && len(ans.r.atts) > parser.MaxAttachments {
			t.Fatalf("%d attachments", len(ans.r.atts))
		}
	})
}

// BenchmarkNATSEnvelope encodes a typical collabd broadcast (one room, the sender excepted)
// into its envelope and decodes it, as the sending and each receiving node do.
func BenchmarkNATSEnvelope(b *testing.B) {
	p := &parser.Packet{Type: parser.Event, Namespace: "/", Data: []byte(`["doc:op",{"doc":"notes","rev":42,"op":[12,"hello",-3],"client":"c1","seq":7,"user":"ann","time":1765000000000}]`)}
	opts := BroadcastOptions{Rooms: []string{"doc:notes"}, Except: []string{"Kx3PqZ0aB1cD2eF3gH4i"}}
	a := &natsAdapter{memoryAdapter: &memoryAdapter{nsp: &Namespace{name: "/"}}, node: "Mn7wQ2eR4tY6uI8oP0aS"}
	b.ReportAllocs()
	for b.Loop() {
		bp := a.getBuf()
		*bp = a.encodeBroadcast(*bp, p, opts)
		r := &wireReader{b: *bp}
		_, _, _ = a.readHeader(r)
		if decodeBroadcast(r, "/"); r.err != nil {
			b.Fatal(r.err)
		}
		a.putBuf(bp)
	}
}

// Close fails the operations still waiting for other nodes, at once.
func TestNATSAdapterCloseWhileWaiting(t *testing.T) {
	natsURL := runNATS(t)
	na := newNATSNode(t, natsURL, Config{}, NATSAdapterOptions{RequestTimeout: time.Minute})
	a := na.srv.Of("/").Adapter().(*natsAdapter)
	mute := natsConn(t, natsURL)
	// The node's subscription reaches the server before the mute node's
	// hello does (they travel on different connections).
	if err := a.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	hello := append([]byte{natsVersion, natsKindHello}, appendString(appendString(nil, "mute"), "/")...)
	if err := mute.Publish(a.subj, hello); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, "/", na, nil) // one peer: the mute node
	errs := make(chan error, 2)
	go func() {
		_, err := na.srv.Of("/").FetchSockets(context.Background())
		errs <- err
	}()
	go func() {
		_, err := na.srv.To("r").EmitWithAck(context.Background(), "q")
		errs <- err
	}()
	deadline := time.Now().Add(waitTime)
	for {
		a.mu.Lock()
		n := len(a.reqs) + len(a.acks)
		a.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the operations are not waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrNATSClosed) {
				t.Fatalf("err %v", err)
			}
		case <-time.After(waitTime):
			t.Fatal("still waiting after Close")
		}
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
