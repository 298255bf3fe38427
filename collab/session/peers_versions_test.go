package session_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/storage"
)

// versionsEv is a doc:versions:changed event.
type versionsEv struct {
	Doc     string           `json:"doc"`
	Action  string           `json:"action"`
	Name    string           `json:"name"`
	Version *storage.Version `json:"version"`
}

// isVersions matches the doc:versions:changed event of action on the
// version named name (before the change).
func isVersions(action, name string) func(event) bool {
	return func(ev event) bool {
		var v versionsEv
		return ev.name == "doc:versions:changed" && json.Unmarshal(ev.arg, &v) == nil && v.Action == action && v.Name == name
	}
}

// versionsOf decodes the last event of evs, a doc:versions:changed.
func versionsOf(t *testing.T, evs []event) versionsEv {
	t.Helper()
	var v versionsEv
	if err := json.Unmarshal(evs[len(evs)-1].arg, &v); err != nil {
		t.Fatalf("%s: %v", evs[len(evs)-1].arg, err)
	}
	return v
}

// TestPeersVersionChangesAcrossNodes: a named version created, renamed or
// deleted on one node reaches the members of the document on the other as
// doc:versions:changed, with the fields the local members get; a node
// never takes its own change back from the bus.
func TestPeersVersionChangesAcrossNodes(t *testing.T) {
	url := runCoreNATS(t)
	na := newClusterNode(t, url, "node-a", session.NATSPeersConfig{})
	nb := newClusterNode(t, url, "node-b", session.NATSPeersConfig{})

	// Each test node has its own store: the document is written on A (a
	// version names a revision from 1), B's members only hear of it.
	a := na.client()
	a.mustOK("doc:join", obj("doc", clusterDoc, "client", "ca", "user", obj("name", "Ann")))
	a.mustOK("doc:op", obj("doc", clusterDoc, "client", "ca", "seq", 1, "rev", 0, "op", raw(`["draft"]`)))
	a2 := na.client()
	a2.mustOK("doc:join", obj("doc", clusterDoc, "client", "ca2"))
	b := nb.client()
	ackB := b.mustOK("doc:join", obj("doc", clusterDoc, "client", "cb", "user", obj("name", "Bob")))
	// Once b knows ca, B's subscription is in place (A answered B's sync
	// on it): whatever A publishes next reaches B.
	b.learnJoined(ackB, "ca")

	var created struct {
		Version storage.Version `json:"version"`
	}
	ackCreate := a.mustOK("doc:version:create", obj("doc", clusterDoc, "name", "Sent to client"))
	if err := json.Unmarshal(ackCreate.raw, &created); err != nil {
		t.Fatal(err)
	}
	got := versionsOf(t, b.until(isVersions(session.VersionCreated, "Sent to client")))
	if got.Doc != clusterDoc || got.Version == nil || got.Version.Name != "Sent to client" || got.Version.Rev != 1 ||
		got.Version.User != "Ann" || !got.Version.Created.Equal(created.Version.Created) || got.Version.Created.IsZero() {
		t.Fatalf("create on B: %+v %+v, A's ack %s", got, got.Version, ackCreate.raw)
	}

	ackRename := a.mustOK("doc:version:rename", obj("doc", clusterDoc, "name", "Sent to client", "to", "v1.2"))
	got = versionsOf(t, b.until(isVersions(session.VersionRenamed, "Sent to client")))
	if got.Doc != clusterDoc || got.Version == nil || got.Version.Name != "v1.2" || got.Version.Rev != 1 ||
		got.Version.User != "Ann" || !got.Version.Created.Equal(created.Version.Created) {
		t.Fatalf("rename on B: %+v %+v, A's ack %s", got, got.Version, ackRename.raw)
	}

	a.mustOK("doc:version:delete", obj("doc", clusterDoc, "name", "v1.2"))
	got = versionsOf(t, b.until(isVersions(session.VersionDeleted, "v1.2")))
	if got.Doc != clusterDoc || got.Version != nil {
		t.Fatalf("delete on B: %+v", got)
	}

	// The other way, B to A: a2 (on A) hears B's change after any echo of
	// A's own changes would have reached A (B saw them first, and one
	// subscription delivers in the order the server sent), so a2 saw each
	// of A's changes exactly once: locally.
	b.mustOK("doc:op", obj("doc", clusterDoc, "client", "cb", "seq", 1, "rev", 0, "op", raw(`["b"]`)))
	b.mustOK("doc:version:create", obj("doc", clusterDoc, "name", "from B"))
	evs := a2.until(isVersions(session.VersionCreated, "from B"))
	if got = versionsOf(t, evs); got.Version == nil || got.Version.User != "Bob" || got.Version.Rev != 1 {
		t.Fatalf("create on A: %+v", got)
	}
	for _, m := range []func(event) bool{
		isVersions(session.VersionCreated, "Sent to client"),
		isVersions(session.VersionRenamed, "Sent to client"),
		isVersions(session.VersionDeleted, "v1.2"),
	} {
		if n := count(evs, m); n != 1 {
			t.Fatalf("a2 saw one of A's changes %d times, want once", n)
		}
	}
	// The author's socket has its acks: its first event of versions is
	// B's change.
	if got = versionsOf(t, a.until(func(ev event) bool { return ev.name == "doc:versions:changed" })); got.Name != "from B" {
		t.Fatalf("a's first doc:versions:changed is %+v, want B's", got)
	}
}

// TestPeersVersionChangedOverHTTP: the HTTP API's path (VersionChanged)
// publishes too, also when its node has no member of the document.
func TestPeersVersionChangedOverHTTP(t *testing.T) {
	url := runCoreNATS(t)
	na := newClusterNode(t, url, "node-a", session.NATSPeersConfig{})
	nb := newClusterNode(t, url, "node-b", session.NATSPeersConfig{})

	// b learning ca shows B's subscription in place; then A's last member
	// leaves, and A holds nothing of the document.
	a := na.client()
	a.mustOK("doc:join", obj("doc", clusterDoc, "client", "ca"))
	b := nb.client()
	ackB := b.mustOK("doc:join", obj("doc", clusterDoc, "client", "cb"))
	b.learnJoined(ackB, "ca")
	a.mustOK("doc:leave", obj("doc", clusterDoc))
	b.until(isMember("ca", false))
	if st := na.svc.Stats(); st.Documents != 0 {
		t.Fatalf("A still holds %d documents", st.Documents)
	}

	when := time.Date(2026, 12, 6, 10, 0, 0, 123e6, time.UTC)
	v := &storage.Version{Name: "api", Rev: 7, User: "", Created: when}
	na.svc.VersionChanged(clusterDoc, session.VersionCreated, "api", v)
	got := versionsOf(t, b.until(isVersions(session.VersionCreated, "api")))
	if got.Doc != clusterDoc || got.Version == nil || got.Version.Name != "api" || got.Version.Rev != 7 ||
		got.Version.User != "" || !got.Version.Created.Equal(when) {
		t.Fatalf("create on B: %+v %+v", got, got.Version)
	}
	na.svc.VersionChanged(clusterDoc, session.VersionDeleted, "api", nil)
	if got = versionsOf(t, b.until(isVersions(session.VersionDeleted, "api"))); got.Version != nil {
		t.Fatalf("delete on B: %+v", got)
	}
}

// TestPeersMalformedVersionMessagesDropped: a versions message with any bad
// field is dropped and logged; a good one after them is delivered.
func TestPeersMalformedVersionMessagesDropped(t *testing.T) {
	url := runCoreNATS(t)
	na := newClusterNode(t, url, "node-a", session.NATSPeersConfig{})
	a := na.client()
	a.mustOK("doc:join", obj("doc", clusterDoc, "client", "ca"))

	spy := connectNATS(t, url)
	subject := "collabd.presence.doc.team=2Enotes=7Ev2"
	head := `{"v":1,"node":"spy","doc":"` + clusterDoc + `","k":"versions",`
	ver := func(name, rev, user, tm string) string {
		return `"version":{"name":` + name + `,"rev":` + rev + `,"user":` + user + `,"time":` + tm + `}`
	}
	good := ver(`"v1"`, `3`, `"Ann"`, `"2026-12-06T10:00:00.123Z"`)
	bad := []string{
		head + `"action":"publish","name":"v1",` + good + `}`,
		head + `"action":7,"name":"v1",` + good + `}`,
		head + `"name":"v1",` + good + `}`,
		head + `"action":"create",` + good + `}`,
		head + `"action":"create","name":"",` + good + `}`,
		head + `"action":"create","name":"   ",` + ver(`"   "`, `3`, `"Ann"`, `"2026-12-06T10:00:00Z"`) + `}`,
		head + `"action":"create","name":"v\n1",` + ver(`"v\n1"`, `3`, `"Ann"`, `"2026-12-06T10:00:00Z"`) + `}`,
		head + `"action":"create","name":"` + strings.Repeat("é", 101) + `",` + ver(`"`+strings.Repeat("é", 101)+`"`, `3`, `"Ann"`, `"2026-12-06T10:00:00Z"`) + `}`,
		head + `"action":"create","name":"v1"}`,
		head + `"action":"rename","name":"v1"}`,
		head + `"action":"create","name":"v1","version":"v1"}`,
		head + `"action":"create","name":"v2",` + good + `}`, // a created version keeps its name
		head + `"action":"rename","name":"v0",` + ver(`"\u0007"`, `3`, `"Ann"`, `"2026-12-06T10:00:00Z"`) + `}`,
		head + `"action":"delete","name":"v1",` + good + `}`,
		head + `"action":"create","name":"v1",` + ver(`"v1"`, `0`, `"Ann"`, `"2026-12-06T10:00:00Z"`) + `}`,
		head + `"action":"create","name":"v1",` + ver(`"v1"`, `-1`, `"Ann"`, `"2026-12-06T10:00:00Z"`) + `}`,
		head + `"action":"create","name":"v1",` + ver(`"v1"`, `"3"`, `"Ann"`, `"2026-12-06T10:00:00Z"`) + `}`,
		head + `"action":"create","name":"v1",` + ver(`"v1"`, `9007199254740992`, `"Ann"`, `"2026-12-06T10:00:00Z"`) + `}`,
		head + `"action":"create","name":"v1",` + ver(`"v1"`, `3`, `"`+strings.Repeat("u", 65)+`"`, `"2026-12-06T10:00:00Z"`) + `}`,
		head + `"action":"create","name":"v1",` + ver(`"v1"`, `3`, `7`, `"2026-12-06T10:00:00Z"`) + `}`,
		head + `"action":"create","name":"v1",` + ver(`"v1"`, `3`, `"Ann"`, `"yesterday"`) + `}`,
		head + `"action":"create","name":"v1",` + ver(`"v1"`, `3`, `"Ann"`, `1765015200`) + `}`,
		head + `"action":"create","name":"v1",` + ver(`"v1"`, `3`, `"Ann"`, `"0000-01-01T00:00:00+01:00"`) + `}`,
		head + `"action":"create","name":"v1",` + ver(`"v1"`, `3`, `"Ann"`, `null`) + `}`,
		head + `"action":"create","name":"v1","client":"x",` + good + `}`,
		head + `"action":"create","name":"v1","user":{"name":"Spy","color":"#123"},` + good + `}`,
		`{"v":1,"node":"spy","doc":"other","k":"versions","action":"create","name":"v1",` + good + `}`,
		`{"v":1,"node":"spy","doc":"` + clusterDoc + `","k":"sync","action":"delete","name":"v1"}`,
		`{"v":1,"node":"spy","doc":"` + clusterDoc + `","k":"leave","client":"x","action":"delete","name":"v1"}`,
	}
	for _, m := range bad {
		if err := spy.Publish(subject, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := spy.Publish(subject, []byte(head+`"action":"create","name":"v1",`+good+`}`)); err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}

	// One subject, one publisher: the good message comes after every bad
	// one, and is the only one a sees.
	evs := a.until(isVersions(session.VersionCreated, "v1"))
	if n := count(evs, func(ev event) bool { return ev.name == "doc:versions:changed" || ev.name == "doc:member" }); n != 1 {
		t.Fatalf("a saw %d events, want only the good version change", n)
	}
	got := versionsOf(t, evs)
	want := time.Date(2026, 12, 6, 10, 0, 0, 123e6, time.UTC)
	if got.Doc != clusterDoc || got.Version == nil || got.Version.Name != "v1" || got.Version.Rev != 3 ||
		got.Version.User != "Ann" || !got.Version.Created.Equal(want) {
		t.Fatalf("good change: %+v %+v", got, got.Version)
	}
	if n := strings.Count(na.peerLogs.String()+na.logs.String(), "peer message dropped"); n < len(bad) {
		t.Fatalf("%d drops logged, want at least %d:\n%s", n, len(bad), na.peerLogs.String())
	}
}
