package session

import (
	"reflect"
	"strings"
	"testing"
)

func TestPeersDocSubject(t *testing.T) {
	p := &NATSPeers{docPrefix: DefaultPeersPrefix + ".doc."}
	for doc, want := range map[string]string{
		"notes":      "collabd.presence.doc.notes",
		"notes.v2":   "collabd.presence.doc.notes=2Ev2",
		"a~b.c":      "collabd.presence.doc.a=7Eb=2Ec",
		"...":        "collabd.presence.doc.=2E=2E=2E",
		"x_y-Z.0~~9": "collabd.presence.doc.x_y-Z=2E0=7E=7E9",
	} {
		got := p.docSubject(doc)
		if got != want {
			t.Errorf("docSubject(%q) = %q, want %q", doc, got, want)
		}
		if tok := strings.TrimPrefix(got, p.docPrefix); strings.ContainsAny(tok, ".*> ") {
			t.Errorf("docSubject(%q): token %q is not one subject token", doc, tok)
		}
	}
}

// FuzzDecodePeerMsg decodes arbitrary bytes as a message of the presence
// bus: nothing may panic, whatever is accepted passes the session's own
// check, and encoding it again gives the same event.
func FuzzDecodePeerMsg(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"k":"join","node":"n-1","doc":"notes","client":"c","user":{"name":"Ann","color":"#abc"}}`,
		`{"v":1,"k":"presence","node":"n-1","doc":"a.b","client":"c","user":{"name":"Ann","color":"#abcdef"},"rev":3,"sel":[{"anchor":1,"head":2}]}`,
		`{"v":1,"k":"leave","node":"n","doc":"notes","client":"c"}`,
		`{"v":1,"k":"sync","node":"n","doc":"notes"}`,
		`{"v":1,"k":"beat","node":"n"}`, `{"v":1,"k":"bye","node":"n"}`,
		`{"v":1,"k":"join","node":"n","doc":"notes","client":"\ud800","user":{"name":"x","color":"#000"}}`,
		`{"v":1,"k":"presence","node":"n","doc":"notes","client":"c","user":{"name":"x","color":"#000"},"rev":1}`,
		`{"v":1}`, `[]`, `null`, `{"v":"1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := decodePeerMsg(data)
		if err != nil {
			return
		}
		switch ev.Kind {
		case peerBeat, PeerNodeGone:
			if !ValidNodeID(ev.Node) {
				t.Fatalf("accepted node %q", ev.Node)
			}
			return
		}
		if err := checkPeerEvent(ev, ev.Doc); err != nil {
			t.Fatalf("accepted %s, the session refuses it: %v", data, err)
		}
		if ev.Kind == PeerSync {
			return
		}
		p := &NATSPeers{node: ev.Node, docPrefix: "x.", out: make(chan peerOut, 1)}
		p.Publish(ev)
		o := <-p.out
		again, err := decodePeerMsg(o.data)
		if err != nil {
			t.Fatalf("re-encoded %s: %v", o.data, err)
		}
		if !reflect.DeepEqual(again, ev) {
			t.Fatalf("round trip: %+v, then %+v", ev, again)
		}
	})
}
