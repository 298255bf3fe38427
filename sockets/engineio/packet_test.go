package engineio

import (
	"bytes"
	"errors"
	"testing"
)

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Packet
		err  bool
	}{
		{name: "one text", body: "4hello", want: []Packet{{Type: '4', Data: []byte("hello")}}},
		{name: "empty message", body: "4", want: []Packet{{Type: '4', Data: []byte{}}}},
		{name: "several", body: "4test1\x1e4test2\x1e4test3", want: []Packet{
			{Type: '4', Data: []byte("test1")}, {Type: '4', Data: []byte("test2")}, {Type: '4', Data: []byte("test3")},
		}},
		{name: "text and binary", body: "4hello\x1ebAQIDBA==", want: []Packet{
			{Type: '4', Data: []byte("hello")}, {Type: '4', Data: []byte{1, 2, 3, 4}, Binary: true},
		}},
		{name: "empty binary", body: "b", want: []Packet{{Type: '4', Data: []byte{}, Binary: true}}},
		{name: "pong", body: "3", want: []Packet{{Type: '3', Data: []byte{}}}},
		{name: "close", body: "1", want: []Packet{{Type: '1', Data: []byte{}}}},
		{name: "utf8", body: "4héllo €𝄞", want: []Packet{{Type: '4', Data: []byte("héllo €𝄞")}}},
		{name: "separator inside base64 payload is a record boundary", body: "bAQ==\x1e4x", want: []Packet{
			{Type: '4', Data: []byte{1}, Binary: true}, {Type: '4', Data: []byte("x")},
		}},
		{name: "empty body", body: "", err: true},
		{name: "unknown type", body: "abc", err: true},
		{name: "type out of range", body: "7x", err: true},
		{name: "empty record", body: "4a\x1e\x1e4b", err: true},
		{name: "trailing separator", body: "4a\x1e", err: true},
		{name: "leading separator", body: "\x1e4a", err: true},
		{name: "bad base64", body: "b!!!", err: true},
		{name: "unpadded base64", body: "bAQ", err: true},
		{name: "invalid utf8", body: "4\xff\xfe", err: true},
		{name: "invalid utf8 in second", body: "4ok\x1e4\xc3", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePayload([]byte(tt.body))
			if tt.err {
				if !errors.Is(err, ErrParse) {
					t.Fatalf("DecodePayload(%q) = %v, %v; want ErrParse", tt.body, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodePayload(%q): %v", tt.body, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("DecodePayload(%q) = %d packets, want %d", tt.body, len(got), len(tt.want))
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Type != w.Type || g.Binary != w.Binary || !bytes.Equal(g.Data, w.Data) {
					t.Errorf("packet %d = {%c %q %v}, want {%c %q %v}", i, g.Type, g.Data, g.Binary, w.Type, w.Data, w.Binary)
				}
			}
		})
	}
}

func TestEncodePayload(t *testing.T) {
	tests := []struct {
		name string
		msgs []*Message
		want string
	}{
		{name: "text", msgs: []*Message{NewTextMessage([]byte("hello"))}, want: "4hello"},
		{name: "binary", msgs: []*Message{NewBinaryMessage([]byte{1, 2, 3, 4})}, want: "bAQIDBA=="},
		{name: "mixed", msgs: []*Message{
			NewTextMessage([]byte("hello")), NewBinaryMessage([]byte{1, 2, 3, 4}), msgPing,
		}, want: "4hello\x1ebAQIDBA==\x1e2"},
		{name: "control", msgs: []*Message{msgNoop}, want: "6"},
		{name: "close", msgs: []*Message{msgClose}, want: "1"},
		{name: "probe", msgs: []*Message{msgPongProbe}, want: "3probe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EncodePayload(tt.msgs)
			if string(got) != tt.want {
				t.Fatalf("EncodePayload = %q, want %q", got, tt.want)
			}
			// Encoding twice gives the same bytes (each form is cached).
			if again := EncodePayload(tt.msgs); string(again) != tt.want {
				t.Fatalf("second EncodePayload = %q", again)
			}
		})
	}
}

// TestRoundTrip checks that what the server encodes for polling decodes back
// to the same messages.
func TestRoundTrip(t *testing.T) {
	msgs := []*Message{
		NewTextMessage([]byte(`2["event",{"a":1}]`)),
		NewBinaryMessage([]byte{0, 0x1e, 0xff}),
		NewTextMessage([]byte("")),
		NewBinaryMessage(nil),
	}
	pkts, err := DecodePayload(EncodePayload(msgs))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != len(msgs) {
		t.Fatalf("got %d packets, want %d", len(pkts), len(msgs))
	}
	for i, p := range pkts {
		if p.Type != typeMessage || p.Binary != msgs[i].Binary() || !bytes.Equal(p.Data, msgs[i].Data()) {
			t.Errorf("packet %d = %+v, want %q binary=%v", i, p, msgs[i].Data(), msgs[i].Binary())
		}
	}
}

func TestWebSocketFrames(t *testing.T) {
	tests := []struct {
		name string
		msg  *Message
		head []byte
		n    int
	}{
		{"text", NewTextMessage([]byte("hi")), []byte{0x81, 3, '4'}, 3},
		{"binary", NewBinaryMessage([]byte{1, 2}), []byte{0x82, 2, 1}, 2},
		{"close packet", msgClose, []byte{0x81, 1, '1'}, 1},
		{"125", NewBinaryMessage(make([]byte, 125)), []byte{0x82, 125}, 125},
		{"126", NewBinaryMessage(make([]byte, 126)), []byte{0x82, 126, 0, 126}, 126},
		{"65535", NewBinaryMessage(make([]byte, 65535)), []byte{0x82, 126, 0xff, 0xff}, 65535},
		{"65536", NewBinaryMessage(make([]byte, 65536)), []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, 65536},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.msg.wsFrame()
			if !bytes.HasPrefix(f, tt.head) {
				t.Fatalf("frame starts % x, want % x", f[:min(len(f), 10)], tt.head)
			}
			hdr := 2
			switch f[1] {
			case 126:
				hdr = 4
			case 127:
				hdr = 10
			}
			if len(f)-hdr != tt.n {
				t.Errorf("payload %d bytes, want %d", len(f)-hdr, tt.n)
			}
			if g := tt.msg.wsFrame(); &g[0] != &f[0] {
				t.Error("frame built twice")
			}
		})
	}
	if !bytes.Equal(closeFrame, []byte{0x88, 2, 0x03, 0xe8}) {
		t.Errorf("close frame % x", closeFrame)
	}
}

// FuzzDecodePayload checks that the polling payload decoder never panics,
// and that whatever it accepts re-encodes to a payload that decodes to the
// same packets.
func FuzzDecodePayload(f *testing.F) {
	for _, seed := range []string{
		"4hello",
		"4test1\x1e4test2\x1e4test3",
		"4hello\x1ebAQIDBA==",
		"3",
		"1",
		"6",
		"2probe",
		"abc",
		"40",
		"40/custom,{\"token\":\"abc\"}",
		"42[\"message\",\"hello\"]\x1e451-[\"bin\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID",
		"42/chat,1[\"echo-ack\",{\"x\":1}]",
		"4\xff",
		"b",
		"\x1e",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pkts, err := DecodePayload(body)
		if err != nil {
			return
		}
		msgs := make([]*Message, len(pkts))
		for i, p := range pkts {
			switch {
			case p.Binary:
				msgs[i] = NewBinaryMessage(p.Data)
			default:
				msgs[i] = &Message{typ: p.Type, data: p.Data}
			}
		}
		again, err := DecodePayload(EncodePayload(msgs))
		if err != nil {
			t.Fatalf("re-encoded payload does not decode: %v", err)
		}
		if len(again) != len(pkts) {
			t.Fatalf("re-decoded %d packets, want %d", len(again), len(pkts))
		}
		for i := range again {
			if again[i].Type != pkts[i].Type || again[i].Binary != pkts[i].Binary || !bytes.Equal(again[i].Data, pkts[i].Data) {
				t.Fatalf("packet %d changed: %+v -> %+v", i, pkts[i], again[i])
			}
		}
	})
}

func BenchmarkDecodePayload(b *testing.B) {
	body := []byte("42[\"doc:op\",{\"doc\":\"a\",\"rev\":12,\"op\":[5,\"hello\",-2]}]\x1e3\x1ebAQIDBAUGBwgJCgsMDQ4P\x1e42[\"x\"]")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodePayload(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePayload(b *testing.B) {
	data := []byte("2[\"doc:op\",{\"doc\":\"a\",\"rev\":12,\"op\":[5,\"hello\",-2]}]")
	bin := bytes.Repeat([]byte{7}, 64)
	b.ReportAllocs()
	for b.Loop() {
		// Fresh messages: measures the one-time encoding, not the cache.
		msgs := []*Message{NewTextMessage(data), NewBinaryMessage(bin), NewTextMessage(data)}
		_ = EncodePayload(msgs)
	}
}
