package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Type is the Socket.IO packet type, the first character of the text frame.
type Type byte

// The packet types of protocol v5.
const (
	Connect      Type = 0
	Disconnect   Type = 1
	Event        Type = 2
	Ack          Type = 3
	ConnectError Type = 4
	BinaryEvent  Type = 5
	BinaryAck    Type = 6
)

// String returns the protocol name of the type, e.g. "BINARY_EVENT".
func (t Type) String() string {
	switch t {
	case Connect:
		return "CONNECT"
	case Disconnect:
		return "DISCONNECT"
	case Event:
		return "EVENT"
	case Ack:
		return "ACK"
	case ConnectError:
		return "CONNECT_ERROR"
	case BinaryEvent:
		return "BINARY_EVENT"
	case BinaryAck:
		return "BINARY_ACK"
	}
	return "UNKNOWN(" + strconv.Itoa(int(t)) + ")"
}

// IsBinary reports whether packets of this type carry attachments.
func (t Type) IsBinary() bool { return t == BinaryEvent || t == BinaryAck }

// MaxAttachments is the largest number of binary attachments a packet may announce. A decoder
// refuses more and Encode never produces more.
const MaxAttachments = 10

// MaxAckID is the largest acknowledgement id accepted: ids are JavaScript numbers on the other
// side, so they must stay exact integers there (2^53-1).
const MaxAckID = 1<<53 - 1

// Errors returned by Decode, Decoder.Add and Encode. Decoding errors wrap ErrInvalidPacket, so
// errors.Is(err, ErrInvalidPacket) tells a protocol violation from other failures.
var (
	ErrInvalidPacket       = errors.New("parser: invalid packet")
	ErrTooManyAttachments  = errors.New("parser: too many binary attachments")
	ErrUnexpectedBinary    = errors.New("parser: binary data when no packet awaits attachments")
	ErrUnexpectedText      = errors.New("parser: text data while a packet awaits attachments")
	ErrIllegalPlaceholder  = errors.New("parser: placeholder does not match an attachment")
	ErrReservedEventName   = errors.New("parser: reserved event name")
	errInvalid             = ErrInvalidPacket
	placeholderKey         = []byte(`"_placeholder"`)
	reservedEventNameBytes = [][]byte{
		[]byte(`"connect"`), []byte(`"connect_error"`), []byte(`"disconnect"`),
		[]byte(`"disconnecting"`), []byte(`"newListener"`), []byte(`"removeListener"`),
	}
)

// Packet is one Socket.IO packet.
type Packet struct {
	// Type is the packet type. Encode turns EVENT into BINARY_EVENT and ACK into BINARY_ACK when
	// Attachments is not empty, and the reverse when it is.
	Type Type
	// Namespace starts with "/"; the empty string means "/".
	Namespace string
	// ID is the acknowledgement id, valid when HasID is set.
	ID    uint64
	HasID bool
	// Data is the JSON payload, nil when absent. Binary values inside it are placeholders.
	Data json.RawMessage
	// Attachments are the binary attachments in placeholder order.
	Attachments [][]byte
	// attachmentsWanted is the count announced in the header while decoding.
	attachmentsWanted int
	// args caches the elements of an array payload split while validating it.
	args []json.RawMessage
	// name is the event name of a decoded EVENT packet.
	name string
}

// EventName returns the event name of a decoded EVENT or BINARY_EVENT packet.
func (p *Packet) EventName() string { return p.name }

// Args returns the elements of an array payload (EVENT and ACK packets), in order. For an
// EVENT the first element is the event name. The elements are read-only: for a packet from
// Decode or a Decoder they share memory with Data (which, from a Decoder, is the packet's own
// copy); otherwise they are copied from Data.
func (p *Packet) Args() ([]json.RawMessage, error) {
	if p.args != nil {
		return p.args, nil
	}
	args, err := SplitArray(p.Data)
	if err != nil {
		return nil, err
	}
	p.args = args
	return args, nil
}

// Nsp returns the namespace, "/" when Namespace is empty.
func (p *Packet) Nsp() string {
	if p.Namespace == "" {
		return "/"
	}
	return p.Namespace
}

// Encode returns the text frame of p. The attachments, if any, are sent after it, each as one
// binary message, in order. It fails with ErrTooManyAttachments beyond MaxAttachments.
func (p *Packet) Encode() ([]byte, error) {
	return p.AppendEncode(make([]byte, 0, 8+len(p.Namespace)+len(p.Data)))
}

// AppendEncode appends the text frame of p to dst.
func (p *Packet) AppendEncode(dst []byte) ([]byte, error) {
	n := len(p.Attachments)
	if n > MaxAttachments {
		return dst, ErrTooManyAttachments
	}
	t := p.Type
	switch {
	case n > 0 && t == Event:
		t = BinaryEvent
	case n > 0 && t == Ack:
		t = BinaryAck
	case n == 0 && t == BinaryEvent:
		t = Event
	case n == 0 && t == BinaryAck:
		t = Ack
	}
	if t > BinaryAck {
		return dst, fmt.Errorf("%w: type %d", errInvalid, t)
	}
	if n > 0 && !t.IsBinary() {
		return dst, fmt.Errorf("%w: attachments on %v", errInvalid, t)
	}
	dst = append(dst, byte('0'+t))
	if t.IsBinary() {
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = append(dst, '-')
	}
	if p.Namespace != "" && p.Namespace != "/" {
		dst = append(dst, p.Namespace...)
		dst = append(dst, ',')
	}
	if p.HasID {
		dst = strconv.AppendUint(dst, p.ID, 10)
	}
	dst = append(dst, p.Data...)
	return dst, nil
}

// Decode parses a text frame. For BINARY_EVENT and BINARY_ACK the returned packet still awaits
// its attachments (see Decoder, which collects them); Attachments is nil and Wanted tells how
// many are announced. The payload is validated for the packet type: CONNECT takes an object or
// nothing, DISCONNECT nothing, CONNECT_ERROR an object or a string, EVENT a non-empty array whose
// first element is a string that is not a reserved event name (or a number), ACK an array.
// The returned packet's Data aliases text.
func Decode(text []byte) (*Packet, error) {
	if len(text) == 0 {
		return nil, fmt.Errorf("%w: empty", errInvalid)
	}
	if !utf8.Valid(text) {
		return nil, fmt.Errorf("%w: invalid UTF-8", errInvalid)
	}
	c := text[0]
	if c < '0' || c > '6' {
		return nil, fmt.Errorf("%w: unknown type %q", errInvalid, c)
	}
	p := &Packet{Type: Type(c - '0')}
	i := 1
	if p.Type.IsBinary() {
		j := i
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		if j == i || j >= len(text) || text[j] != '-' || j-i > 4 {
			return nil, fmt.Errorf("%w: illegal attachments", errInvalid)
		}
		n, _ := strconv.Atoi(string(text[i:j]))
		if n > MaxAttachments {
			return nil, fmt.Errorf("%w: %w: %d", errInvalid, ErrTooManyAttachments, n)
		}
		p.attachmentsWanted = n
		i = j + 1
	}
	if i < len(text) && text[i] == '/' {
		j := bytes.IndexByte(text[i:], ',')
		if j < 0 {
			p.Namespace = string(text[i:])
			i = len(text)
		} else {
			p.Namespace = string(text[i : i+j])
			i += j + 1
		}
	} else {
		p.Namespace = "/"
	}
	if i < len(text) && text[i] >= '0' && text[i] <= '9' {
		j := i
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		if j-i > 16 {
			return nil, fmt.Errorf("%w: ack id too long", errInvalid)
		}
		id, err := strconv.ParseUint(string(text[i:j]), 10, 64)
		if err != nil || id > MaxAckID {
			return nil, fmt.Errorf("%w: bad ack id", errInvalid)
		}
		p.ID, p.HasID = id, true
		i = j
	}
	if i < len(text) {
		p.Data = json.RawMessage(text[i:])
	}
	if err := validatePayload(p); err != nil {
		return nil, err
	}
	return p, nil
}

// Wanted returns the number of attachments the packet header announced.
func (p *Packet) Wanted() int { return p.attachmentsWanted }

func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

func validatePayload(p *Packet) error {
	first := firstByte(p.Data)
	if first == '[' && p.Type != Connect && p.Type != Disconnect && p.Type != ConnectError {
		// Arrays are split (which validates them) once, here, into subslices of Data.
		args, ok := splitArray(p.Data)
		if !ok {
			return fmt.Errorf("%w: bad JSON payload", errInvalid)
		}
		p.args = args
	} else if p.Data != nil && !json.Valid(p.Data) {
		return fmt.Errorf("%w: bad JSON payload", errInvalid)
	}
	switch p.Type {
	case Connect:
		if p.Data != nil && first != '{' {
			return fmt.Errorf("%w: CONNECT payload must be an object", errInvalid)
		}
		if p.HasID {
			return fmt.Errorf("%w: CONNECT with an ack id", errInvalid)
		}
	case Disconnect:
		if p.Data != nil || p.HasID {
			return fmt.Errorf("%w: DISCONNECT with a payload", errInvalid)
		}
	case ConnectError:
		if (first != '{' && first != '"') || p.HasID {
			return fmt.Errorf("%w: CONNECT_ERROR payload must be an object or a string", errInvalid)
		}
	case Event, BinaryEvent:
		if first != '[' {
			return fmt.Errorf("%w: EVENT payload must be an array", errInvalid)
		}
		name, err := eventName(p.args)
		if err != nil {
			return err
		}
		p.name = name
	case Ack, BinaryAck:
		if first != '[' {
			return fmt.Errorf("%w: ACK payload must be an array", errInvalid)
		}
		if !p.HasID {
			return fmt.Errorf("%w: ACK without an id", errInvalid)
		}
	}
	return nil
}

// SplitArray splits a JSON array into its elements, which do not alias data (they share one
// copy of it). It fails when data is not a valid JSON array; it accepts exactly what
// json.Unmarshal into a []json.RawMessage accepts, with the same element bytes.
func SplitArray(data []byte) ([]json.RawMessage, error) {
	out, ok := splitArray(bytes.Clone(data))
	if !ok {
		return nil, fmt.Errorf("%w: not a valid JSON array", errInvalid)
	}
	return out, nil
}

// EventName returns the event name of an EVENT payload: its first element, a string (unquoted)
// or a number (as written). Reserved names fail with ErrReservedEventName.
func EventName(data []byte) (string, error) {
	args, err := SplitArray(data)
	if err != nil {
		return "", err
	}
	return eventName(args)
}

func eventName(args []json.RawMessage) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("%w: EVENT without a name", errInvalid)
	}
	first := args[0]
	switch c := firstByte(first); {
	case c == '"':
		for _, r := range reservedEventNameBytes {
			if bytes.Equal(first, r) {
				return "", fmt.Errorf("%w: %w %s", errInvalid, ErrReservedEventName, first)
			}
		}
		if name := first[1 : len(first)-1]; bytes.IndexByte(name, '\\') < 0 && utf8.Valid(name) {
			return string(name), nil // what json.Unmarshal would give, without reflection
		}
		var s string
		if err := json.Unmarshal(first, &s); err != nil {
			return "", fmt.Errorf("%w: %v", errInvalid, err)
		}
		return s, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return string(first), nil
	}
	return "", fmt.Errorf("%w: event name must be a string", errInvalid)
}

// Decoder reassembles packets from a stream of Engine.IO messages: a binary packet's text frame
// followed by its attachments. The zero value is ready to use. Not safe for concurrent use.
type Decoder struct {
	pending *Packet
}

// Add feeds one Engine.IO message. It returns the packet once complete, or nil while attachments
// are still awaited. text frames are parsed by Decode; binary frames are appended (copied) to
// the awaiting packet. Any error leaves the decoder reset; the stream should then be closed.
//
// Add copies what it keeps: the returned packet does not alias data.
func (d *Decoder) Add(data []byte, binary bool) (*Packet, error) {
	if binary {
		if d.pending == nil {
			return nil, fmt.Errorf("%w: %w", errInvalid, ErrUnexpectedBinary)
		}
		p := d.pending
		p.Attachments = append(p.Attachments, bytes.Clone(data))
		if len(p.Attachments) < p.attachmentsWanted {
			return nil, nil
		}
		d.pending = nil
		if err := CheckPlaceholders(p.Data, len(p.Attachments)); err != nil {
			return nil, err
		}
		return p, nil
	}
	if d.pending != nil {
		d.pending = nil
		return nil, fmt.Errorf("%w: %w", errInvalid, ErrUnexpectedText)
	}
	// One copy of the frame: Data and the split arguments are subslices of it.
	p, err := Decode(bytes.Clone(data))
	if err != nil {
		return nil, err
	}
	if p.Type.IsBinary() {
		if p.attachmentsWanted > 0 {
			p.Attachments = make([][]byte, 0, p.attachmentsWanted)
			d.pending = p
			return nil, nil
		}
		if err := CheckPlaceholders(p.Data, 0); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Pending reports whether a packet awaits attachments.
func (d *Decoder) Pending() bool { return d.pending != nil }

// Reset drops a packet awaiting attachments.
func (d *Decoder) Reset() { d.pending = nil }

// CheckPlaceholders verifies that every placeholder in data points at one of n attachments
// (num an integer in [0, n)).
func CheckPlaceholders(data []byte, n int) error {
	if !bytes.Contains(data, placeholderKey) {
		return nil
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		case map[string]any:
			if ph, ok := x["_placeholder"].(bool); ok && ph {
				num, ok := x["num"].(float64)
				if !ok || num != float64(int(num)) || num < 0 || int(num) >= n {
					return fmt.Errorf("%w: %w", errInvalid, ErrIllegalPlaceholder)
				}
				return nil
			}
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(v)
}
