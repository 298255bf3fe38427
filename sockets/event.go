package sockets

import (
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/collabd/collabd/sockets/engineio"
	"github.com/collabd/collabd/sockets/parser"
)

// Binary marks a byte slice to send as a binary attachment (plain []byte values are sent
// that way too). Received attachments decode into *[]byte or *Binary.
type Binary = parser.Binary

// Args are the arguments of a received event or acknowledgement: raw JSON with the binary
// attachments they refer to. Its methods are safe for concurrent use (Args is read-only).
type Args struct {
	raw  []json.RawMessage
	atts [][]byte
}

// Len returns the number of arguments.
func (a *Args) Len() int { return len(a.raw) }

// Raw returns argument i as received (binary values appear as placeholders), or nil.
func (a *Args) Raw(i int) json.RawMessage {
	if i < 0 || i >= len(a.raw) {
		return nil
	}
	return a.raw[i]
}

// Attachments returns the binary attachments of the packet, in placeholder order.
func (a *Args) Attachments() [][]byte { return a.atts }

// Decode decodes the arguments into dst, in order (dst[i] gets argument i); a nil dst skips
// its argument. Destinations:
//   - *json.RawMessage: the raw JSON;
//   - *[]byte or *Binary: the attachment the argument refers to;
//   - *any: plain Go values (float64 numbers), Binary where attachments were;
//   - anything else: encoding/json, with []byte fields anywhere receiving attachments.
//
// It returns ErrMissingArg when there are fewer arguments than destinations.
func (a *Args) Decode(dst ...any) error {
	for i, d := range dst {
		if d == nil {
			continue
		}
		if i >= len(a.raw) {
			return fmt.Errorf("%w: %d of %d", ErrMissingArg, i+1, len(dst))
		}
		if err := parser.Unmarshal(a.raw[i], a.atts, d); err != nil {
			return fmt.Errorf("sockets: argument %d: %w", i, err)
		}
	}
	return nil
}

// Values returns the arguments ready to be sent again, unchanged: json.RawMessage for
// arguments without binary, values with Binary leaves (numbers as json.Number) for those
// with attachments. Emit(ev.Name, ev.Values()...) echoes an event exactly.
func (a *Args) Values() []any {
	out := make([]any, len(a.raw))
	for i, r := range a.raw {
		if len(a.atts) > 0 && parser.HasPlaceholder(r) {
			if v, err := parser.Tree(r, a.atts, true); err == nil {
				out[i] = v
				continue
			}
		}
		out[i] = r
	}
	return out
}

// Event is a received event.
type Event struct {
	// Name is the event name.
	Name string
	// Args are the arguments after the name.
	Args
	// Ack answers the client's acknowledgement callback; never nil.
	Ack *Ack
}

// Ack is the acknowledgement of a received event. Reply may be called from any goroutine,
// once.
type Ack struct {
	s      *Socket
	id     uint64
	wanted bool
	used   atomic.Bool
}

// Wanted reports whether the client asked for an acknowledgement.
func (a *Ack) Wanted() bool { return a != nil && a.wanted }

// Reply sends the acknowledgement with args, encoded as for Emit (binary values become
// attachments, BINARY_ACK). It returns ErrAckUsed when no ack was asked for or it was sent,
// ErrClosed when the socket is gone.
func (a *Ack) Reply(args ...any) error {
	if !a.Wanted() || a.used.Swap(true) {
		return ErrAckUsed
	}
	data, atts, err := parser.MarshalArgs(nil, args...)
	if err != nil {
		if err == parser.ErrTooManyAttachments {
			return ErrTooManyAttachments
		}
		return err
	}
	if !a.s.Connected() {
		return ErrClosed
	}
	return a.s.sendPacket(&parser.Packet{
		Type: parser.Ack, Namespace: a.s.nsp.name, ID: a.id, HasID: true, Data: data, Attachments: atts,
	}, false)
}

// ReplyRaw sends the acknowledgement with args already encoded as JSON, without reflection:
// the frame is the ACK header followed by [args[0],args[1],...] copied as they are. It is the
// fast path for replies built by hand. The caller guarantees that each argument is one valid
// JSON value without binary placeholders; ReplyRaw checks only that none is empty (ErrEmptyArg)
// and otherwise sends whatever it is given, so invalid JSON reaches the client as such.
// Errors are those of Reply.
func (a *Ack) ReplyRaw(args ...json.RawMessage) error {
	if !a.Wanted() || a.used.Swap(true) {
		return ErrAckUsed
	}
	n := 2 + len(a.s.nsp.name) + 20 + len(args)
	for _, arg := range args {
		if len(arg) == 0 {
			return ErrEmptyArg
		}
		n += len(arg)
	}
	if !a.s.Connected() {
		return ErrClosed
	}
	p := &parser.Packet{Type: parser.Ack, Namespace: a.s.nsp.name, ID: a.id, HasID: true}
	text, err := p.AppendEncode(make([]byte, 0, n))
	if err != nil {
		return err
	}
	start := len(text)
	text = append(text, '[')
	for i, arg := range args {
		if i > 0 {
			text = append(text, ',')
		}
		text = append(text, arg...)
	}
	text = append(text, ']')
	p.Data = text[start:]
	return a.s.SendEncoded(&Encoded{Packet: p, msgs: []*engineio.Message{engineio.NewTextMessage(text)}}, false)
}

// Reply is a client's answer to EmitWithAck.
type Reply struct {
	Args
}

// Handle adapts a typed function to a Handler: the first argument is decoded into a T. When
// decoding fails, onError is called instead (if not nil) with the error; the event is
// otherwise dropped.
func Handle[T any](fn func(s *Socket, v T, ack *Ack), onError func(s *Socket, ev *Event, err error)) Handler {
	return func(s *Socket, ev *Event) {
		var v T
		if err := ev.Decode(&v); err != nil {
			if onError != nil {
				onError(s, ev, err)
			}
			return
		}
		fn(s, v, ev.Ack)
	}
}
