package engineio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"
	"unicode/utf8"
)

// The server side of RFC 6455 framing for incoming messages. gorilla
// performs the opening handshake; after it the engine reads the client's
// frames itself (how its reader waits for them: wsreader.go), so that an
// idle WebSocket holds no gorilla connection state at all.

// More WebSocket opcodes (opText, opBinary and opClose are in packet.go).
const (
	opContinuation = 0
	opPing         = 9
	opPong         = 10
)

// WebSocket close status codes the engine sends.
const (
	closeProtocolError = 1002
	closeInvalidData   = 1007
	closeTooBig        = 1009
)

// maxControlPayload is the largest payload of a control frame.
const maxControlPayload = 125

var (
	// errWSProtocol: the client broke the framing rules (unmasked frame,
	// reserved bits, unknown opcode, fragmented or oversized control frame,
	// continuation out of place, 64-bit length with the top bit set, bad
	// close frame payload or status code).
	errWSProtocol = errors.New("engineio: websocket protocol error")
	// errWSInvalidUTF8: a text message or the reason of a close frame is
	// not valid UTF-8.
	errWSInvalidUTF8 = errors.New("engineio: websocket text is not valid UTF-8")
	// errWSClosed: the client sent a close frame (answered already).
	errWSClosed = errors.New("engineio: websocket closed by the client")
)

// writeControlFrame writes one control frame on nc. Control frames and the
// writer's frames never interleave: each goes out in a single Write or
// writev, which the connection serializes.
func writeControlFrame(nc net.Conn, op byte, payload []byte) error {
	var b [2 + maxControlPayload]byte
	f := appendFrame(b[:0], op, nil, payload)
	_ = nc.SetWriteDeadline(time.Now().Add(writeWait))
	_, err := nc.Write(f)
	return err
}

// readWSMessage reads the next data message from r into buf (after
// resetting it) and returns its opcode, opText or opBinary. Control frames
// before and between the message's fragments are handled on the way: a ping
// is answered with a pong carrying its payload, a pong is ignored, a close
// frame is echoed (its status code alone, or empty if it had none) and ends
// the read with errWSClosed.
//
// The frames must follow RFC 6455 (sections 5 and 7.4): masked, reserved
// bits clear (no extension is negotiated), known opcodes, control frames
// final and at most 125 bytes, continuation frames only inside a message
// and data frames only outside one, a 64-bit length with its top bit clear
// (lengths need not use the shortest encoding), a close frame either empty
// or with a status code a peer may send (validCloseCode) and a UTF-8
// reason. A text message, reassembled, must be valid UTF-8. A failure sends
// a close frame, then returns: errWSProtocol after 1002, errWSInvalidUTF8
// after 1007 (invalid text or close reason), ErrPayloadTooLarge after 1009
// (a message larger than limit). A stream that ends returns io.EOF between
// messages, io.ErrUnexpectedEOF inside one, and sends nothing.
func readWSMessage(r *bufio.Reader, nc net.Conn, buf *bytes.Buffer, limit int) (byte, error) {
	buf.Reset()
	var msgOp byte // opcode of the message being assembled, 0 before its first frame
	var hdr [14]byte
	for {
		if _, err := io.ReadFull(r, hdr[:2]); err != nil {
			if msgOp != 0 {
				err = noEOF(err)
			}
			return 0, err
		}
		fin, op := hdr[0]&0x80 != 0, hdr[0]&0x0f
		control := op >= 8
		switch {
		case hdr[0]&0x70 != 0, // reserved bits
			hdr[1]&0x80 == 0, // unmasked
			control && !fin,
			control && op != opClose && op != opPing && op != opPong,
			!control && op != opContinuation && op != opText && op != opBinary,
			op == opContinuation && msgOp == 0,
			(op == opText || op == opBinary) && msgOp != 0:
			return 0, failWS(nc, closeProtocolError, errWSProtocol)
		}
		// The extended length, if any, and the masking key in one read.
		n, ext := uint64(hdr[1]&0x7f), 0
		switch n {
		case 126:
			ext = 2
		case 127:
			ext = 8
		}
		if _, err := io.ReadFull(r, hdr[2:2+ext+4]); err != nil {
			return 0, noEOF(err)
		}
		switch ext {
		case 2:
			n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 8:
			n = binary.BigEndian.Uint64(hdr[2:10])
			if n>>63 != 0 {
				return 0, failWS(nc, closeProtocolError, errWSProtocol)
			}
		}
		mask := [4]byte(hdr[2+ext : 2+ext+4])
		if control {
			if n > maxControlPayload {
				return 0, failWS(nc, closeProtocolError, errWSProtocol)
			}
			var pb [maxControlPayload]byte
			p := pb[:n]
			if _, err := io.ReadFull(r, p); err != nil {
				return 0, noEOF(err)
			}
			unmask(p, mask, 0)
			switch op {
			case opPing:
				if err := writeControlFrame(nc, opPong, p); err != nil {
					return 0, err
				}
			case opClose:
				return 0, answerClose(nc, p)
			}
			continue
		}
		if op != opContinuation {
			msgOp = op
		}
		if n > uint64(limit-buf.Len()) {
			return 0, failWS(nc, closeTooBig, ErrPayloadTooLarge)
		}
		buf.Grow(int(n))
		p := buf.AvailableBuffer()[:n]
		if _, err := io.ReadFull(r, p); err != nil {
			return 0, noEOF(err)
		}
		unmask(p, mask, 0)
		buf.Write(p)
		if fin {
			// The whole message: a fragment may end inside a code point.
			if msgOp == opText && !utf8.Valid(buf.Bytes()) {
				return 0, failWS(nc, closeInvalidData, errWSInvalidUTF8)
			}
			return msgOp, nil
		}
	}
}

// answerClose answers the client's close frame with payload p and returns
// the error that ends the read: errWSClosed after echoing an empty payload
// or a valid status code (without the reason), or the failure for a
// payload of one byte, a status code a peer must not send, or a reason
// that is not UTF-8.
func answerClose(nc net.Conn, p []byte) error {
	switch {
	case len(p) == 0:
		_ = writeControlFrame(nc, opClose, nil)
		return errWSClosed
	case len(p) == 1 || !validCloseCode(binary.BigEndian.Uint16(p)):
		return failWS(nc, closeProtocolError, errWSProtocol)
	case !utf8.Valid(p[2:]):
		return failWS(nc, closeInvalidData, errWSInvalidUTF8)
	}
	_ = writeControlFrame(nc, opClose, p[:2])
	return errWSClosed
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 section 7.4 and the IANA registry it set up): 1000-1003 and
// 1007-1011 defined by the RFC, 1012-1014 registered since (service
// restart, try again later, bad gateway), and 3000-4999 for libraries,
// frameworks and applications. 1004 (reserved), 1005, 1006 and 1015 (never
// sent in a frame), the rest of 0-2999 and 5000 and up are not.
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	}
	return code >= 3000 && code <= 4999
}

// failWS sends a close frame with code and returns err.
func failWS(nc net.Conn, code uint16, err error) error {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], code)
	_ = writeControlFrame(nc, opClose, p[:])
	return err
}

// noEOF turns the end of the stream inside a frame into
// io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// unmask XORs p with the masking key, starting at key position pos.
func unmask(p []byte, key [4]byte, pos int) {
	if len(p) >= 16 {
		// Eight bytes at a time with the key rotated to the position.
		var k [8]byte
		for i := range k {
			k[i] = key[(pos+i)&3]
		}
		kw := binary.LittleEndian.Uint64(k[:])
		for len(p) >= 8 {
			binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^kw)
			p = p[8:]
		}
	}
	for i := range p {
		p[i] ^= key[(pos+i)&3]
	}
}
