package engineio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op byte, payload []byte, key [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	f = append(f, key[:]...)
	for i, c := range payload {
		f = append(f, c^key[i&3])
	}
	return f
}

var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// tcpPair returns the two ends of a loopback TCP connection; both are
// closed at cleanup.
func tcpPair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		server.Close()
		client.Close()
	})
	return server, client
}

// maskedFrame builds a masked client frame from its first header bytes
// (the opcode byte, the length byte with the mask bit and any extended
// length, written as given, so that tests can encode lengths freely).
func maskedFrame(head []byte, payload []byte) []byte {
	f := append(append([]byte(nil), head...), testKey[:]...)
	for i, c := range payload {
		f = append(f, c^testKey[i&3])
	}
	return f
}

// closeMsg is the payload of a close frame: the status code, then reason.
func closeMsg(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// serverFrame is a frame the server writes: final, unmasked.
func serverFrame(op byte, payload []byte) []byte {
	return append([]byte{0x80 | op, byte(len(payload))}, payload...)
}

// serverClose is the close frame the server writes with code.
func serverClose(code uint16) []byte {
	return serverFrame(opClose, closeMsg(code, ""))
}

// wsMsg is a message readWSMessage returns.
type wsMsg struct {
	op   byte
	data string
}

// frameCase is a client stream and what readWSMessage makes of it.
type frameCase struct {
	name  string
	in    []byte // the client's bytes
	limit int    // 0: DefaultMaxPayload
	msgs  []wsMsg
	err   error  // the error of the call after msgs
	out   []byte // everything the server wrote, exactly
}

// Close codes a client may send (echoed) and must not send (protocol
// error), RFC 6455 section 7.4 and the IANA registry.
var (
	validCloseCodes   = []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}
	invalidCloseCodes = []uint16{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 0x8000, 0xffff}
)

// frameCases are the table of TestReadWSMessage and the seeds of
// FuzzReadWSMessage.
func frameCases() []frameCase {
	long := make([]byte, 70000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range long {
		long[i] = byte(rng.IntN(256))
	}
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	fr := func(fin bool, op byte, payload string) []byte { return clientFrame(fin, op, []byte(payload), testKey) }
	with := func(f []byte, edit func(f []byte)) []byte { edit(f); return f }
	protocolErr := serverClose(closeProtocolError)
	tooBig := serverClose(closeTooBig)
	badData := serverClose(closeInvalidData)
	pong := func(p string) []byte { return serverFrame(opPong, []byte(p)) }

	cases := []frameCase{
		// Data messages.
		{name: "text", in: fr(true, opText, "4hello"), msgs: []wsMsg{{opText, "4hello"}}, err: io.EOF},
		{name: "binary", in: fr(true, opBinary, "\x00\x01\x02\xff"), msgs: []wsMsg{{opBinary, "\x00\x01\x02\xff"}}, err: io.EOF},
		{name: "empty text", in: fr(true, opText, ""), msgs: []wsMsg{{opText, ""}}, err: io.EOF},
		{name: "empty binary", in: fr(true, opBinary, ""), msgs: []wsMsg{{opBinary, ""}}, err: io.EOF},
		{name: "utf-8 text", in: fr(true, opText, "4héllo €𝄞"), msgs: []wsMsg{{opText, "4héllo €𝄞"}}, err: io.EOF},
		{name: "binary with invalid utf-8", in: fr(true, opBinary, "\xff\xfe\xc3"), msgs: []wsMsg{{opBinary, "\xff\xfe\xc3"}}, err: io.EOF},
		{name: "16-bit length", in: clientFrame(true, opBinary, long[:300], testKey), msgs: []wsMsg{{opBinary, string(long[:300])}}, err: io.EOF},
		{name: "64-bit length", in: clientFrame(true, opBinary, long, testKey), msgs: []wsMsg{{opBinary, string(long)}}, err: io.EOF},
		{name: "two messages", in: cat(fr(true, opText, "4a"), fr(true, opBinary, "b")),
			msgs: []wsMsg{{opText, "4a"}, {opBinary, "b"}}, err: io.EOF},

		// Fragments.
		{name: "fragments with a ping between", in: cat(
			fr(false, opText, "4hel"),
			fr(true, opPing, "p!"),
			clientFrame(false, opContinuation, []byte("lo "), [4]byte{1, 2, 3, 4}),
			fr(true, opContinuation, "world"),
		), msgs: []wsMsg{{opText, "4hello world"}}, err: io.EOF, out: pong("p!")},
		{name: "fragments split a code point", in: cat(
			fr(false, opText, "4caf\xc3"),
			fr(true, opContinuation, "\xa9 ok"),
		), msgs: []wsMsg{{opText, "4café ok"}}, err: io.EOF},
		{name: "four-byte code point over three fragments and a ping", in: cat(
			fr(false, opText, "4\xf0\x9d"),
			fr(false, opContinuation, "\x84"),
			fr(true, opPing, "\xf0"),
			fr(true, opContinuation, "\x9e!"),
		), msgs: []wsMsg{{opText, "4𝄞!"}}, err: io.EOF, out: pong("\xf0")},
		{name: "binary fragments", in: cat(
			fr(false, opBinary, "\xff"),
			fr(false, opContinuation, ""),
			fr(true, opContinuation, "\xfe"),
		), msgs: []wsMsg{{opBinary, "\xff\xfe"}}, err: io.EOF},
		{name: "continuation first", in: fr(true, opContinuation, "x"), err: errWSProtocol, out: protocolErr},
		{name: "continuation after a whole message", in: cat(fr(true, opText, "4a"), fr(true, opContinuation, "b")),
			msgs: []wsMsg{{opText, "4a"}}, err: errWSProtocol, out: protocolErr},
		{name: "new message inside a message", in: cat(fr(false, opText, "4a"), fr(true, opText, "4b")),
			err: errWSProtocol, out: protocolErr},
		{name: "binary inside a text message", in: cat(fr(false, opText, "4a"), fr(true, opBinary, "b")),
			err: errWSProtocol, out: protocolErr},
		{name: "stream ends inside a message", in: fr(false, opText, "4a"), err: io.ErrUnexpectedEOF},

		// Control frames.
		{name: "ping", in: cat(fr(true, opPing, "hi"), fr(true, opText, "4a")),
			msgs: []wsMsg{{opText, "4a"}}, err: io.EOF, out: pong("hi")},
		{name: "empty ping", in: fr(true, opPing, ""), err: io.EOF, out: pong("")},
		{name: "ping of 125 bytes", in: fr(true, opPing, strings.Repeat("p", 125)), err: io.EOF, out: pong(strings.Repeat("p", 125))},
		{name: "pong ignored", in: cat(fr(true, opPong, "x"), fr(true, opText, "4a")),
			msgs: []wsMsg{{opText, "4a"}}, err: io.EOF},
		{name: "fragmented ping", in: fr(false, opPing, ""), err: errWSProtocol, out: protocolErr},
		{name: "fragmented close", in: clientFrame(false, opClose, closeMsg(1000, ""), testKey), err: errWSProtocol, out: protocolErr},
		{name: "ping of 126 bytes", in: fr(true, opPing, strings.Repeat("p", 126)), err: errWSProtocol, out: protocolErr},
		{name: "close of 126 bytes", in: clientFrame(true, opClose, closeMsg(1000, strings.Repeat("r", 124)), testKey),
			err: errWSProtocol, out: protocolErr},
		{name: "ping with a 64-bit length", in: maskedFrame([]byte{0x89, 0xff, 0, 0, 0, 0, 0, 0, 0x10, 0}, nil),
			err: errWSProtocol, out: protocolErr},
		{name: "pong then protocol error", in: cat(fr(true, opPing, "1"), []byte{0x81, 0x01, 'x'}),
			err: errWSProtocol, out: cat(pong("1"), protocolErr)},

		// Close frames.
		{name: "close without status", in: fr(true, opClose, ""), err: errWSClosed, out: serverFrame(opClose, nil)},
		{name: "close 1000 with a utf-8 reason", in: clientFrame(true, opClose, closeMsg(1000, "bye ☺ €𝄞"), testKey),
			err: errWSClosed, out: serverClose(1000)},
		{name: "close with a reason of 123 bytes", in: clientFrame(true, opClose, closeMsg(1001, strings.Repeat("r", 123)), testKey),
			err: errWSClosed, out: serverClose(1001)},
		{name: "close between fragments", in: cat(fr(false, opText, "4a"), clientFrame(true, opClose, closeMsg(1001, ""), testKey)),
			err: errWSClosed, out: serverClose(1001)},
		{name: "close after a ping", in: cat(fr(true, opPing, "z"), clientFrame(true, opClose, closeMsg(4000, "x"), testKey)),
			err: errWSClosed, out: cat(pong("z"), serverClose(4000))},
		{name: "frames after close unread", in: cat(clientFrame(true, opClose, closeMsg(1000, ""), testKey), fr(true, opPing, "p")),
			err: errWSClosed, out: serverClose(1000)},
		{name: "close with one byte", in: fr(true, opClose, "\x03"), err: errWSProtocol, out: protocolErr},
		{name: "close with invalid utf-8 reason", in: clientFrame(true, opClose, closeMsg(1000, "bye \xff"), testKey),
			err: errWSInvalidUTF8, out: badData},
		{name: "close with a truncated code point in the reason", in: clientFrame(true, opClose, closeMsg(1000, "\xe2\x82"), testKey),
			err: errWSInvalidUTF8, out: badData},
		{name: "close with a surrogate in the reason", in: clientFrame(true, opClose, closeMsg(1001, "\xed\xa0\x80"), testKey),
			err: errWSInvalidUTF8, out: badData},
		{name: "close with an invalid code and invalid utf-8", in: clientFrame(true, opClose, closeMsg(1005, "\xff"), testKey),
			err: errWSProtocol, out: protocolErr},

		// Header rules.
		{name: "unmasked", in: []byte{0x81, 0x01, 'x'}, err: errWSProtocol, out: protocolErr},
		{name: "unmasked close", in: []byte{0x88, 0x02, 0x03, 0xe8}, err: errWSProtocol, out: protocolErr},
		{name: "RSV1", in: with(fr(true, opText, "x"), func(f []byte) { f[0] |= 0x40 }), err: errWSProtocol, out: protocolErr},
		{name: "RSV2", in: with(fr(true, opText, "x"), func(f []byte) { f[0] |= 0x20 }), err: errWSProtocol, out: protocolErr},
		{name: "RSV3", in: with(fr(true, opBinary, "x"), func(f []byte) { f[0] |= 0x10 }), err: errWSProtocol, out: protocolErr},
		{name: "RSV1 on a ping", in: with(fr(true, opPing, "x"), func(f []byte) { f[0] |= 0x40 }), err: errWSProtocol, out: protocolErr},
		{name: "RSV1 on a continuation", in: cat(fr(false, opText, "4"), with(fr(true, opContinuation, "x"), func(f []byte) { f[0] |= 0x40 })),
			err: errWSProtocol, out: protocolErr},
		{name: "64-bit length with the top bit set", in: maskedFrame([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 5}, []byte("hello")),
			err: errWSProtocol, out: protocolErr},
		{name: "64-bit length all ones", in: maskedFrame([]byte{0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, nil),
			err: errWSProtocol, out: protocolErr},
		// Non-minimal length encodings are accepted (as gorilla, browsers'
		// peers and most servers do).
		{name: "non-minimal 16-bit length", in: maskedFrame([]byte{0x81, 0xfe, 0, 5}, []byte("4abcd")),
			msgs: []wsMsg{{opText, "4abcd"}}, err: io.EOF},
		{name: "non-minimal 64-bit length", in: maskedFrame([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 3}, []byte("abc")),
			msgs: []wsMsg{{opBinary, "abc"}}, err: io.EOF},
		{name: "non-minimal 64-bit length of 300", in: maskedFrame([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0x01, 0x2c}, long[:300]),
			msgs: []wsMsg{{opBinary, string(long[:300])}}, err: io.EOF},
		{name: "non-minimal length on a ping", in: maskedFrame([]byte{0x89, 0xfe, 0, 2}, []byte("hi")), err: io.EOF, out: pong("hi")},
		{name: "non-minimal length on a close", in: maskedFrame([]byte{0x88, 0xfe, 0, 2}, closeMsg(1000, "")), err: errWSClosed, out: serverClose(1000)},

		// Text must be UTF-8 (RFC 6455 section 8.1), checked on the whole message.
		{name: "invalid utf-8 text", in: fr(true, opText, "4\xff"), err: errWSInvalidUTF8, out: badData},
		{name: "overlong encoding", in: fr(true, opText, "4\xc0\xaf"), err: errWSInvalidUTF8, out: badData},
		{name: "surrogate half", in: fr(true, opText, "4\xed\xa0\x80"), err: errWSInvalidUTF8, out: badData},
		{name: "code point past U+10FFFF", in: fr(true, opText, "4\xf4\x90\x80\x80"), err: errWSInvalidUTF8, out: badData},
		{name: "text ending inside a code point", in: fr(true, opText, "4\xe2\x82"), err: errWSInvalidUTF8, out: badData},
		{name: "fragments ending inside a code point", in: cat(fr(false, opText, "4\xe2"), fr(true, opContinuation, "\x82")),
			err: errWSInvalidUTF8, out: badData},
		{name: "invalid utf-8 in a middle fragment", in: cat(fr(false, opText, "4a"), fr(false, opContinuation, "\xff"), fr(true, opContinuation, "b")),
			err: errWSInvalidUTF8, out: badData},
		{name: "good text then invalid text", in: cat(fr(true, opText, "4ok"), fr(true, opText, "4\x80")),
			msgs: []wsMsg{{opText, "4ok"}}, err: errWSInvalidUTF8, out: badData},

		// The limit.
		{name: "exactly the limit", in: fr(true, opText, "4abcdefghi"), limit: 10, msgs: []wsMsg{{opText, "4abcdefghi"}}, err: io.EOF},
		{name: "exactly the limit in fragments", in: cat(fr(false, opText, "4abc"), fr(true, opContinuation, "€")), limit: 7,
			msgs: []wsMsg{{opText, "4abc€"}}, err: io.EOF},
		{name: "over the limit", in: fr(true, opText, "4abcdefghij"), limit: 10, err: ErrPayloadTooLarge, out: tooBig},
		{name: "fragments over the limit", in: cat(fr(false, opText, "4abcd"), fr(true, opContinuation, "efghij")), limit: 10,
			err: ErrPayloadTooLarge, out: tooBig},
		{name: "64-bit message at the limit", in: clientFrame(true, opBinary, long, testKey), limit: len(long),
			msgs: []wsMsg{{opBinary, string(long)}}, err: io.EOF},
		{name: "64-bit message over the limit", in: clientFrame(true, opBinary, long, testKey), limit: len(long) - 1,
			err: ErrPayloadTooLarge, out: tooBig},
		{name: "huge declared length", in: maskedFrame([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, nil),
			err: ErrPayloadTooLarge, out: tooBig},

		// The stream ends.
		{name: "nothing", in: nil, err: io.EOF},
		{name: "truncated header", in: []byte{0x81}, err: io.ErrUnexpectedEOF},
		{name: "header alone", in: []byte{0x81, 0x81}, err: io.ErrUnexpectedEOF},
		{name: "truncated 16-bit length", in: []byte{0x81, 0xfe, 0x00}, err: io.ErrUnexpectedEOF},
		{name: "truncated 64-bit length", in: []byte{0x81, 0xff, 0, 0, 0}, err: io.ErrUnexpectedEOF},
		{name: "truncated mask", in: []byte{0x81, 0x81, 1, 2}, err: io.ErrUnexpectedEOF},
		{name: "truncated payload", in: fr(true, opText, "4hello")[:8], err: io.ErrUnexpectedEOF},
		{name: "truncated ping", in: fr(true, opPing, "hello")[:8], err: io.ErrUnexpectedEOF},
	}
	for _, op := range []byte{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		cases = append(cases,
			frameCase{name: fmt.Sprintf("opcode %d", op), in: fr(true, op, "x"), err: errWSProtocol, out: protocolErr},
			frameCase{name: fmt.Sprintf("opcode %d inside a message", op), in: cat(fr(false, opText, "4"), fr(true, op, "")),
				err: errWSProtocol, out: protocolErr})
	}
	for _, code := range validCloseCodes {
		cases = append(cases, frameCase{name: fmt.Sprintf("close %d echoed", code),
			in: clientFrame(true, opClose, closeMsg(code, "reason"), testKey), err: errWSClosed, out: serverClose(code)})
	}
	for _, code := range invalidCloseCodes {
		cases = append(cases, frameCase{name: fmt.Sprintf("close %d refused", code),
			in: clientFrame(true, opClose, closeMsg(code, ""), testKey), err: errWSProtocol, out: protocolErr})
	}
	return cases
}

// TestReadWSMessage feeds client streams to readWSMessage on a loopback
// TCP connection and checks the messages, the final error and every byte
// the server wrote back.
func TestReadWSMessage(t *testing.T) {
	for _, tt := range frameCases() {
		t.Run(tt.name, func(t *testing.T) {
			server, client := tcpPair(t)
			limit := tt.limit
			if limit == 0 {
				limit = DefaultMaxPayload
			}
			r := bufio.NewReader(bytes.NewReader(tt.in))
			var buf bytes.Buffer
			buf.WriteString("stale")
			for i, want := range tt.msgs {
				op, err := readWSMessage(r, server, &buf, limit)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if op != want.op || buf.String() != want.data {
					t.Fatalf("message %d: op %d %q, want op %d %q", i, op, abbrev(buf.Bytes()), want.op, abbrev([]byte(want.data)))
				}
			}
			if _, err := readWSMessage(r, server, &buf, limit); !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			server.Close()
			_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
			out, err := io.ReadAll(client)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, tt.out) {
				t.Fatalf("server wrote %x, want %x", out, tt.out)
			}
		})
	}
}

// abbrev shortens long messages in failures.
func abbrev(b []byte) []byte {
	if len(b) > 40 {
		return append(b[:40:40], "..."...)
	}
	return b
}

func TestUnmask(t *testing.T) {
	for n := range 40 {
		for pos := range 4 {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(i * 7)
			}
			unmask(p, testKey, pos)
			for i := range p {
				if want := byte(i*7) ^ testKey[(pos+i)&3]; p[i] != want {
					t.Fatalf("n %d pos %d: byte %d = %x, want %x", n, pos, i, p[i], want)
				}
			}
		}
	}
}

// TestNewTextMessageAt: a message built in place has the frames and the
// polling form of the same payload given to NewTextMessage, at every
// header size (7-bit, 16-bit and 64-bit lengths).
func TestNewTextMessageAt(t *testing.T) {
	for _, n := range []int{0, 1, 124, 125, 126, 127, 0xfffe, 0xffff, 0x10000, 0x10001} {
		payload := bytes.Repeat([]byte("é"), n/2)
		if n%2 == 1 {
			payload = append(payload, 'x')
		}
		buf := append(make([]byte, TextHeadroom), payload...)
		got, want := NewTextMessageAt(buf), NewTextMessage(payload)
		if !bytes.Equal(got.Data(), want.Data()) || got.Binary() || !got.user {
			t.Fatalf("%d bytes: data or kind differ", n)
		}
		if !bytes.Equal(got.wsFrame(), want.wsFrame()) {
			t.Fatalf("%d bytes: frame %x..., want %x...", n, got.wsFrame()[:min(12, len(got.wsFrame()))], want.wsFrame()[:min(12, len(want.wsFrame()))])
		}
		if !bytes.Equal(got.pollingForm(), want.pollingForm()) {
			t.Fatalf("%d bytes: polling form differs", n)
		}
	}
}
