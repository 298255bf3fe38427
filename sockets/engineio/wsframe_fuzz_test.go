package engineio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

// recordConn is the server's end of a connection for the frame reader: it
// keeps what the reader writes. Any other method panics (nil Conn).
type recordConn struct {
	net.Conn
	out bytes.Buffer
}

func (c *recordConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *recordConn) SetWriteDeadline(time.Time) error { return nil }

// readAll calls readWSMessage until it fails and returns the messages,
// what the reader wrote and the error.
func readAll(r *bufio.Reader, limit int) (msgs []wsMsg, out []byte, err error) {
	var nc recordConn
	var buf bytes.Buffer
	for {
		var op byte
		op, err = readWSMessage(r, &nc, &buf, limit)
		if err != nil {
			return msgs, nc.out.Bytes(), err
		}
		msgs = append(msgs, wsMsg{op, buf.String()})
	}
}

// serverCloseCodeOK reports whether the server may send code in a close
// frame: what it sends on its own (1000, 1002, 1007, 1009) and the client
// codes it echoes (RFC 6455 section 7.4 and the IANA registry).
func serverCloseCodeOK(code uint16) bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
}

// FuzzReadWSMessage feeds a whole client stream of frames to the reader,
// which is called until it fails. It must not panic; messages are text or
// binary within the limit, text is valid UTF-8; the server writes only
// pongs and at most one close frame, last, whose code matches the error
// (the echoed client code for a client close, none when the stream just
// ends). A stream read one byte at a time gives the same results.
func FuzzReadWSMessage(f *testing.F) {
	for _, c := range frameCases() {
		limit := c.limit
		if limit == 0 || limit > 0xffff {
			limit = 0xffff
		}
		f.Add(uint16(limit), c.in)
	}
	ping := clientFrame(true, opPing, []byte("hi"), testKey)
	f.Add(uint16(64), bytes.Join([][]byte{
		clientFrame(true, opText, []byte("40"), testKey),
		clientFrame(false, opText, []byte("451-[\"a\""), testKey),
		ping,
		clientFrame(true, opContinuation, []byte(",{\"_placeholder\":true,\"num\":0}]"), testKey),
		clientFrame(true, opBinary, []byte{1, 2, 3}, testKey),
		clientFrame(true, opText, []byte("2probe"), testKey),
		clientFrame(true, opClose, []byte{3, 0xe8}, testKey),
	}, nil))
	f.Add(uint16(0), []byte{0x81, 0xfe, 0x00, 0x10, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, limit16 uint16, in []byte) {
		limit := int(limit16)
		msgs, out, err := readAll(bufio.NewReader(bytes.NewReader(in)), limit)
		for i, m := range msgs {
			switch {
			case m.op != opText && m.op != opBinary:
				t.Fatalf("message %d: op %d", i, m.op)
			case len(m.data) > limit:
				t.Fatalf("message %d: %d bytes, over the limit %d", i, len(m.data), limit)
			case m.op == opText && !utf8.ValidString(m.data):
				t.Fatalf("message %d: text is not UTF-8: %q", i, m.data)
			}
		}
		var wantCode int // the close code the server must send; 0: an echo, -1: none
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			wantCode = -1
		case errors.Is(err, errWSClosed):
			wantCode = 0
		case errors.Is(err, errWSProtocol):
			wantCode = closeProtocolError
		case errors.Is(err, errWSInvalidUTF8):
			wantCode = closeInvalidData
		case errors.Is(err, ErrPayloadTooLarge):
			wantCode = closeTooBig
		default:
			t.Fatalf("unexpected error %v", err)
		}
		sawClose := false
		for rest := out; len(rest) > 0; {
			if sawClose {
				t.Fatalf("the server wrote %x after its close frame", rest)
			}
			if len(rest) < 2 || rest[1]&0x80 != 0 || int(rest[1]) > maxControlPayload || len(rest) < 2+int(rest[1]) {
				t.Fatalf("malformed server frame %x", rest)
			}
			op, payload := rest[0], rest[2:2+int(rest[1])]
			rest = rest[2+len(payload):]
			switch op {
			case 0x80 | opPong:
			case 0x80 | opClose:
				sawClose = true
				switch {
				case wantCode == -1:
					t.Fatalf("close frame %x after %v", payload, err)
				case len(payload) == 0 && wantCode == 0:
				case len(payload) != 2:
					t.Fatalf("close payload %x, want a status code alone", payload)
				case !serverCloseCodeOK(binary.BigEndian.Uint16(payload)):
					t.Fatalf("close code %d not allowed", binary.BigEndian.Uint16(payload))
				case wantCode != 0 && int(binary.BigEndian.Uint16(payload)) != wantCode:
					t.Fatalf("close code %d after %v, want %d", binary.BigEndian.Uint16(payload), err, wantCode)
				}
			default:
				t.Fatalf("server frame with opcode byte %#x", op)
			}
		}
		if wantCode != -1 && !sawClose {
			t.Fatalf("no close frame after %v", err)
		}
		// Short reads change nothing.
		msgs2, out2, err2 := readAll(bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(in)), 16), limit)
		if len(msgs2) != len(msgs) || !errors.Is(err2, err) || !bytes.Equal(out2, out) {
			t.Fatalf("read byte by byte: %d messages, %v, wrote %x; at once: %d messages, %v, wrote %x",
				len(msgs2), err2, out2, len(msgs), err, out)
		}
		for i := range msgs {
			if msgs2[i] != msgs[i] {
				t.Fatalf("message %d differs when read byte by byte", i)
			}
		}
	})
}
