package session_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/internal/contract"
)

// FuzzPayloads decodes arbitrary bytes as every request payload: nothing may
// panic, and whatever is accepted satisfies the contract's bounds.
func FuzzPayloads(f *testing.F) {
	for _, s := range []string{
		`{"doc":"notes","client":"ann","user":{"name":"Ann","color":"#abc"}}`,
		`{"doc":"notes","client":"ann","rev":12}`,
		`{"doc":"notes","client":"ann","seq":3,"rev":2,"op":[5,"x",-2]}`,
		`{"doc":"notes","rev":2,"sel":[{"anchor":1,"head":4}]}`,
		`{"doc":"notes","before":10,"limit":600}`,
		`{"doc":"notes","from":1,"to":2}`,
		`{"doc":"notes","client":"\ud83d\ude00","user":{"name":"\u00e9\\\"x"}}`,
		`{"doc":"a b","client":"\ud800"}`,
		`{"doc":"notes","client":"c","seq":1.5,"rev":-1,"op":"x"}`,
		`{"doc":null,"client":null}`,
		`[1,2]`, `"x"`, `null`, `{}`, `{"sel":[null]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var j session.JoinRequest
		if json.Unmarshal(data, &j) == nil {
			checkDoc(t, j.Doc)
			checkClient(t, j.Client)
			if j.User != nil && (utf8.RuneCountInString(j.User.Name) > contract.MaxUserNameRunes || !utf8.ValidString(j.User.Name)) {
				t.Fatalf("accepted user %+v", j.User)
			}
			if j.Rev != nil && *j.Rev > 1<<53-1 {
				t.Fatalf("accepted rev %d", *j.Rev)
			}
		}
		var o session.OpRequest
		if json.Unmarshal(data, &o) == nil {
			checkDoc(t, o.Doc)
			checkClient(t, o.Client)
			if o.Seq == 0 || o.Seq > 1<<53-1 || o.Rev > 1<<53-1 || len(o.Op) == 0 || o.Op[0] != '[' {
				t.Fatalf("accepted op %+v", o)
			}
		}
		var p session.PresenceRequest
		if json.Unmarshal(data, &p) == nil {
			checkDoc(t, p.Doc)
			if len(p.Sel) > contract.MaxSelections || p.Sel == nil {
				t.Fatalf("accepted %d ranges", len(p.Sel))
			}
		}
		var h session.HistoryRequest
		if json.Unmarshal(data, &h) == nil {
			checkDoc(t, h.Doc)
			if h.Limit < 1 || h.Limit > contract.MaxHistoryLimit {
				t.Fatalf("accepted limit %d", h.Limit)
			}
		}
		var r session.RevRequest
		if json.Unmarshal(data, &r) == nil {
			checkDoc(t, r.Doc)
		}
		var d session.DiffRequest
		if json.Unmarshal(data, &d) == nil {
			checkDoc(t, d.Doc)
		}
		var l session.DocRequest
		if json.Unmarshal(data, &l) == nil {
			checkDoc(t, l.Doc)
		}
	})
}

func checkDoc(t *testing.T, doc string) {
	t.Helper()
	if !contract.ValidDocID(doc) {
		t.Fatalf("accepted doc %q", doc)
	}
}

func checkClient(t *testing.T, client string) {
	t.Helper()
	if client == "" || len(client) > contract.MaxClientIDBytes || !utf8.ValidString(client) {
		t.Fatalf("accepted client %q", client)
	}
}

// FuzzLiveEvents sends arbitrary payloads to a live server as every client
// event: each gets a well-formed ack, and the connection survives.
func FuzzLiveEvents(f *testing.F) {
	events := []string{"doc:join", "doc:op", "doc:presence", "doc:leave", "doc:history", "doc:revision", "doc:diff", "doc:restore", "doc:unknown"}
	for i, s := range []string{
		`{"doc":"f","client":"c"}`,
		`{"doc":"f","client":"c","seq":1,"rev":0,"op":["x"]}`,
		`{"doc":"f","rev":0,"sel":[{"anchor":0,"head":1}]}`,
		`{"doc":"f"}`,
		`{"doc":"f","limit":3}`,
		`{"doc":"f","rev":0}`,
		`{"doc":"f","from":0,"to":1}`,
		`{"doc":"f","rev":1}`,
		`{"doc":"f","client":"c","seq":2,"rev":1,"op":[1,-1,"\ud83d\ude00"]}`,
		`[1,{"doc":"f"}]`, `"doc"`, `{"doc":"f","client":"c","rev":99}`,
	} {
		f.Add(byte(i), []byte(s))
	}
	e := newEnv(f, envOpts{limits: session.Limits{OpsPerSecond: 1e6, OpsBurst: 1e6}})
	fc := e.client()
	fc.mustOK("doc:join", obj("doc", "f", "client", "c"))
	var last string
	f.Fuzz(func(t *testing.T, which byte, payload []byte) {
		c := &tclient{t: t, c: fc.c, events: fc.events}
		ev := events[int(which)%len(events)]
		if !utf8.Valid(payload) {
			// Raw invalid UTF-8 is a Socket.IO parse error: package sockets
			// closes the connection before any handler runs (its own fuzz
			// target covers that).
			return
		}
		var arg any = string(payload)
		if json.Valid(payload) {
			arg = json.RawMessage(payload)
		}
		a, err := c.try(ev, arg)
		if err != nil {
			var notes []string
			for _, l := range strings.Split(e.logs.String(), "\n") {
				if !strings.Contains(l, `"level":"info"`) && !strings.Contains(l, `"level":"debug"`) {
					notes = append(notes, l)
				}
			}
			t.Fatalf("%s %q: %v (previous input %s)\n%s", ev, payload, err, last, strings.Join(notes, "\n"))
		}
		last = fmt.Sprintf("%s %q", ev, payload)
		if !a.OK && (a.Error == nil || a.Error.Code == "" || a.Error.Code == "internal") {
			t.Fatalf("%s %q: ack %s", ev, payload, a.raw)
		}
		// Keep the socket in the document for the next input (unless the
		// join rate limit says no: the next inputs then test that state).
		if _, err := c.try("doc:join", obj("doc", "f", "client", "c")); err != nil {
			t.Fatal(err)
		}
	})
}
