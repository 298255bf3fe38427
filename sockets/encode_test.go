package sockets

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestEventWriterMatchesEncodeEvent: an event written by hand gives the engine the same
// packet and message as EncodeEvent, whatever the namespace, the name's characters, the
// number of arguments and whether the buffer had to grow.
func TestEventWriterMatchesEncodeEvent(t *testing.T) {
	long := strings.Repeat("é", 40000) // past the 16-bit WebSocket length
	for _, nsp := range []string{"/", "", "admin", "/admin"} {
		for _, name := range []string{"doc:op", `quo"te\`, "tab\t", "é ✓", "\u2028", "<&>", "bad \xff"} {
			for _, args := range [][]any{nil, {json.RawMessage(`{"rev":1}`)}, {json.RawMessage(`1`), json.RawMessage(`"` + long + `"`), json.RawMessage(`[true,null]`)}} {
				want, err := EncodeEvent(nsp, name, args...)
				if err != nil {
					t.Fatal(err)
				}
				for _, size := range []int{0, 1 << 17} {
					var w EventWriter
					b := w.Start(nsp, name, size)
					for _, a := range args {
						b = w.Arg(b)
						b = append(b, a.(json.RawMessage)...)
					}
					got, err := w.Encode(b)
					if err != nil {
						t.Fatal(err)
					}
					gp, wp := got.Packet, want.Packet
					if gp.Type != wp.Type || gp.Namespace != wp.Namespace || !bytes.Equal(gp.Data, wp.Data) || len(gp.Attachments) != 0 {
						t.Fatalf("%q %q: packet %v %q %.80q, EncodeEvent %v %q %.80q", nsp, name, gp.Type, gp.Namespace, gp.Data, wp.Type, wp.Namespace, wp.Data)
					}
					if len(got.msgs) != 1 || got.msgs[0].Binary() || !bytes.Equal(got.msgs[0].Data(), want.msgs[0].Data()) {
						t.Fatalf("%q %q: message %.80q, EncodeEvent %.80q", nsp, name, got.msgs[0].Data(), want.msgs[0].Data())
					}
				}
			}
		}
	}
}

func TestEncodeEventErrors(t *testing.T) {
	if _, err := EncodeEvent("/", "disconnect"); !errors.Is(err, ErrReservedEvent) {
		t.Fatalf("reserved name: %v", err)
	}
	bins := make([]any, 11)
	for i := range bins {
		bins[i] = []byte{byte(i)}
	}
	if _, err := EncodeEvent("/", "x", bins...); !errors.Is(err, ErrTooManyAttachments) {
		t.Fatalf("11 attachments: %v", err)
	}
	e, err := EncodeEvent("/", "file", Binary{1, 2})
	if err != nil || len(e.msgs) != 2 || !e.msgs[1].Binary() {
		t.Fatalf("binary argument: %v", err)
	}

	var w EventWriter
	if _, err := w.Encode(w.Start("/", "connect", 0)); !errors.Is(err, ErrReservedEvent) {
		t.Fatalf("EventWriter, reserved name: %v", err)
	}
	if _, err := w.Encode([]byte(`["x"`)); err == nil {
		t.Fatal("Encode without Start succeeded")
	}
	b := w.Start("/", "x", 0)
	if _, err := w.Encode(b[:len(b)-4]); err == nil {
		t.Fatal("Encode of a cut buffer succeeded")
	}
	b = w.Start("/", "x", 0)
	if _, err := w.Encode(b); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Encode(b); err == nil {
		t.Fatal("a second Encode without Start succeeded")
	}
}

// TestEventWriterAllocs guards the hot path: the buffer, the message, and one block for the
// Encoded with its packet and message list; nothing is copied, so nothing more.
func TestEventWriterAllocs(t *testing.T) {
	arg := []byte(`{"doc":"notes","rev":4411,"op":[1203,"q"],"client":"load-42-3","seq":1187}`)
	var w EventWriter
	allocs := testing.AllocsPerRun(100, func() {
		b := w.Start("/", "doc:op", len(arg)+1)
		b = w.Arg(b)
		b = append(b, arg...)
		if _, err := w.Encode(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 {
		t.Fatalf("%v allocations per event, want at most 3", allocs)
	}
}
