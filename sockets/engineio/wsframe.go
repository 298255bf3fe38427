package engineio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"
)

// The server side of RFC 6455 framing for incoming messages. gorilla
// performs the opening handshake; after it the engine reads the client's
// frames itself, through read buffers borrowed from a pool only while bytes
// are in flight, so that an idle WebSocket holds no read buffer (and no
// gorilla connection state) at all.

// More WebSocket opcodes (opText, opBinary and opClose are in packet.go).
const (
	opContinuation = 0
	opPing         = 9
	opPong         = 10
)

// WebSocket close status codes the engine sends.
const (
	closeProtocolError = 1002
	closeTooBig        = 1009
)

// maxControlPayload is the largest payload of a control frame.
const maxControlPayload = 125

var (
	// errWSProtocol: the client broke the framing rules (unmasked frame,
	// reserved bits, bad opcode, oversized control frame, continuation
	// out of place).
	errWSProtocol = errors.New("engineio: websocket protocol error")
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

// closePayload is the payload of a close frame with status code.
func closePayload(code uint16) []byte {
	return binary.BigEndian.AppendUint16(nil, code)
}

// readWSMessage reads the next data message from r into buf (after
// resetting it) and returns its opcode, opText or opBinary. Control frames
// before and between the message's fragments are handled on the way: a ping
// is answered with a pong on nc, a pong is ignored, a close frame is echoed
// and ends the read with errWSClosed. A message larger than limit is
// refused with ErrPayloadTooLarge, a framing error with errWSProtocol; both
// send the matching close frame first. Text messages are not checked for
// UTF-8 here (the packet decoder does it).
func readWSMessage(r *bufio.Reader, nc net.Conn, buf *bytes.Buffer, limit int) (byte, error) {
	buf.Reset()
	var msgOp byte // opcode of the message being assembled, 0 before its first frame
	var hdr [14]byte
	for {
		if _, err := io.ReadFull(r, hdr[:2]); err != nil {
			return 0, err
		}
		fin, op := hdr[0]&0x80 != 0, hdr[0]&0x0f
		if hdr[0]&0x70 != 0 || hdr[1]&0x80 == 0 { // reserved bits, or unmasked
			return 0, protocolError(nc, errWSProtocol)
		}
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(r, hdr[2:4]); err != nil {
				return 0, err
			}
			n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(r, hdr[2:10]); err != nil {
				return 0, err
			}
			n = binary.BigEndian.Uint64(hdr[2:10])
		}
		var mask [4]byte
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return 0, err
		}
		if op >= 8 { // control frame
			if !fin || n > maxControlPayload {
				return 0, protocolError(nc, errWSProtocol)
			}
			var pb [maxControlPayload]byte
			p := pb[:n]
			if _, err := io.ReadFull(r, p); err != nil {
				return 0, err
			}
			unmask(p, mask, 0)
			switch op {
			case opPing:
				if err := writeControlFrame(nc, opPong, p); err != nil {
					return 0, err
				}
			case opPong:
			case opClose:
				if n == 1 {
					return 0, protocolError(nc, errWSProtocol)
				}
				_ = writeControlFrame(nc, opClose, p[:min(n, 2)])
				return 0, errWSClosed
			default:
				return 0, protocolError(nc, errWSProtocol)
			}
			continue
		}
		switch {
		case op == opContinuation && msgOp == 0,
			op != opContinuation && msgOp != 0,
			op != opContinuation && op != opText && op != opBinary:
			return 0, protocolError(nc, errWSProtocol)
		case op != opContinuation:
			msgOp = op
		}
		if n > uint64(limit-buf.Len()) {
			_ = writeControlFrame(nc, opClose, closePayload(closeTooBig))
			return 0, ErrPayloadTooLarge
		}
		buf.Grow(int(n))
		p := buf.AvailableBuffer()[:n]
		if _, err := io.ReadFull(r, p); err != nil {
			return 0, err
		}
		unmask(p, mask, 0)
		buf.Write(p)
		if fin {
			return msgOp, nil
		}
	}
}

// protocolError sends the close frame for a protocol error and returns err.
func protocolError(nc net.Conn, err error) error {
	_ = writeControlFrame(nc, opClose, closePayload(closeProtocolError))
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
