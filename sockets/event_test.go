package sockets

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/collabd/collabd/sockets/engineio"
	"github.com/collabd/collabd/sockets/parser"
)

func TestHandleDecodeError(t *testing.T) {
	type req struct {
		Doc string `json:"doc"`
	}
	var got []string
	h := Handle(func(s *Socket, v req, ack *Ack) { got = append(got, "ok:"+v.Doc) },
		func(s *Socket, ev *Event, err error) { got = append(got, "err:"+ev.Name) })
	h(nil, &Event{Name: "good", Args: Args{raw: []json.RawMessage{json.RawMessage(`{"doc":"a"}`)}}, Ack: &Ack{}})
	h(nil, &Event{Name: "bad", Args: Args{raw: []json.RawMessage{json.RawMessage(`[1]`)}}, Ack: &Ack{}})
	h(nil, &Event{Name: "none", Ack: &Ack{}})
	if len(got) != 3 || got[0] != "ok:a" || got[1] != "err:bad" || got[2] != "err:none" {
		t.Fatalf("calls %v", got)
	}
	a := &Args{raw: []json.RawMessage{json.RawMessage(`1`)}, atts: [][]byte{{1}}}
	if a.Len() != 1 || string(a.Raw(0)) != "1" || a.Raw(1) != nil || len(a.Attachments()) != 1 {
		t.Fatal("Args accessors")
	}
	var ack *Ack
	if ack.Wanted() || !errors.Is((&Ack{}).Reply(), ErrAckUsed) {
		t.Fatal("ack without id")
	}
}

// TestEncodeTextAtMatchesEncode: a packet encoded in place by its caller
// gives the engine the same message as Encode.
func TestEncodeTextAtMatchesEncode(t *testing.T) {
	for _, p := range []*parser.Packet{
		{Type: parser.Event, Namespace: "/", Data: []byte(`["doc:op",{"rev":1}]`)},
		{Type: parser.Event, Namespace: "/admin", Data: []byte(`["x"]`)},
		{Type: parser.Event, Namespace: "/", Data: []byte(`["big","` + strings.Repeat("é", 40000) + `"]`)},
	} {
		want, err := Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		buf, err := p.AppendEncode(make([]byte, engineio.TextHeadroom))
		if err != nil {
			t.Fatal(err)
		}
		got := EncodeTextAt(p, buf)
		if len(got.msgs) != 1 || !bytes.Equal(got.msgs[0].Data(), want.msgs[0].Data()) || got.msgs[0].Binary() {
			t.Fatalf("%s: in place %q, Encode %q", p.Namespace, got.msgs[0].Data(), want.msgs[0].Data())
		}
	}
}
