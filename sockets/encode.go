package sockets

import (
	"errors"
	"strings"

	"github.com/collabd/collabd/sockets/engineio"
	"github.com/collabd/collabd/sockets/parser"
)

// Encoded is a packet encoded once, shareable by any number of receivers.
type Encoded struct {
	// Packet is the packet as encoded; do not modify it.
	Packet *parser.Packet
	// Seq is the sequence number of a packet stored for recovery (increasing per adapter),
	// zero otherwise.
	Seq  uint64
	msgs []*engineio.Message
}

// Encode encodes p into its Engine.IO messages (the text frame and one binary message per
// attachment). The attachments are kept, not copied: do not modify them afterwards.
func Encode(p *parser.Packet) (*Encoded, error) {
	text, err := p.Encode()
	if err != nil {
		return nil, err
	}
	msgs := make([]*engineio.Message, 1+len(p.Attachments))
	msgs[0] = engineio.NewTextMessage(text)
	for i, a := range p.Attachments {
		msgs[i+1] = engineio.NewBinaryMessage(a)
	}
	return &Encoded{Packet: p, msgs: msgs}, nil
}

// EncodeEvent encodes event with args once, for any number of sockets of namespace nsp (a
// name as for Server.Of), to send with Socket.SendEncoded: "encode once, send to many". The
// arguments are encoded as for Socket.Emit, binary values included. Sent that way the event
// bypasses the adapter: it is neither stored for connection state recovery nor given an
// offset. It fails with ErrReservedEvent, ErrTooManyAttachments or a JSON encoding error.
func EncodeEvent(nsp, event string, args ...any) (*Encoded, error) {
	p, err := eventPacket(nsName(nsp), event, args)
	if err != nil {
		return nil, err
	}
	return Encode(p)
}

// EventWriter is EncodeEvent for arguments the caller writes as JSON itself, for hot paths:
// no reflection, and no copy of the packet. Start returns a buffer holding the start of the
// packet, with room in front of it for the engine's frame headers; the caller appends each
// argument after Arg, and Encode closes the packet and wraps the buffer as it is, so the
// frames every receiver gets are written in place.
//
// The caller guarantees that each argument is one valid JSON value in valid UTF-8 without
// binary placeholders; the writer checks none of it and sends what it is given. The zero
// value is ready for Start; an EventWriter encodes one event at a time and is not safe for
// concurrent use.
type EventWriter struct {
	nsp  string
	data int   // offset of the packet's data (its JSON array) in the buffer; 0: no Start
	err  error // from Start, returned by Encode
}

// errNoStart is Encode's error for a buffer that is not one Start returned.
var errNoStart = errors.New("sockets: EventWriter.Encode without the buffer of Start")

// Start begins event on namespace nsp (a name as for Server.Of) and returns the buffer to
// append the arguments to. size is the room to reserve for them (their JSON and one byte per
// argument for Arg): a buffer that needs more is grown by append, at the cost of a copy.
func (w *EventWriter) Start(nsp, event string, size int) []byte {
	nsp = nsName(nsp)
	*w = EventWriter{nsp: nsp}
	if isReserved(event) {
		w.err = ErrReservedEvent
	}
	// Header, '[' and the quoted name, ']': at most 6 bytes beyond the two names when the
	// event name needs no escape.
	b := make([]byte, engineio.TextHeadroom, engineio.TextHeadroom+len(nsp)+len(event)+size+6)
	hdr := parser.Packet{Type: parser.Event, Namespace: nsp}
	b, _ = hdr.AppendEncode(b) // an EVENT without attachments always encodes
	w.data = len(b)
	b = append(b, '[')
	return appendEventName(b, event)
}

// Arg appends the separator that precedes an argument to b and returns the result; append
// the argument's JSON to it next.
func (w *EventWriter) Arg(b []byte) []byte { return append(b, ',') }

// Encode closes the packet in b, the buffer Start returned with the arguments appended, and
// returns it encoded; it keeps b, which must not be modified afterwards. It returns Start's
// error (ErrReservedEvent) if any. w is then ready for the next Start.
func (w *EventWriter) Encode(b []byte) (*Encoded, error) {
	data, nsp, err := w.data, w.nsp, w.err
	*w = EventWriter{}
	if err != nil {
		return nil, err
	}
	if data == 0 || len(b) <= data || b[data] != '[' {
		return nil, errNoStart
	}
	b = append(b, ']')
	// One allocation for the Encoded, its Packet and its message list.
	t := &textEncoded{p: parser.Packet{Type: parser.Event, Namespace: nsp, Data: b[data:]}}
	t.msgs[0] = engineio.NewTextMessageAt(b)
	t.e = Encoded{Packet: &t.p, msgs: t.msgs[:]}
	return &t.e, nil
}

// textEncoded is an Encoded of one text message, allocated whole.
type textEncoded struct {
	e    Encoded
	p    parser.Packet
	msgs [1]*engineio.Message
}

// appendEventName appends the JSON string of name as MarshalArgs writes it: as it is when it
// is printable ASCII without quote or backslash, else through the general encoder.
func appendEventName(b []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			data, _, err := parser.MarshalArgs(name) // ["name"]; a string always encodes
			if err != nil || len(data) < 2 {
				break
			}
			return append(b, data[1:len(data)-1]...)
		}
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"')
}

// nsName returns the namespace called name, as Server.Of names it.
func nsName(name string) string {
	if !strings.HasPrefix(name, "/") {
		return "/" + name
	}
	return name
}
