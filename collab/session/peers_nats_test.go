package session_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/internal/natstest"
)

// runCoreNATS starts an embedded nats-server (core NATS: presence needs no
// JetStream) and returns its URL; it is shut down at cleanup.
func runCoreNATS(t testing.TB) string {
	t.Helper()
	return natstest.Run(t, natstest.Options("", -1, false)).ClientURL()
}

func connectNATS(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// clusterNode is one collabd node of a test cluster: its own bbolt store
// and hub (ops are not the point), its sockets server and session glue,
// and its presence bus on its own NATS connection.
type clusterNode struct {
	*env
	nc       *nats.Conn
	peers    *session.NATSPeers
	peerLogs *syncBuffer
}

func newClusterNode(t testing.TB, url, id string, cfg session.NATSPeersConfig) *clusterNode {
	t.Helper()
	n := &clusterNode{nc: connectNATS(t, url), peerLogs: &syncBuffer{}}
	cfg.Logger = zerolog.New(n.peerLogs)
	var err error
	n.peers, err = session.NewNATSPeers(n.nc, id, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the bus closes after the env stopped.
	t.Cleanup(func() { _ = n.peers.Close() })
	n.env = newEnv(t, envOpts{peers: n.peers})
	return n
}

type memberEv struct {
	Doc    string       `json:"doc"`
	Client string       `json:"client"`
	User   session.User `json:"user"`
	Joined bool         `json:"joined"`
}

type presenceEv struct {
	Doc    string              `json:"doc"`
	Client string              `json:"client"`
	User   session.User        `json:"user"`
	Rev    uint64              `json:"rev"`
	Sel    []session.Selection `json:"sel"`
}

// until collects tc's events until one satisfies stop (which it returns
// last), or fails after 10 s.
func (tc *tclient) until(stop func(event) bool) []event {
	tc.t.Helper()
	deadline := time.After(10 * time.Second)
	var seen []event
	for {
		select {
		case ev := <-tc.events:
			seen = append(seen, ev)
			if stop(ev) {
				return seen
			}
		case <-deadline:
			tc.t.Fatalf("event not seen within 10s; saw %d others", len(seen))
			return nil
		}
	}
}

func isMember(client string, joined bool) func(event) bool {
	return func(ev event) bool {
		var m memberEv
		return ev.name == "doc:member" && json.Unmarshal(ev.arg, &m) == nil && m.Client == client && m.Joined == joined
	}
}

func isPresence(client string, anchor uint64) func(event) bool {
	return func(ev event) bool {
		var p presenceEv
		return ev.name == "doc:presence" && json.Unmarshal(ev.arg, &p) == nil && p.Client == client &&
			len(p.Sel) == 1 && p.Sel[0].Anchor == anchor
	}
}

// learnJoined waits until tc knows client as a member: in its join ack or,
// in cluster mode, as a doc:member event right after it.
func (tc *tclient) learnJoined(a ack, client string) {
	tc.t.Helper()
	for _, m := range a.Members {
		if m.Client == client {
			return
		}
	}
	tc.until(isMember(client, true))
}

func count(evs []event, match func(event) bool) int {
	n := 0
	for _, ev := range evs {
		if match(ev) {
			n++
		}
	}
	return n
}

func sel(anchor, head uint64) []any { return []any{obj("anchor", anchor, "head", head)} }

// The document id holds '.' and '~', which the subjects escape.
const clusterDoc = "team.notes~v2"

func TestPeersAcrossNodes(t *testing.T) {
	url := runCoreNATS(t)
	na := newClusterNode(t, url, "node-a", session.NATSPeersConfig{})
	nb := newClusterNode(t, url, "node-b", session.NATSPeersConfig{})

	a := na.client()
	ackA := a.mustOK("doc:join", obj("doc", clusterDoc, "client", "ca", "user", obj("name", "Ann")))
	if len(ackA.Members) != 0 {
		t.Fatalf("first member's ack lists %s", ackA.raw)
	}
	b := nb.client()
	ackB := b.mustOK("doc:join", obj("doc", clusterDoc, "client", "cb", "user", obj("name", "Bob")))
	b.learnJoined(ackB, "ca")     // A answered B's question
	a.until(isMember("cb", true)) // B announced its member

	// Presence crosses both ways, with the user.
	a.mustOK("doc:presence", obj("doc", clusterDoc, "rev", 0, "sel", sel(1, 3)))
	evs := b.until(isPresence("ca", 1))
	var p presenceEv
	if err := json.Unmarshal(evs[len(evs)-1].arg, &p); err != nil || p.User.Name != "Ann" || p.Doc != clusterDoc || p.Sel[0].Head != 3 {
		t.Fatalf("presence on B: %s (%v)", evs[len(evs)-1].arg, err)
	}
	b.mustOK("doc:presence", obj("doc", clusterDoc, "rev", 0, "sel", sel(2, 2)))
	a.until(isPresence("cb", 2))

	// A later member on B finds the member of A, with its presence, in its
	// ack: B keeps the remote members of a watched document.
	c := nb.client()
	ackC := c.mustOK("doc:join", obj("doc", clusterDoc, "client", "cc"))
	var found bool
	for _, m := range ackC.Members {
		if m.Client == "ca" {
			found = m.User.Name == "Ann" && len(m.Sel) == 1 && m.Sel[0].Anchor == 1 && m.Rev != nil
		}
	}
	if !found {
		t.Fatalf("ack on B lacks ca with its presence: %s", ackC.raw)
	}
	a.until(isMember("cc", true))

	// A node never hears its own events: a second member on A is
	// announced to a once (locally), not again through NATS. B seeing it
	// means the server has routed it; then B's next presence reaches A
	// after any echo would have.
	a2 := na.client()
	a2.mustOK("doc:join", obj("doc", clusterDoc, "client", "ca2"))
	b.until(isMember("ca2", true))
	b.mustOK("doc:presence", obj("doc", clusterDoc, "rev", 0, "sel", sel(7, 7)))
	evs = a.until(isPresence("cb", 7))
	if n := count(evs, isMember("ca2", true)); n != 1 {
		t.Fatalf("a saw ca2 join %d times, want once", n)
	}

	// Leaving on B reaches A.
	b.mustOK("doc:leave", obj("doc", clusterDoc))
	a.until(isMember("cb", false))
	// Disconnecting on A reaches B.
	a2.c.Close()
	c.until(isMember("ca2", false))
}

func TestPeersNodeSilentExpires(t *testing.T) {
	url := runCoreNATS(t)
	fast := session.NATSPeersConfig{Heartbeat: 20 * time.Millisecond, Expiry: 200 * time.Millisecond}
	na := newClusterNode(t, url, "node-a", fast)
	nb := newClusterNode(t, url, "node-b", fast)

	a := na.client()
	a.mustOK("doc:join", obj("doc", clusterDoc, "client", "ca"))
	b := nb.client()
	ackB := b.mustOK("doc:join", obj("doc", clusterDoc, "client", "cb"))
	b.learnJoined(ackB, "ca")
	a.until(isMember("cb", true))

	// B's link to NATS dies without a goodbye: its heartbeats stop and A
	// forgets its members once they are overdue.
	nb.nc.Close()
	a.until(isMember("cb", false))
	if !strings.Contains(na.peerLogs.String(), "peer node silent") {
		t.Fatalf("A did not log the silent node: %s", na.peerLogs.String())
	}
}

func TestPeersGoodbye(t *testing.T) {
	url := runCoreNATS(t)
	// Expiry far beyond the test: only the goodbye can remove B's members.
	slow := session.NATSPeersConfig{Expiry: time.Hour}
	na := newClusterNode(t, url, "node-a", slow)
	nb := newClusterNode(t, url, "node-b", slow)

	a := na.client()
	a.mustOK("doc:join", obj("doc", clusterDoc, "client", "ca"))
	b := nb.client()
	ackB := b.mustOK("doc:join", obj("doc", clusterDoc, "client", "cb"))
	b.learnJoined(ackB, "ca")
	a.until(isMember("cb", true))

	if err := nb.peers.Close(); err != nil {
		t.Fatal(err)
	}
	a.until(isMember("cb", false))
	if err := nb.peers.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}

func TestPeersMalformedMessagesDropped(t *testing.T) {
	url := runCoreNATS(t)
	na := newClusterNode(t, url, "node-a", session.NATSPeersConfig{})
	a := na.client()
	a.mustOK("doc:join", obj("doc", clusterDoc, "client", "ca"))

	// A raw NATS client speaks on the document's subject; '.' and '~' of
	// the id are escaped as =2E and =7E.
	spy := connectNATS(t, url)
	subject := "collabd.presence.doc.team=2Enotes=7Ev2"
	user := `"user":{"name":"Spy","color":"#123456"}`
	head := `{"v":1,"node":"spy","doc":"` + clusterDoc + `",`
	bad := []string{
		`not json`,
		`[]`,
		`{"v":2,"k":"join","node":"spy","doc":"` + clusterDoc + `","client":"x",` + user + `}`,
		`{"v":1,"k":"join","node":"bad node!","doc":"` + clusterDoc + `","client":"x",` + user + `}`,
		`{"v":1,"k":"join","node":"spy","doc":"other","client":"x",` + user + `}`,
		`{"v":1,"k":"join","node":"spy","doc":"bad doc","client":"x",` + user + `}`,
		head + `"k":"join","client":"x"}`,
		head + `"k":"join","client":"x","user":{"name":"Spy","color":"red"}}`,
		head + `"k":"join","client":"x","user":{"name":"` + strings.Repeat("n", 65) + `","color":"#123"}}`,
		head + `"k":"join","client":"` + strings.Repeat("c", 129) + `",` + user + `}`,
		head + `"k":"join","client":7,` + user + `}`,
		head + `"k":"presence","client":"x",` + user + `,"sel":[]}`,
		head + `"k":"presence","client":"x",` + user + `,"rev":-1,"sel":[]}`,
		head + `"k":"presence","client":"x",` + user + `,"rev":1,"sel":[{"anchor":-1,"head":0}]}`,
		head + `"k":"presence","client":"x",` + user + `,"rev":1,"sel":[` + strings.Repeat(`{"anchor":1,"head":1},`, 100) + `{"anchor":1,"head":1}]}`,
		head + `"k":"leave","client":"x",` + user + `}`,
		head + `"k":"sync","client":"x"}`,
		head + `"k":"explode","client":"x"}`,
		`{"v":1,"k":"bye","node":"spy"}`, // a goodbye belongs on the nodes subject
		head + `"k":"join","client":"x",` + user + `,"pad":"` + strings.Repeat("p", 70<<10) + `"}`,
	}
	for _, m := range bad {
		if err := spy.Publish(subject, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	// A valid event that claims to come from node A itself is dropped
	// silently: a node never takes its own events.
	own := `{"v":1,"k":"join","node":"` + na.peers.Node() + `","doc":"` + clusterDoc + `","client":"mirror",` + user + `}`
	good := head + `"k":"presence","client":"cx",` + user + `,"rev":0,"sel":[{"anchor":4,"head":5}]}`
	for _, m := range []string{own, good} {
		if err := spy.Publish(subject, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	// Garbage on the nodes subject changes nothing either.
	for _, m := range []string{`{`, `{"v":1,"k":"beat","node":"spy","doc":"x"}`, `{"v":1,"k":"join","node":"spy"}`} {
		if err := spy.Publish("collabd.presence.nodes", []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}

	// One subject, one publisher: the good event comes after every bad one.
	evs := a.until(isPresence("cx", 4))
	if len(evs) != 2 || !isMember("cx", true)(evs[0]) {
		names := make([]string, len(evs))
		for i, ev := range evs {
			names[i] = ev.name + " " + string(ev.arg)
		}
		t.Fatalf("want doc:member cx then its presence, got %q", names)
	}
	if n := strings.Count(na.peerLogs.String()+na.logs.String(), "peer message dropped"); n < len(bad) {
		t.Fatalf("%d drops logged, want at least %d:\n%s", n, len(bad), na.peerLogs.String())
	}
	if strings.Contains(na.logs.String(), "mirror") {
		t.Fatal("an event of this node's id was taken")
	}
}

// When its last local member leaves, a node stops watching the document
// and forgets its remote members; a new first member asks again.
func TestPeersLastLeaveForgetsAndRejoinAsks(t *testing.T) {
	url := runCoreNATS(t)
	na := newClusterNode(t, url, "node-a", session.NATSPeersConfig{})
	nb := newClusterNode(t, url, "node-b", session.NATSPeersConfig{})
	subs := na.nc.NumSubscriptions() // the heartbeats

	b := nb.client()
	b.mustOK("doc:join", obj("doc", clusterDoc, "client", "cb", "user", obj("name", "Bob")))
	b.mustOK("doc:presence", obj("doc", clusterDoc, "rev", 0, "sel", sel(5, 6)))

	a := na.client()
	ackA := a.mustOK("doc:join", obj("doc", clusterDoc, "client", "ca"))
	a.learnJoined(ackA, "cb")
	if n := na.nc.NumSubscriptions(); n != subs+1 {
		t.Fatalf("%d subscriptions with a watched document, want %d", n, subs+1)
	}
	b.until(isMember("ca", true))
	a.mustOK("doc:leave", obj("doc", clusterDoc))
	b.until(isMember("ca", false))
	if n := na.nc.NumSubscriptions(); n != subs {
		t.Fatalf("%d subscriptions after the last member left, want %d", n, subs)
	}
	if st := na.svc.Stats(); st.Documents != 0 {
		t.Fatalf("A still holds %d documents", st.Documents)
	}

	// Rejoining, a learns cb and its presence again, from B's answer.
	ackA = a.mustOK("doc:join", obj("doc", clusterDoc, "client", "ca"))
	for _, m := range ackA.Members {
		if m.Client == "cb" && (len(m.Sel) != 1 || m.Sel[0].Anchor != 5) {
			t.Fatalf("ack lists cb without its presence: %s", ackA.raw)
		}
	}
	if len(ackA.Members) == 0 {
		a.until(isMember("cb", true))
		a.until(isPresence("cb", 5))
	}
}

// A bus refuses ids that are not node ids, appends an incarnation to the
// id, and refuses watches once closed.
func TestNewNATSPeersRejectsBadNodeIDs(t *testing.T) {
	url := runCoreNATS(t)
	nc := connectNATS(t, url)
	for _, id := range []string{"", "a.b", "a b", "ä", strings.Repeat("n", 56)} {
		if p, err := session.NewNATSPeers(nc, id, session.NATSPeersConfig{}); err == nil {
			_ = p.Close()
			t.Errorf("node id %q accepted", id)
		}
	}
	p, err := session.NewNATSPeers(nc, strings.Repeat("n", 55), session.NATSPeersConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if !session.ValidNodeID(p.Node()) || !strings.HasPrefix(p.Node(), strings.Repeat("n", 55)+"-") {
		t.Fatalf("Node() = %q", p.Node())
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Watch("notes", func(session.PeerEvent) {}); err == nil {
		t.Fatal("Watch after Close succeeded")
	}
}

// A node that went silent and speaks again is asked for its members: those
// that said nothing meanwhile come back too.
func TestPeersSilentNodeRevives(t *testing.T) {
	url := runCoreNATS(t)
	na := newClusterNode(t, url, "node-a", session.NATSPeersConfig{Heartbeat: 20 * time.Millisecond, Expiry: 200 * time.Millisecond})
	// B beats once, at its start, and forgets nobody.
	nb := newClusterNode(t, url, "node-b", session.NATSPeersConfig{Heartbeat: time.Hour, Expiry: time.Hour})

	a := na.client()
	a.mustOK("doc:join", obj("doc", clusterDoc, "client", "ca"))
	b := nb.client()
	b.mustOK("doc:join", obj("doc", clusterDoc, "client", "cb"))
	b2 := nb.client()
	b2.mustOK("doc:join", obj("doc", clusterDoc, "client", "cb2"))
	a.until(isMember("cb2", true))

	// B has been silent too long: both leave, in either order.
	var left1, left2 bool
	a.until(func(ev event) bool {
		left1 = left1 || isMember("cb", false)(ev)
		left2 = left2 || isMember("cb2", false)(ev)
		return left1 && left2
	})
	b.mustOK("doc:presence", obj("doc", clusterDoc, "rev", 0, "sel", sel(9, 9)))
	a.until(isMember("cb2", true)) // only B's answer to A's question brings it
}

// BenchmarkNATSPeersPresence measures one presence event from one node's
// bus to another's watch through an embedded nats-server, in a closed loop
// (publish, wait for the delivery): the latency the bus adds to a
// doc:presence crossing nodes.
func BenchmarkNATSPeersPresence(b *testing.B) {
	url := runCoreNATS(b)
	pa, err := session.NewNATSPeers(connectNATS(b, url), "a", session.NATSPeersConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pa.Close() })
	pb, err := session.NewNATSPeers(connectNATS(b, url), "b", session.NATSPeersConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pb.Close() })
	got := make(chan uint64, 1)
	stop, err := pb.Watch("bench", func(ev session.PeerEvent) {
		if ev.Kind == session.PeerPresence {
			got <- ev.Presence.Rev
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	user := session.User{Name: "Ann", Color: "#abc"}
	sel := []session.Selection{{Anchor: 3, Head: 8}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		pa.Publish(session.PeerEvent{Kind: session.PeerPresence, Doc: "bench", Client: "c", User: user, Presence: &session.Presence{Rev: uint64(i), Sel: sel}})
		select {
		case rev := <-got:
			if rev != uint64(i) {
				b.Fatalf("rev %d, want %d", rev, i)
			}
		case <-time.After(10 * time.Second):
			b.Fatal("presence not delivered")
		}
	}
}
