package session

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/collabd/collabd/internal/jsonx"
	"github.com/collabd/collabd/sockets"
	"github.com/collabd/collabd/storage"
)

// The doc:op path is the hot one: every keystroke decodes one doc:op payload,
// sends one ack and one broadcast. This file does those three without
// encoding/json's reflection. Anything the hand-written scanner is not sure
// about goes the general way (encoding/json), so the results are the same;
// FuzzOpFast checks it.

// maxFastDepth is the nesting depth (the payload object counted) past which
// scanOpFields gives up (and encoding/json decides).
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
	s := jsonx.Scanner{Data: b, MaxDepth: maxFastDepth}
	s.SkipSpace()
	if !s.Eat('{') {
		return false
	}
	s.Depth = 1
	s.SkipSpace()
	if s.Eat('}') {
		return s.AtEnd()
	}
	for {
		s.SkipSpace()
		key, ok := plainKey(&s)
		if !ok {
			return false
		}
		s.SkipSpace()
		if !s.Eat(':') {
			return false
		}
		s.SkipSpace()
		start := s.I
		if !s.Value() {
			return false
		}
		val := json.RawMessage(b[start:s.I])
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
		s.SkipSpace()
		if s.Eat('}') {
			return s.AtEnd()
		}
		if !s.Eat(',') {
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

// plainKey reads a string of printable ASCII without escapes and returns its
// content.
func plainKey(s *jsonx.Scanner) ([]byte, bool) {
	if !s.Eat('"') {
		return nil, false
	}
	start := s.I
	for s.I < len(s.Data) {
		c := s.Data[s.I]
		switch {
		case c == '"':
			s.I++
			return s.Data[start : s.I-1], true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return nil, false
		}
		s.I++
	}
	return nil, false
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
	// The fixed parts, two 20-digit numbers and a 35-byte time take 160
	// bytes at most: the buffer is never grown (escapes aside), and the
	// engine sends it as it is.
	var w sockets.EventWriter
	b := w.Start("/", "doc:op", 1+160+len(doc)+len(rec.Op)+len(rec.Client)+len(rec.User))
	b = w.Arg(b)
	b = append(b, `{"doc":`...)
	b = jsonx.AppendString(b, doc)
	b = append(b, `,"rev":`...)
	b = strconv.AppendUint(b, rec.Rev, 10)
	b = append(b, `,"op":`...)
	if len(rec.Op) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, rec.Op...) // compact: the hub wrote it
	}
	b = append(b, `,"client":`...)
	b = jsonx.AppendString(b, rec.Client)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, rec.Seq, 10)
	b = append(b, `,"user":`...)
	b = jsonx.AppendString(b, rec.User)
	b = append(b, `,"time":"`...)
	t := rec.Time.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return encodeEvent("doc:op", opEvent{Doc: doc, Rev: rec.Rev, Op: rec.Op, Client: rec.Client, Seq: rec.Seq, User: rec.User, Time: t})
	}
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `"}`...)
	return w.Encode(b)
}
