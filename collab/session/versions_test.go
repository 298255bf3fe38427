package session_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/collabd/collabd/collab/session"
)

func TestNamedVersionEvents(t *testing.T) {
	auth := func(raw json.RawMessage) (session.Identity, error) {
		var a struct{ Token string }
		json.Unmarshal(raw, &a)
		switch a.Token {
		case "editor":
			return session.Identity{User: "Eddie"}, nil
		case "viewer":
			return session.Identity{User: "vera", Access: func(string) session.Access { return session.AccessView }}, nil
		}
		return session.Identity{}, errors.New("bad token")
	}
	e := newEnv(t, envOpts{auth: auth})
	ed, err := e.dial(map[string]any{"token": "editor"})
	if err != nil {
		t.Fatal(err)
	}
	vw, err := e.dial(map[string]any{"token": "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	ed.mustOK("doc:join", obj("doc", "v", "client", "ed"))
	ed.mustOK("doc:op", obj("doc", "v", "client", "ed", "seq", 1, "rev", 0, "op", raw(`["draft"]`)))
	ed.mustOK("doc:op", obj("doc", "v", "client", "ed", "seq", 2, "rev", 1, "op", raw(`[5," sent"]`)))

	type version struct {
		Name string
		Rev  uint64
		User string
		Time string
	}
	var got struct {
		Version  version
		Versions []version
		Text     *string
	}
	decodeAck := func(a ack) {
		t.Helper()
		got.Version, got.Versions, got.Text = version{}, nil, nil
		if err := json.Unmarshal(a.raw, &got); err != nil {
			t.Fatalf("%s: %v", a.raw, err)
		}
	}
	// Naming needs no membership, only edit access; the author is the
	// token's user.
	decodeAck(ed.mustOK("doc:version:create", obj("doc", "v", "name", "Sent to client")))
	if got.Version.Name != "Sent to client" || got.Version.Rev != 2 || got.Version.User != "Eddie" || got.Version.Time == "" {
		t.Fatalf("create at the head: %+v", got.Version)
	}
	decodeAck(ed.mustOK("doc:version:create", obj("doc", "v", "name", "v0.1", "rev", 1)))
	if got.Version.Rev != 1 {
		t.Fatalf("create at rev 1: %+v", got.Version)
	}
	for _, tc := range []struct {
		c       *tclient
		event   string
		payload map[string]any
		code    string
	}{
		{vw, "doc:version:create", obj("doc", "v", "name", "mine"), "forbidden"},
		{vw, "doc:version:rename", obj("doc", "v", "name", "v0.1", "to", "x"), "forbidden"},
		{vw, "doc:version:delete", obj("doc", "v", "name", "v0.1"), "forbidden"},
		{ed, "doc:version:create", obj("doc", "v", "name", "v0.1"), "conflict"},
		{ed, "doc:version:create", obj("doc", "v", "name", "later", "rev", 9), "not_found"},
		{ed, "doc:version:create", obj("doc", "v", "name", "bad\nname"), "bad_request"},
		{ed, "doc:version:create", obj("doc", "v"), "bad_request"},
		{ed, "doc:version:rename", obj("doc", "v", "name", "v0.1"), "bad_request"},
		{ed, "doc:version:rename", obj("doc", "v", "name", "v0.1", "to", "Sent to client"), "conflict"},
		{ed, "doc:version", obj("doc", "v", "name", "nope"), "not_found"},
	} {
		if a := tc.c.call(tc.event, tc.payload); a.code() != tc.code {
			t.Errorf("%s %v: %s, want %s", tc.event, tc.payload, a.raw, tc.code)
		}
	}
	// Viewers list and read.
	decodeAck(vw.mustOK("doc:versions", obj("doc", "v")))
	if len(got.Versions) != 2 || got.Versions[0].Name != "Sent to client" || got.Versions[1].Name != "v0.1" {
		t.Fatalf("versions: %+v", got.Versions)
	}
	ed.mustOK("doc:op", obj("doc", "v", "client", "ed", "seq", 3, "rev", 2, "op", raw(`[-5]`)))
	decodeAck(vw.mustOK("doc:version", obj("doc", "v", "name", "Sent to client")))
	if got.Text == nil || *got.Text != "draft sent" || got.Version.Rev != 2 {
		t.Fatalf("version text: %+v %v", got.Version, got.Text)
	}
	decodeAck(ed.mustOK("doc:version:rename", obj("doc", "v", "name", "v0.1", "to", "first draft")))
	if got.Version.Name != "first draft" || got.Version.Rev != 1 || got.Version.User != "Eddie" {
		t.Fatalf("rename: %+v", got.Version)
	}
	if a := ed.mustOK("doc:version:delete", obj("doc", "v", "name", "first draft")); string(a.raw) != `{"ok":true}` {
		t.Fatalf("delete ack: %s", a.raw)
	}
	decodeAck(vw.mustOK("doc:versions", obj("doc", "v")))
	if len(got.Versions) != 1 {
		t.Fatalf("versions after delete: %+v", got.Versions)
	}
	decodeAck(vw.mustOK("doc:versions", obj("doc", "never")))
	if got.Versions == nil || len(got.Versions) != 0 {
		t.Fatalf("versions of a document never written: %+v", got.Versions)
	}
}

// TestVersionChangesReachMembers checks that a created, renamed or deleted
// named version is told to the document's members (other sockets of the
// author, viewers) but not to the socket that made the change, from the
// socket events and from VersionChanged (the HTTP API's path).
func TestVersionChangesReachMembers(t *testing.T) {
	auth := func(raw json.RawMessage) (session.Identity, error) {
		var a struct{ Token string }
		json.Unmarshal(raw, &a)
		switch a.Token {
		case "editor":
			return session.Identity{User: "Eddie"}, nil
		case "viewer":
			return session.Identity{User: "vera", Access: func(string) session.Access { return session.AccessView }}, nil
		}
		return session.Identity{}, errors.New("bad token")
	}
	e := newEnv(t, envOpts{auth: auth})
	dial := func(token string) *tclient {
		c, err := e.dial(map[string]any{"token": token})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ed, ed2, vw, other := dial("editor"), dial("editor"), dial("viewer"), dial("editor")
	ed.mustOK("doc:join", obj("doc", "v", "client", "ed"))
	ed.mustOK("doc:op", obj("doc", "v", "client", "ed", "seq", 1, "rev", 0, "op", raw(`["draft"]`)))
	ed2.mustOK("doc:join", obj("doc", "v", "client", "ed2"))
	vw.mustOK("doc:join", obj("doc", "v", "client", "vw"))
	other.mustOK("doc:join", obj("doc", "w", "client", "other"))

	type event struct {
		Doc     string
		Action  string
		Name    string
		Version *struct {
			Name string
			Rev  uint64
			User string
		}
	}
	next := func(c *tclient) event {
		t.Helper()
		var ev event
		if err := json.Unmarshal(c.next("doc:versions:changed"), &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	ed.mustOK("doc:version:create", obj("doc", "v", "name", "sent"))
	for _, c := range []*tclient{ed2, vw} {
		if ev := next(c); ev.Doc != "v" || ev.Action != session.VersionCreated || ev.Name != "sent" ||
			ev.Version == nil || ev.Version.Name != "sent" || ev.Version.Rev != 1 || ev.Version.User != "Eddie" {
			t.Fatalf("create: %+v", ev)
		}
	}
	ed2.mustOK("doc:version:rename", obj("doc", "v", "name", "sent", "to", "final"))
	// The author's socket got no event for its own create: the next one
	// it sees is the rename.
	for _, c := range []*tclient{ed, vw} {
		if ev := next(c); ev.Action != session.VersionRenamed || ev.Name != "sent" || ev.Version == nil || ev.Version.Name != "final" {
			t.Fatalf("rename: %+v", ev)
		}
	}
	// The HTTP API's path: every member.
	e.svc.VersionChanged("v", session.VersionDeleted, "final", nil)
	for _, c := range []*tclient{ed, ed2, vw} {
		if ev := next(c); ev.Action != session.VersionDeleted || ev.Name != "final" || ev.Version != nil {
			t.Fatalf("delete: %+v", ev)
		}
	}
	// A member of another document hears nothing of v: its first event
	// is about its own document.
	e.svc.VersionChanged("w", session.VersionDeleted, "x", nil)
	if ev := next(other); ev.Doc != "w" {
		t.Fatalf("member of w got %+v", ev)
	}
}
