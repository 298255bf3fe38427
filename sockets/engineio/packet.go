package engineio

import (
	"encoding/base64"
	"encoding/binary"
	"sync"
	"unicode/utf8"
)

// Engine.IO v4 packet types, as the ASCII digit that starts a text packet.
const (
	typeOpen    byte = '0'
	typeClose   byte = '1'
	typePing    byte = '2'
	typePong    byte = '3'
	typeMessage byte = '4'
	typeUpgrade byte = '5'
	typeNoop    byte = '6'
)

// recordSeparator joins the packets of one HTTP long-polling payload.
const recordSeparator = 0x1e

// Message is one outgoing Engine.IO packet. It is immutable once built and
// safe to share between any number of connections and goroutines: a broadcast
// builds one Message and sends it to every receiver. Its wire forms (the
// WebSocket frame and the long-polling text form) are each encoded lazily,
// once, on first use.
type Message struct {
	typ    byte   // packet type (typeMessage for user messages)
	data   []byte // payload after the type byte; raw bytes when binary
	binary bool
	user   bool // counts against the per-connection queue bound (queueCost)

	// built: frame and poll were set by NewTextMessageAt (the Onces are
	// not used).
	built bool

	frameOnce sync.Once
	frame     []byte // the complete WebSocket frame (server frames are unmasked)

	pollOnce sync.Once
	poll     []byte
}

// msgOverhead is what a queued message counts against
// Config.WriteQueueBytes besides its payload, roughly the memory it holds
// apart from the payload (a queue slot, and its Message when that is not
// shared), so that the bound also bounds a flood of tiny messages.
const msgOverhead = 64

// queueCost is what m counts against Config.WriteQueueBytes while queued:
// its WebSocket frame payload (the type digit and the data of a text
// message, the data of a binary one) plus msgOverhead.
func (m *Message) queueCost() int {
	n := len(m.data) + msgOverhead
	if !m.binary {
		n++
	}
	return n
}

// NewTextMessage returns an Engine.IO "message" packet with a text payload.
// data must be valid UTF-8; the Message keeps data, so the caller must not
// modify it afterwards.
func NewTextMessage(data []byte) *Message {
	return &Message{typ: typeMessage, data: data, user: true}
}

// TextHeadroom is the room NewTextMessageAt needs in front of a payload:
// the longest WebSocket frame header and the packet type.
const TextHeadroom = maxFrameHeader + 1

// NewTextMessageAt returns an Engine.IO "message" packet whose text payload
// is buf[TextHeadroom:]. Its WebSocket frame and its long-polling form are
// written into buf's headroom, in front of the payload, where
// NewTextMessage makes a copy of the payload for each: a caller that
// encodes a broadcast into such a buffer sends it without a copy. The
// payload must be valid UTF-8; the Message keeps buf, so the caller must
// not modify it afterwards.
func NewTextMessageAt(buf []byte) *Message {
	data := buf[TextHeadroom:]
	at := TextHeadroom - 1 // the packet type, right before the payload
	buf[at] = typeMessage
	var hdr [maxFrameHeader]byte
	h := appendFrameHeader(hdr[:0], opText, 1+len(data))
	start := at - len(h)
	copy(buf[start:], h)
	return &Message{typ: typeMessage, data: data, user: true, built: true, frame: buf[start:], poll: buf[at:]}
}

// NewBinaryMessage returns an Engine.IO "message" packet with a binary
// payload. The Message keeps data, so the caller must not modify it
// afterwards.
func NewBinaryMessage(data []byte) *Message {
	return &Message{typ: typeMessage, data: data, binary: true, user: true}
}

// controlMessage returns a text packet of type typ that is not a user
// message (it never counts against the queue bound).
func controlMessage(typ byte, data string) *Message {
	return &Message{typ: typ, data: []byte(data)}
}

// Shared control packets.
var (
	msgPing      = controlMessage(typePing, "")
	msgClose     = controlMessage(typeClose, "")
	msgNoop      = controlMessage(typeNoop, "")
	msgPongProbe = controlMessage(typePong, "probe")
)

// Data returns the payload of m. It must not be modified.
func (m *Message) Data() []byte { return m.data }

// Binary reports whether m carries a binary payload.
func (m *Message) Binary() bool { return m.binary }

// pollingForm returns the long-polling text form of m: the type digit
// followed by the data, or "b" followed by the standard base64 encoding of a
// binary payload.
func (m *Message) pollingForm() []byte {
	if m.built {
		return m.poll
	}
	m.pollOnce.Do(func() {
		if m.binary {
			b := make([]byte, 1+base64.StdEncoding.EncodedLen(len(m.data)))
			b[0] = 'b'
			base64.StdEncoding.Encode(b[1:], m.data)
			m.poll = b
			return
		}
		b := make([]byte, 1+len(m.data))
		b[0] = m.typ
		copy(b[1:], m.data)
		m.poll = b
	})
	return m.poll
}

// WebSocket opcodes.
const (
	opText   = 1
	opBinary = 2
	opClose  = 8
)

// wsFrame returns the complete WebSocket frame of m, built once: a binary
// frame with the raw data for binary payloads, a text frame with the type
// digit and the data otherwise. Frames are written whole, in one write each
// or together in one writev, so they never interleave with the control
// frames the reader writes itself (pong, close).
func (m *Message) wsFrame() []byte {
	if m.built {
		return m.frame
	}
	m.frameOnce.Do(func() {
		if m.binary {
			m.frame = appendFrame(nil, opBinary, nil, m.data)
			return
		}
		m.frame = appendFrame(nil, opText, []byte{m.typ}, m.data)
	})
	return m.frame
}

// appendFrame appends one final, unmasked WebSocket frame whose payload is
// prefix followed by data.
func appendFrame(dst []byte, opcode byte, prefix, data []byte) []byte {
	n := len(prefix) + len(data)
	if dst == nil {
		dst = make([]byte, 0, n+maxFrameHeader)
	}
	dst = appendFrameHeader(dst, opcode, n)
	dst = append(dst, prefix...)
	return append(dst, data...)
}

// maxFrameHeader is the longest header of a server frame (unmasked).
const maxFrameHeader = 10

// appendFrameHeader appends the header of one final, unmasked WebSocket
// frame with an n-byte payload.
func appendFrameHeader(dst []byte, opcode byte, n int) []byte {
	dst = append(dst, 0x80|opcode)
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xffff:
		return append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// closeFrame is a WebSocket close frame with status 1000 (normal closure).
var closeFrame = appendFrame(nil, opClose, nil, []byte{0x03, 0xe8})

// appendPayload appends the long-polling payload of msgs (their polling
// forms joined by the record separator) to dst.
func appendPayload(dst []byte, msgs []*Message) []byte {
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, recordSeparator)
		}
		dst = append(dst, m.pollingForm()...)
	}
	return dst
}

// Packet is one decoded incoming Engine.IO packet.
type Packet struct {
	Type   byte   // '0'..'6'; binary packets have type '4' (message)
	Data   []byte // the payload after the type digit; decoded bytes when Binary
	Binary bool
}

// decodeTextPacket decodes one text packet (a WebSocket text message, or
// one record of a polling payload without the "b" binary form) whose bytes
// are valid UTF-8: the WebSocket frame reader checks its text messages,
// DecodePayload its records. The returned Packet's Data aliases data.
func decodeTextPacket(data []byte) (Packet, error) {
	if len(data) == 0 || data[0] < typeOpen || data[0] > typeNoop {
		return Packet{}, ErrParse
	}
	return Packet{Type: data[0], Data: data[1:]}, nil
}

// DecodePayload decodes an HTTP long-polling payload: packets separated by
// 0x1E, each a type digit followed by text, or "b" followed by base64 for a
// binary message. It returns ErrParse for an empty payload, an empty packet,
// an unknown type, invalid UTF-8 or bad base64. Text packets' Data alias
// body; binary packets' Data is freshly decoded.
func DecodePayload(body []byte) ([]Packet, error) {
	if len(body) == 0 {
		return nil, ErrParse
	}
	n := 1
	for _, b := range body {
		if b == recordSeparator {
			n++
		}
	}
	pkts := make([]Packet, 0, n)
	for len(body) > 0 || n > len(pkts) {
		rec := body
		rest := []byte(nil)
		for i, b := range body {
			if b == recordSeparator {
				rec, rest = body[:i], body[i+1:]
				break
			}
		}
		if len(rec) > 0 && rec[0] == 'b' {
			enc := rec[1:]
			dec := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
			k, err := base64.StdEncoding.Decode(dec, enc)
			if err != nil {
				return nil, ErrParse
			}
			pkts = append(pkts, Packet{Type: typeMessage, Data: dec[:k], Binary: true})
		} else {
			if !utf8.Valid(rec) {
				return nil, ErrParse
			}
			p, err := decodeTextPacket(rec)
			if err != nil {
				return nil, err
			}
			pkts = append(pkts, p)
		}
		body = rest
	}
	return pkts, nil
}

// EncodePayload returns the long-polling payload of msgs.
func EncodePayload(msgs []*Message) []byte {
	size := 0
	for _, m := range msgs {
		size += len(m.pollingForm()) + 1
	}
	return appendPayload(make([]byte, 0, size), msgs)
}
