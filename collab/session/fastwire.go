package session

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/sockets"
	"github.com/collabd/collabd/sockets/parser"
	"github.com/collabd/collabd/storage"
)

// The doc:op path is the hot one: every keystroke decodes one doc:op payload,
// sends one ack and one broadcast. This file does those three without
// encoding/json's reflection. Anything the hand-written scanner is not sure
// about goes the general way (encoding/json), so the results are the same;
// FuzzOpFast checks it.

// maxFastDepth is the nesting depth past which scanOpFields gives up (and
// encoding/json decides).
const maxFastDepth = 64

// opFieldNames are the names of rawFields: a key that matches one of them
// only case-insensitively (which encoding/json accepts) sends the payload the
// general way.
var opFieldNames = [...]string{"doc", "client", "user", "rev", "seq", "op", "sel", "before", "limit", "from", "to"}

// scanOpFields is decodeObject for the common doc:op payload: a JSON object
// whose keys are plain ASCII without escapes, each at most once. It fills
// f.Doc, f.Client, f.Seq, f.Rev and f.Op (aliasing b) and skips, validating
// them, the values of other keys. ok is false when b is not such an object
// (invalid JSON included): decode it with encoding/json instead.
func scanOpFields(b []byte, f *rawFields) (ok bool) {
	s := jsonScanner{b: b}
	s.ws()
	if !s.eat('{') {
		return false
	}
	s.ws()
	if s.eat('}') {
		s.ws()
		return s.i == len(s.b)
	}
	for {
		s.ws()
		key, ok := s.plainKey()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		start := s.i
		if !s.value(0) {
			return false
		}
		val := json.RawMessage(b[start:s.i])
		var dst *json.RawMessage
		switch string(key) {
		case "doc":
			dst = &f.Doc
		case "client":
			dst = &f.Client
		case "seq":
			dst = &f.Seq
		case "rev":
			dst = &f.Rev
		case "op":
			dst = &f.Op
		default:
			for _, name := range opFieldNames {
				if asciiEqualFold(key, name) {
					return false // a field by another spelling, or one doc:op ignores
				}
			}
		}
		if dst != nil {
			if *dst != nil {
				return false // a duplicate: the last one wins there
			}
			*dst = val
		}
		s.ws()
		if s.eat('}') {
			s.ws()
			return s.i == len(s.b)
		}
		if !s.eat(',') {
			return false
		}
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// jsonScanner validates JSON text the way encoding/json's scanner does, and
// refuses (returns false) whatever it does not handle.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// plainKey reads a string of printable ASCII without escapes and returns its
// content.
func (s *jsonScanner) plainKey() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// value skips one JSON value.
func (s *jsonScanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxFastDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.str()
	case c == '{':
		s.i++
		s.ws()
		if s.eat('}') {
			return true
		}
		for {
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != '"' || !s.str() {
				return false
			}
			s.ws()
			if !s.eat(':') {
				return false
			}
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.eat('}') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == '[':
		s.i++
		s.ws()
		if s.eat(']') {
			return true
		}
		for {
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(']') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// str skips a string: no control characters, valid escapes (any other byte,
// invalid UTF-8 included, is accepted, as encoding/json does).
func (s *jsonScanner) str() bool {
	s.i++ // the opening quote
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if len(s.b)-s.i < 6 {
					return false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				s.i += 6
			default:
				return false
			}
		default:
			s.i++
		}
	}
	return false
}

// number skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() bool {
	s.eat('-')
	digits := func() int {
		n := 0
		for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.eat('0') {
		// no more digits may follow a leading zero
	} else if digits() == 0 {
		return false
	}
	if s.eat('.') && digits() == 0 {
		return false
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if !s.eat('+') {
			s.eat('-')
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// decodeOp decodes a doc:op payload: the scanner when it can, else
// encoding/json. Both end in the same field checks (OpRequest.fromFields).
func decodeOp(b []byte, r *OpRequest) error {
	var f rawFields
	if scanOpFields(b, &f) {
		if f.Op != nil {
			// b belongs to the socket's reader; the op outlives the handler.
			f.Op = append(json.RawMessage(nil), f.Op...)
		}
		return r.fromFields(&f)
	}
	if err := decodeObject(b, &f); err != nil {
		return err
	}
	return r.fromFields(&f)
}

// handleOp is the doc:op handler: the payload goes straight to decodeOp
// (instead of through sockets.Handle, which runs encoding/json over it
// before OpRequest.UnmarshalJSON gets it). A packet with binary attachments
// takes the general path.
func (s *Service) handleOp(sock *sockets.Socket, ev *sockets.Event) {
	if len(ev.Attachments()) > 0 || ev.Len() == 0 || !isObject(ev.Raw(0)) {
		s.handleOpGeneral(sock, ev)
		return
	}
	var req OpRequest
	if err := decodeOp(ev.Raw(0), &req); err != nil {
		s.decodeError(sock, ev, err)
		return
	}
	s.onOp(sock, req, ev.Ack)
}

// ---- encoding --------------------------------------------------------------

// appendRevAck appends {"ok":true,"rev":N}, as encoding/json writes revAck.
func appendRevAck(b []byte, rev uint64) []byte {
	b = append(b, `{"ok":true,"rev":`...)
	b = strconv.AppendUint(b, rev, 10)
	return append(b, '}')
}

// okAckJSON is okAck{OK: true} as encoding/json writes it.
var okAckJSON = json.RawMessage(`{"ok":true}`)

// replyRev answers ack with {ok:true, rev}, without reflection.
func replyRev(ack *sockets.Ack, rev uint64) error {
	var buf [40]byte
	return ack.ReplyRaw(appendRevAck(buf[:0], rev))
}

// encodeOpEvent encodes the doc:op broadcast of rec, byte for byte what
// encodeEvent("doc:op", opEvent{...}) makes (tested), without reflection.
func encodeOpEvent(doc string, rec *storage.Record) (*sockets.Encoded, error) {
	b := make([]byte, 0, 96+len(doc)+len(rec.Op)+len(rec.Client)+len(rec.User))
	b = append(b, `["doc:op",{"doc":`...)
	b = appendJSONString(b, doc)
	b = append(b, `,"rev":`...)
	b = strconv.AppendUint(b, rec.Rev, 10)
	b = append(b, `,"op":`...)
	if len(rec.Op) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, rec.Op...) // compact: the hub wrote it
	}
	b = append(b, `,"client":`...)
	b = appendJSONString(b, rec.Client)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, rec.Seq, 10)
	b = append(b, `,"user":`...)
	b = appendJSONString(b, rec.User)
	b = append(b, `,"time":"`...)
	t := rec.Time.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return encodeEvent("doc:op", opEvent{Doc: doc, Rev: rec.Rev, Op: rec.Op, Client: rec.Client, Seq: rec.Seq, User: rec.User, Time: t})
	}
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `"}]`...)
	return sockets.Encode(&parser.Packet{Type: parser.Event, Namespace: "/", Data: b})
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json does without HTML escaping:
// invalid UTF-8 becomes U+FFFD, U+2028 and U+2029 are escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
