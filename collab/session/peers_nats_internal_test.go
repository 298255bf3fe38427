package session

import (
	"reflect"
	"strings"
	"testing"
	"time"
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
		`{"v":1,"k":"versions","node":"n","doc":"notes","action":"create","name":"v1","version":{"name":"v1","rev":3,"user":"Ann","time":"2026-12-06T10:00:00.123Z"}}`,
		`{"v":1,"k":"versions","node":"n","doc":"notes","action":"rename","name":"v1","version":{"name":"Sent to client","rev":1,"user":"","time":"2026-12-06T11:00:00+01:00"}}`,
		`{"v":1,"k":"versions","node":"n","doc":"notes","action":"delete","name":"v1"}`,
		`{"v":1,"k":"versions","node":"n","doc":"notes","action":"delete","name":"v1","version":{"name":"v1","rev":3,"user":"","time":"2026-12-06T10:00:00Z"}}`,
		`{"v":1,"k":"versions","node":"n","doc":"notes","action":"create","name":"v1","version":{"name":"v2","rev":0,"user":"\u00e9","time":"0000-01-01T00:00:00+01:00"}}`,
		`{"v":1,"k":"versions","node":"n","doc":"notes","action":"create","name":" ","client":"c"}`,
		`{"v":1,"k":"join","node":"n","doc":"notes","client":"c","user":{"name":"x","color":"#000"},"action":"delete","name":"v1"}`,
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

// A versions message decodes to its change, the time in UTC, and encodes
// back to the same change.
func TestDecodePeerMsgVersions(t *testing.T) {
	ev, err := decodePeerMsg([]byte(`{"v":1,"k":"versions","node":"n","doc":"notes","action":"rename","name":"v1",` +
		`"version":{"name":"Sent to client","rev":4,"user":"Ann","time":"2026-12-06T11:00:00.5+01:00"}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := ev.Change
	if ev.Kind != PeerVersions || ev.Node != "n" || ev.Doc != "notes" || ev.Client != "" || c == nil ||
		c.Action != VersionRenamed || c.Name != "v1" || c.Version == nil || c.Version.Name != "Sent to client" ||
		c.Version.Rev != 4 || c.Version.User != "Ann" || c.Version.Created.Location() != time.UTC ||
		!c.Version.Created.Equal(time.Date(2026, 12, 6, 10, 0, 0, 5e8, time.UTC)) {
		t.Fatalf("decoded %+v, change %+v", ev, c)
	}
	p := &NATSPeers{node: "n", docPrefix: "x.", out: make(chan peerOut, 1)}
	p.Publish(ev)
	o := <-p.out
	if want := `{"v":1,"k":"versions","node":"n","doc":"notes","action":"rename","name":"v1","version":{"name":"Sent to client","rev":4,"user":"Ann","time":"2026-12-06T10:00:00.5Z"}}`; string(o.data) != want {
		t.Fatalf("encoded %s\nwant    %s", o.data, want)
	}
	// A delete carries no version; a change the session would refuse is
	// not published.
	p.Publish(PeerEvent{Kind: PeerVersions, Doc: "notes", Change: &VersionChange{Action: VersionDeleted, Name: "v1"}})
	if o := <-p.out; string(o.data) != `{"v":1,"k":"versions","node":"n","doc":"notes","action":"delete","name":"v1"}` {
		t.Fatalf("encoded %s", o.data)
	}
	p.Publish(PeerEvent{Kind: PeerVersions, Doc: "notes", Change: &VersionChange{Action: VersionCreated, Name: "v1"}})
	select {
	case o := <-p.out:
		t.Fatalf("published %s", o.data)
	default:
	}
}
