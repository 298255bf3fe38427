package session_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/session"
)

// TestBadInput sends every kind of bad payload of issue 4 and checks the
// error code, then that the connection still works and the document did not
// change.
func TestBadInput(t *testing.T) {
	e := newEnv(t, envOpts{limits: session.Limits{MaxTextBytes: 4096}})
	c := e.client()
	w := e.client() // a watcher: must receive nothing from any of this
	c.mustOK("doc:join", obj("doc", "bad", "client", "c"))
	w.mustOK("doc:join", obj("doc", "bad", "client", "w"))
	c.mustOK("doc:op", obj("doc", "bad", "client", "c", "seq", 1, "rev", 0, "op", raw(`["hello"]`)))
	w.next("doc:op")

	long := strings.Repeat("a", 129)
	big := `["` + strings.Repeat("x", 5000) + `"]`
	sel101 := "[" + strings.TrimSuffix(strings.Repeat(`{"anchor":0,"head":0},`, 101), ",") + "]"
	op := func(fields string) json.RawMessage {
		return raw(`{"doc":"bad","client":"c",` + fields + `}`)
	}
	cases := []struct {
		name  string
		event string
		args  []any // nil: no payload at all
		code  string
	}{
		{"unknown event", "doc:nope", []any{obj("doc", "bad")}, "bad_request"},
		{"unknown event without payload", "hello", nil, "bad_request"},
		{"join without payload", "doc:join", nil, "bad_request"},
		{"join payload a string", "doc:join", []any{"bad"}, "bad_request"},
		{"join payload an array", "doc:join", []any{raw(`["bad","c"]`)}, "bad_request"},
		{"join payload null", "doc:join", []any{nil}, "bad_request"},
		{"join without doc", "doc:join", []any{raw(`{"client":"c"}`)}, "bad_request"},
		{"join doc a number", "doc:join", []any{raw(`{"doc":5,"client":"c"}`)}, "bad_request"},
		{"join doc with a space", "doc:join", []any{raw(`{"doc":"a b","client":"c"}`)}, "bad_request"},
		{"join doc with a slash", "doc:join", []any{raw(`{"doc":"../etc","client":"c"}`)}, "bad_request"},
		{"join doc too long", "doc:join", []any{raw(`{"doc":"` + long + `","client":"c"}`)}, "bad_request"},
		{"join doc empty", "doc:join", []any{raw(`{"doc":"","client":"c"}`)}, "bad_request"},
		{"join without client", "doc:join", []any{raw(`{"doc":"bad"}`)}, "bad_request"},
		{"join client empty", "doc:join", []any{raw(`{"doc":"bad","client":""}`)}, "bad_request"},
		{"join client too long", "doc:join", []any{raw(`{"doc":"bad","client":"` + long + `"}`)}, "bad_request"},
		{"join client an object", "doc:join", []any{raw(`{"doc":"bad","client":{}}`)}, "bad_request"},
		{"join client lone surrogate", "doc:join", []any{raw(`{"doc":"bad","client":"\ud800"}`)}, "bad_request"},
		{"join user a string", "doc:join", []any{raw(`{"doc":"bad","client":"c","user":"ann"}`)}, "bad_request"},
		{"join user name too long", "doc:join", []any{raw(`{"doc":"bad","client":"c","user":{"name":"` + strings.Repeat("é", 65) + `"}}`)}, "bad_request"},
		{"join user name a number", "doc:join", []any{raw(`{"doc":"bad","client":"c","user":{"name":1}}`)}, "bad_request"},
		{"join user name control char", "doc:join", []any{raw(`{"doc":"bad","client":"c","user":{"name":"a\u0007"}}`)}, "bad_request"},
		{"join user name lone low surrogate", "doc:join", []any{raw(`{"doc":"bad","client":"c","user":{"name":"\udc00x"}}`)}, "bad_request"},
		{"join user colour a name", "doc:join", []any{raw(`{"doc":"bad","client":"c","user":{"color":"red"}}`)}, "bad_request"},
		{"join user colour script", "doc:join", []any{raw(`{"doc":"bad","client":"c","user":{"color":"#abc;x"}}`)}, "bad_request"},
		{"join rev negative", "doc:join", []any{raw(`{"doc":"bad","client":"c","rev":-1}`)}, "bad_request"},
		{"join rev fraction", "doc:join", []any{raw(`{"doc":"bad","client":"c","rev":1.5}`)}, "bad_request"},
		{"join rev exponent", "doc:join", []any{raw(`{"doc":"bad","client":"c","rev":1e3}`)}, "bad_request"},
		{"join rev a string", "doc:join", []any{raw(`{"doc":"bad","client":"c","rev":"1"}`)}, "bad_request"},
		{"join rev above 2^53", "doc:join", []any{raw(`{"doc":"bad","client":"c","rev":9007199254740993}`)}, "bad_request"},
		{"op without payload", "doc:op", nil, "bad_request"},
		{"op without seq", "doc:op", []any{op(`"rev":1,"op":["x"]`)}, "bad_request"},
		{"op seq zero", "doc:op", []any{op(`"seq":0,"rev":1,"op":["x"]`)}, "bad_request"},
		{"op seq negative", "doc:op", []any{op(`"seq":-2,"rev":1,"op":["x"]`)}, "bad_request"},
		{"op seq a string", "doc:op", []any{op(`"seq":"2","rev":1,"op":["x"]`)}, "bad_request"},
		{"op seq a bool", "doc:op", []any{op(`"seq":true,"rev":1,"op":["x"]`)}, "bad_request"},
		{"op without rev", "doc:op", []any{op(`"seq":2,"op":["x"]`)}, "bad_request"},
		{"op rev ahead of head", "doc:op", []any{op(`"seq":2,"rev":7,"op":["x"]`)}, "conflict"},
		{"op without op", "doc:op", []any{op(`"seq":2,"rev":1`)}, "bad_request"},
		{"op op a string", "doc:op", []any{op(`"seq":2,"rev":1,"op":"x"`)}, "bad_request"},
		{"op op an object", "doc:op", []any{op(`"seq":2,"rev":1,"op":{"insert":"x"}`)}, "bad_request"},
		{"op zero retain", "doc:op", []any{op(`"seq":2,"rev":1,"op":[0,"x"]`)}, "bad_request"},
		{"op fraction", "doc:op", []any{op(`"seq":2,"rev":1,"op":[1.5,"x"]`)}, "bad_request"},
		{"op empty insert", "doc:op", []any{op(`"seq":2,"rev":1,"op":[""]`)}, "bad_request"},
		{"op null component", "doc:op", []any{op(`"seq":2,"rev":1,"op":[null]`)}, "bad_request"},
		{"op retain out of range", "doc:op", []any{op(`"seq":2,"rev":1,"op":[6,"x"]`)}, "bad_request"},
		{"op delete out of range", "doc:op", []any{op(`"seq":2,"rev":1,"op":[-6]`)}, "bad_request"},
		{"op huge retain", "doc:op", []any{op(`"seq":2,"rev":1,"op":[9007199254740992,"x"]`)}, "bad_request"},
		{"op lone surrogate", "doc:op", []any{op(`"seq":2,"rev":1,"op":["\ud83d"]`)}, "bad_request"},
		{"op too large", "doc:op", []any{op(`"seq":2,"rev":1,"op":` + big)}, "too_large"},
		{"op other client id", "doc:op", []any{raw(`{"doc":"bad","client":"w","seq":2,"rev":1,"op":["x"]}`)}, "bad_request"},
		{"op on a document not joined", "doc:op", []any{raw(`{"doc":"other","client":"c","seq":2,"rev":0,"op":["x"]}`)}, "forbidden"},
		{"op bad doc id", "doc:op", []any{raw(`{"doc":"b@d","client":"c","seq":2,"rev":1,"op":["x"]}`)}, "bad_request"},
		{"presence sel a string", "doc:presence", []any{raw(`{"doc":"bad","rev":1,"sel":"0-1"}`)}, "bad_request"},
		{"presence without rev", "doc:presence", []any{raw(`{"doc":"bad","sel":[]}`)}, "bad_request"},
		{"presence range without head", "doc:presence", []any{raw(`{"doc":"bad","rev":1,"sel":[{"anchor":0}]}`)}, "bad_request"},
		{"presence range negative", "doc:presence", []any{raw(`{"doc":"bad","rev":1,"sel":[{"anchor":-1,"head":0}]}`)}, "bad_request"},
		{"presence range a number", "doc:presence", []any{raw(`{"doc":"bad","rev":1,"sel":[3]}`)}, "bad_request"},
		{"presence 101 ranges", "doc:presence", []any{raw(`{"doc":"bad","rev":1,"sel":` + sel101 + `}`)}, "too_large"},
		{"presence not joined", "doc:presence", []any{raw(`{"doc":"other","rev":0,"sel":[]}`)}, "forbidden"},
		{"leave doc a number", "doc:leave", []any{raw(`{"doc":1}`)}, "bad_request"},
		{"history limit negative", "doc:history", []any{raw(`{"doc":"bad","limit":-1}`)}, "bad_request"},
		{"history before a string", "doc:history", []any{raw(`{"doc":"bad","before":"x"}`)}, "bad_request"},
		{"history bad doc", "doc:history", []any{raw(`{"doc":"x y"}`)}, "bad_request"},
		{"revision without rev", "doc:revision", []any{raw(`{"doc":"bad"}`)}, "bad_request"},
		{"revision beyond head", "doc:revision", []any{raw(`{"doc":"bad","rev":99}`)}, "not_found"},
		{"diff without to", "doc:diff", []any{raw(`{"doc":"bad","from":0}`)}, "bad_request"},
		{"diff beyond head", "doc:diff", []any{raw(`{"doc":"bad","from":0,"to":99}`)}, "not_found"},
		{"restore beyond head", "doc:restore", []any{raw(`{"doc":"bad","rev":99}`)}, "not_found"},
		{"restore rev fraction", "doc:restore", []any{raw(`{"doc":"bad","rev":0.5}`)}, "bad_request"},
		{"restore not joined", "doc:restore", []any{raw(`{"doc":"other","rev":0}`)}, "forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := c.try(tc.event, tc.args...)
			if err != nil {
				t.Fatalf("%s: %v", tc.event, err)
			}
			if a.OK || a.code() != tc.code || a.Error.Message == "" {
				t.Fatalf("got %s, want code %s", a.raw, tc.code)
			}
			// The connection still works and the document is untouched.
			if got := c.mustOK("doc:revision", obj("doc", "bad", "rev", 1)); *got.Text != "hello" {
				t.Fatalf("revision after bad input: %s", got.raw)
			}
			if rev, text := e.text("bad"); rev != 1 || text != "hello" {
				t.Fatalf("document changed: %d %q", rev, text)
			}
		})
	}
	// Events without an ack that fail get nothing back, and change nothing.
	if err := c.c.Emit("doc:op", op(`"seq":2,"rev":1,"op":[99,"x"]`)); err != nil {
		t.Fatal(err)
	}
	if err := c.c.Emit("doc:nope", obj()); err != nil {
		t.Fatal(err)
	}
	w.quiet("doc:op", 200*time.Millisecond)
	// The socket is still a member and may edit.
	if got := c.mustOK("doc:op", op(`"seq":2,"rev":1,"op":[5,"!"]`)); got.Rev != 2 {
		t.Fatalf("op after the bad inputs: %s", got.raw)
	}
	if rev, text := e.text("bad"); rev != 2 || text != "hello!" {
		t.Fatalf("final text: %d %q", rev, text)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"code":"bad_request"`) || !strings.Contains(logs, `"event":"doc:nope"`) {
		t.Fatalf("missing log lines:\n%s", logs)
	}
}
