package sockets

import (
	"encoding/json"
	"errors"
	"testing"
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
