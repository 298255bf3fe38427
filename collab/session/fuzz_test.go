package session_test

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/storage"
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
			if j.User != nil && (utf8.RuneCountInString(j.User.Name) > session.MaxNameRunes || !utf8.ValidString(j.User.Name)) {
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
			if len(p.Sel) > session.MaxSelections || p.Sel == nil {
				t.Fatalf("accepted %d ranges", len(p.Sel))
			}
		}
		var h session.HistoryRequest
		if json.Unmarshal(data, &h) == nil {
			checkDoc(t, h.Doc)
			if h.Limit < 1 || h.Limit > session.MaxHistory {
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
	if !storage.ValidDocID(doc) {
		t.Fatalf("accepted doc %q", doc)
	}
}

func checkClient(t *testing.T, client string) {
	t.Helper()
	if client == "" || len(client) > session.MaxClientBytes || !utf8.ValidString(client) {
		t.Fatalf("accepted client %q", client)
	}
}
