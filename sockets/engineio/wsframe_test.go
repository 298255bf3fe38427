package engineio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
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

// readServerFrame reads one unmasked server frame from the client's end.
func readServerFrame(t testing.TB, c net.Conn) (op byte, payload []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		t.Fatalf("reading a server frame: %v", err)
	}
	n := int(h[1] & 0x7f)
	if h[1]&0x80 != 0 || n > 125 {
		t.Fatalf("unexpected server frame header %x", h)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c, payload); err != nil {
		t.Fatal(err)
	}
	return h[0] & 0x0f, payload
}

func TestReadWSMessage(t *testing.T) {
	long := make([]byte, 70000)
	for i := range long {
		long[i] = byte(rand.IntN(256))
	}
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	tests := []struct {
		name    string
		in      []byte
		limit   int
		wantOp  byte
		want    []byte
		wantErr error
		reply   []byte // control frame the server must send: op, then payload
	}{
		{name: "text", in: clientFrame(true, opText, []byte("4hello"), testKey), wantOp: opText, want: []byte("4hello")},
		{name: "binary", in: clientFrame(true, opBinary, []byte{0, 1, 2, 255}, testKey), wantOp: opBinary, want: []byte{0, 1, 2, 255}},
		{name: "empty", in: clientFrame(true, opText, nil, testKey), wantOp: opText, want: []byte{}},
		{name: "16-bit length", in: clientFrame(true, opBinary, long[:300], testKey), wantOp: opBinary, want: long[:300]},
		{name: "64-bit length", in: clientFrame(true, opBinary, long, testKey), wantOp: opBinary, want: long},
		{name: "fragments with a ping between", in: cat(
			clientFrame(false, opText, []byte("4hel"), testKey),
			clientFrame(true, opPing, []byte("p!"), testKey),
			clientFrame(false, opContinuation, []byte("lo "), [4]byte{1, 2, 3, 4}),
			clientFrame(true, opContinuation, []byte("world"), testKey),
		), wantOp: opText, want: []byte("4hello world"), reply: append([]byte{opPong}, "p!"...)},
		{name: "pong ignored", in: cat(
			clientFrame(true, opPong, []byte("x"), testKey),
			clientFrame(true, opText, []byte("4a"), testKey),
		), wantOp: opText, want: []byte("4a")},
		{name: "close echoed", in: clientFrame(true, opClose, []byte{0x03, 0xe8, 'b', 'y', 'e'}, testKey),
			wantErr: errWSClosed, reply: []byte{opClose, 0x03, 0xe8}},
		{name: "close without status", in: clientFrame(true, opClose, nil, testKey),
			wantErr: errWSClosed, reply: []byte{opClose}},
		{name: "close with one byte", in: clientFrame(true, opClose, []byte{3}, testKey),
			wantErr: errWSProtocol, reply: []byte{opClose, 0x03, 0xea}},
		{name: "unmasked", in: []byte{0x81, 0x01, 'x'}, wantErr: errWSProtocol, reply: []byte{opClose, 0x03, 0xea}},
		{name: "reserved bit", in: func() []byte {
			f := clientFrame(true, opText, []byte("x"), testKey)
			f[0] |= 0x40
			return f
		}(), wantErr: errWSProtocol, reply: []byte{opClose, 0x03, 0xea}},
		{name: "unknown opcode", in: clientFrame(true, 3, []byte("x"), testKey), wantErr: errWSProtocol, reply: []byte{opClose, 0x03, 0xea}},
		{name: "unknown control opcode", in: clientFrame(true, 11, nil, testKey), wantErr: errWSProtocol, reply: []byte{opClose, 0x03, 0xea}},
		{name: "continuation first", in: clientFrame(true, opContinuation, []byte("x"), testKey), wantErr: errWSProtocol, reply: []byte{opClose, 0x03, 0xea}},
		{name: "new message inside a message", in: cat(
			clientFrame(false, opText, []byte("4a"), testKey),
			clientFrame(true, opText, []byte("4b"), testKey),
		), wantErr: errWSProtocol, reply: []byte{opClose, 0x03, 0xea}},
		{name: "fragmented control frame", in: clientFrame(false, opPing, nil, testKey), wantErr: errWSProtocol, reply: []byte{opClose, 0x03, 0xea}},
		{name: "control frame too long", in: clientFrame(true, opPing, make([]byte, 126), testKey), wantErr: errWSProtocol, reply: []byte{opClose, 0x03, 0xea}},
		{name: "over the limit", in: clientFrame(true, opText, []byte("4abcdefghij"), testKey), limit: 10,
			wantErr: ErrPayloadTooLarge, reply: []byte{opClose, 0x03, 0xf1}},
		{name: "fragments over the limit", in: cat(
			clientFrame(false, opText, []byte("4abcd"), testKey),
			clientFrame(true, opContinuation, []byte("efghij"), testKey),
		), limit: 10, wantErr: ErrPayloadTooLarge, reply: []byte{opClose, 0x03, 0xf1}},
		{name: "exactly the limit", in: clientFrame(true, opText, []byte("4abcdefghi"), testKey), limit: 10, wantOp: opText, want: []byte("4abcdefghi")},
		{name: "huge declared length", in: []byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4},
			wantErr: ErrPayloadTooLarge, reply: []byte{opClose, 0x03, 0xf1}},
		{name: "truncated header", in: []byte{0x81}, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated payload", in: clientFrame(true, opText, []byte("4hello"), testKey)[:8], wantErr: io.ErrUnexpectedEOF},
		{name: "nothing", in: nil, wantErr: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := tcpPair(t)
			limit := tt.limit
			if limit == 0 {
				limit = DefaultMaxPayload
			}
			var buf bytes.Buffer
			buf.WriteString("stale")
			op, err := readWSMessage(bufio.NewReader(bytes.NewReader(tt.in)), server, &buf, limit)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && (op != tt.wantOp || !bytes.Equal(buf.Bytes(), tt.want)) {
				t.Fatalf("got op %d %q, want op %d %q", op, buf.Bytes(), tt.wantOp, tt.want)
			}
			if tt.reply != nil {
				op, payload := readServerFrame(t, client)
				if op != tt.reply[0] || !bytes.Equal(payload, tt.reply[1:]) {
					t.Fatalf("server sent op %d %x, want op %d %x", op, payload, tt.reply[0], tt.reply[1:])
				}
			}
		})
	}
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

// FuzzReadWSMessage feeds arbitrary bytes to the frame reader: it must
// return a message or an error, never panic, never return more than the
// limit.
func FuzzReadWSMessage(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte("40"), testKey))
	f.Add(clientFrame(true, opText, []byte("2probe"), testKey))
	f.Add(clientFrame(true, opBinary, []byte{1, 2, 3}, testKey))
	f.Add(append(clientFrame(false, opText, []byte("451-[\"a\""), testKey), clientFrame(true, opContinuation, []byte(",{\"_placeholder\":true,\"num\":0}]"), testKey)...))
	f.Add(clientFrame(true, opPing, []byte("hi"), testKey))
	f.Add(clientFrame(true, opClose, []byte{3, 0xe8}, testKey))
	f.Add([]byte{0x81, 0xfe, 0x00, 0x10, 1, 2, 3, 4})
	server, client := tcpPair(f)
	go func() { _, _ = io.Copy(io.Discard, client) }()
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, in []byte) {
		var buf bytes.Buffer
		op, err := readWSMessage(bufio.NewReader(bytes.NewReader(in)), server, &buf, limit)
		if err != nil {
			return
		}
		if op != opText && op != opBinary {
			t.Fatalf("op %d", op)
		}
		if buf.Len() > limit {
			t.Fatalf("message of %d bytes over the limit", buf.Len())
		}
	})
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
