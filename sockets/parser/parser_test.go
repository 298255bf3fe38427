package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		in      string
		typ     Type
		nsp     string
		id      int64 // -1: none
		data    string
		wantAtt int
	}{
		{"0", Connect, "/", -1, "", 0},
		{`0{"token":"123"}`, Connect, "/", -1, `{"token":"123"}`, 0},
		{"0/custom,", Connect, "/custom", -1, "", 0},
		{"0/custom", Connect, "/custom", -1, "", 0},
		{`0/custom,{"token":"abc"}`, Connect, "/custom", -1, `{"token":"abc"}`, 0},
		{"1", Disconnect, "/", -1, "", 0},
		{"1/custom,", Disconnect, "/custom", -1, "", 0},
		{`2["message",1,"2",{"3":[true]}]`, Event, "/", -1, `["message",1,"2",{"3":[true]}]`, 0},
		{`2456["message-with-ack",1]`, Event, "/", 456, `["message-with-ack",1]`, 0},
		{`2/chat,12["a"]`, Event, "/chat", 12, `["a"]`, 0},
		{`2[1,2]`, Event, "/", -1, `[1,2]`, 0},
		{`3456[1,"2"]`, Ack, "/", 456, `[1,"2"]`, 0},
		{`4{"message":"x"}`, ConnectError, "/", -1, `{"message":"x"}`, 0},
		{`4"x"`, ConnectError, "/", -1, `"x"`, 0},
		{`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, BinaryEvent, "/", -1, `["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, 2},
		{`52-789["m",{"_placeholder":true,"num":0}]`, BinaryEvent, "/", 789, `["m",{"_placeholder":true,"num":0}]`, 2},
		{`61-/x,3[{"_placeholder":true,"num":0}]`, BinaryAck, "/x", 3, `[{"_placeholder":true,"num":0}]`, 1},
		{`510-["m"]`, BinaryEvent, "/", -1, `["m"]`, 10},
		{`2["é ☃"]`, Event, "/", -1, `["é ☃"]`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if p.Type != tt.typ || p.Nsp() != tt.nsp || string(p.Data) != tt.data || p.Wanted() != tt.wantAtt {
				t.Fatalf("got type %v nsp %q data %q wanted %d", p.Type, p.Nsp(), p.Data, p.Wanted())
			}
			if (tt.id >= 0) != p.HasID || (p.HasID && int64(p.ID) != tt.id) {
				t.Fatalf("id: got %d/%v want %d", p.ID, p.HasID, tt.id)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	tests := []string{
		"",
		"7",
		"9[]",
		"abc",
		"4abc",
		"42{}",  // ack-less event with "2{}": type 4 payload garbage
		"2{}",   // event payload not an array
		`2"x"`,  // event payload not an array
		"2[]",   // event without a name
		"2[{}]", // event name not a string
		`2["connect"]`,
		`2["disconnect",1]`,
		`2abc["message-with-ack",1]`, // garbage ack id
		`2["a"`,                      // truncated JSON
		`2["a"]x`,                    // trailing garbage
		`21234567890123456789["a"]`,  // ack id too large
		`29007199254740992["a"]`,     // ack id over 2^53-1
		`3["a"]`,                     // ack without id
		`3{}`,                        // ack not an array
		`0[]`,                        // connect payload not an object
		`0"x"`,
		`1{}`, // disconnect with payload
		`4`,   // connect error without payload
		`4[]`,
		`5["a"]`,   // binary without count
		`5x-["a"]`, // garbage count
		`511-["a"]`,
		`599999-["a"]`,
		"2[\"\xff\"]", // invalid UTF-8
		`2/chat`,      // event without payload
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			p, err := Decode([]byte(in))
			if err == nil {
				t.Fatalf("Decode(%q) = %+v, want error", in, p)
			}
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("error %v does not wrap ErrInvalidPacket", err)
			}
		})
	}
}

func TestDecoderAttachments(t *testing.T) {
	var d Decoder
	p, err := d.Add([]byte(`52-["message",{"_placeholder":true,"num":0},{"x":[{"_placeholder":true,"num":1}]}]`), false)
	if p != nil || err != nil || !d.Pending() {
		t.Fatalf("first frame: %v %v", p, err)
	}
	buf := []byte{1, 2, 3}
	if p, err = d.Add(buf, true); p != nil || err != nil {
		t.Fatalf("second frame: %v %v", p, err)
	}
	buf[0] = 9 // the decoder must have copied
	if p, err = d.Add([]byte{4, 5, 6}, true); err != nil || p == nil {
		t.Fatalf("third frame: %v %v", p, err)
	}
	if len(p.Attachments) != 2 || !bytes.Equal(p.Attachments[0], []byte{1, 2, 3}) || !bytes.Equal(p.Attachments[1], []byte{4, 5, 6}) {
		t.Fatalf("attachments %v", p.Attachments)
	}
	if d.Pending() {
		t.Fatal("still pending")
	}

	bad := []struct {
		name   string
		frames []any
		want   error
	}{
		{"binary without packet", []any{[]byte{1}}, ErrUnexpectedBinary},
		{"text while awaiting", []any{`51-["a",{"_placeholder":true,"num":0}]`, `2["b"]`}, ErrUnexpectedText},
		{"placeholder out of range", []any{`51-["a",{"_placeholder":true,"num":1}]`, []byte{1}}, ErrIllegalPlaceholder},
		{"placeholder negative", []any{`51-["a",{"_placeholder":true,"num":-1}]`, []byte{1}}, ErrIllegalPlaceholder},
		{"placeholder not a number", []any{`51-["a",{"_placeholder":true,"num":"0"}]`, []byte{1}}, ErrIllegalPlaceholder},
		{"placeholder fraction", []any{`51-["a",{"_placeholder":true,"num":0.5}]`, []byte{1}}, ErrIllegalPlaceholder},
		{"placeholder without attachments", []any{`50-["a",{"_placeholder":true,"num":0}]`}, ErrIllegalPlaceholder},
		{"too many", []any{`511-["a"]`}, ErrTooManyAttachments},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			var err error
			for _, f := range tt.frames {
				switch f := f.(type) {
				case string:
					_, err = d.Add([]byte(f), false)
				case []byte:
					_, err = d.Add(f, true)
				}
				if err != nil {
					break
				}
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		p    Packet
		want string
	}{
		{Packet{Type: Connect, Data: json.RawMessage(`{"sid":"abc"}`)}, `0{"sid":"abc"}`},
		{Packet{Type: Connect, Namespace: "/custom", Data: json.RawMessage(`{"sid":"abc"}`)}, `0/custom,{"sid":"abc"}`},
		{Packet{Type: Disconnect, Namespace: "/"}, `1`},
		{Packet{Type: Disconnect, Namespace: "/chat"}, `1/chat,`},
		{Packet{Type: Event, Data: json.RawMessage(`["a",1]`)}, `2["a",1]`},
		{Packet{Type: Event, ID: 12, HasID: true, Namespace: "/x", Data: json.RawMessage(`["a"]`)}, `2/x,12["a"]`},
		{Packet{Type: Ack, ID: 456, HasID: true, Data: json.RawMessage(`[1]`)}, `3456[1]`},
		{Packet{Type: ConnectError, Namespace: "/random", Data: json.RawMessage(`{"message":"Invalid namespace"}`)}, `4/random,{"message":"Invalid namespace"}`},
		{Packet{Type: Event, Data: json.RawMessage(`["m",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1}}}, `51-["m",{"_placeholder":true,"num":0}]`},
		{Packet{Type: Ack, ID: 789, HasID: true, Data: json.RawMessage(`[{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1}}}, `61-789[{"_placeholder":true,"num":0}]`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got, err := tt.p.Encode()
			if err != nil || string(got) != tt.want {
				t.Fatalf("Encode = %q, %v; want %q", got, err, tt.want)
			}
			// Round trip through the decoder.
			var d Decoder
			q, err := d.Add(got, false)
			for _, a := range tt.p.Attachments {
				q, err = d.Add(a, true)
			}
			if err != nil || q == nil {
				t.Fatalf("decode back: %v", err)
			}
			if q.Nsp() != tt.p.Nsp() || string(q.Data) != string(tt.p.Data) || q.HasID != tt.p.HasID || q.ID != tt.p.ID || len(q.Attachments) != len(tt.p.Attachments) {
				t.Fatalf("round trip: %+v", q)
			}
		})
	}
	p := Packet{Type: Event, Data: json.RawMessage(`["m"]`), Attachments: make([][]byte, 11)}
	if _, err := p.Encode(); !errors.Is(err, ErrTooManyAttachments) {
		t.Fatalf("11 attachments: err = %v", err)
	}
}

type inner struct {
	Name string `json:"name"`
	Blob []byte `json:"blob,omitempty"`
}

type outer struct {
	ID     int            `json:"id"`
	Items  []inner        `json:"items"`
	Extra  map[string]any `json:"extra"`
	Skip   string         `json:"-"`
	Ptr    *inner         `json:"ptr"`
	Hidden int
	inner
}

func TestMarshalArgs(t *testing.T) {
	tests := []struct {
		name string
		head any
		args []any
		want string
		atts [][]byte
	}{
		{"plain", "message", []any{1, "2", map[string]any{"3": []bool{true}}}, `["message",1,"2",{"3":[true]}]`, nil},
		{"no html escape", "m", []any{"<a & b>"}, `["m","<a & b>"]`, nil},
		{"raw kept", "m", []any{json.RawMessage(`1.50`), json.Number("1e3")}, `["m",1.50,1e3]`, nil},
		{"ack no head", nil, []any{1}, `[1]`, nil},
		{"ack empty", nil, nil, `[]`, nil},
		{"top binary", "m", []any{[]byte{1}, Binary{2}}, `["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, [][]byte{{1}, {2}}},
		{"nested binary", "m", []any{outer{
			ID:    1,
			Items: []inner{{Name: "a", Blob: []byte{1}}, {Name: "b"}},
			Extra: map[string]any{"z": []any{Binary{2}}, "a": "<"},
			Skip:  "x",
			Ptr:   &inner{Name: "p", Blob: []byte{3}},
			inner: inner{Name: "emb"},
		}},
			`["m",{"id":1,"items":[{"name":"a","blob":{"_placeholder":true,"num":0}},{"name":"b"}],"extra":{"a":"<","z":[{"_placeholder":true,"num":1}]},"ptr":{"name":"p","blob":{"_placeholder":true,"num":2}},"Hidden":0,"name":"emb"}]`,
			[][]byte{{1}, {2}, {3}}},
		{"nil slice", "m", []any{[]byte(nil)}, `["m",null]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, atts, err := MarshalArgs(tt.head, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != tt.want {
				t.Fatalf("got  %s\nwant %s", data, tt.want)
			}
			if len(atts) != len(tt.atts) {
				t.Fatalf("atts %v want %v", atts, tt.atts)
			}
			for i := range atts {
				if !bytes.Equal(atts[i], tt.atts[i]) {
					t.Fatalf("att %d = %v", i, atts[i])
				}
			}
		})
	}
	if _, _, err := MarshalArgs("m", make([]any, 11)...); err != nil {
		t.Fatalf("11 nulls: %v", err)
	}
	many := make([]any, 11)
	for i := range many {
		many[i] = []byte{byte(i)}
	}
	if _, _, err := MarshalArgs("m", many...); !errors.Is(err, ErrTooManyAttachments) {
		t.Fatalf("11 binaries: %v", err)
	}
}

func TestUnmarshal(t *testing.T) {
	atts := [][]byte{{1, 2}, {3}}
	var b []byte
	if err := Unmarshal(json.RawMessage(`{"_placeholder":true,"num":1}`), atts, &b); err != nil || !bytes.Equal(b, []byte{3}) {
		t.Fatalf("[]byte: %v %v", b, err)
	}
	var bin Binary
	if err := Unmarshal(json.RawMessage(`{"_placeholder":true,"num":0}`), atts, &bin); err != nil || !bytes.Equal(bin, []byte{1, 2}) {
		t.Fatalf("Binary: %v %v", bin, err)
	}
	var st struct {
		Items []inner `json:"items"`
	}
	if err := Unmarshal(json.RawMessage(`{"items":[{"name":"a","blob":{"_placeholder":true,"num":1}}]}`), atts, &st); err != nil || st.Items[0].Name != "a" || !bytes.Equal(st.Items[0].Blob, []byte{3}) {
		t.Fatalf("struct: %+v %v", st, err)
	}
	var v any
	if err := Unmarshal(json.RawMessage(`[{"_placeholder":true,"num":0}]`), atts, &v); err != nil {
		t.Fatal(err)
	}
	if arr, ok := v.([]any); !ok || !bytes.Equal(arr[0].(Binary), []byte{1, 2}) {
		t.Fatalf("any: %#v", v)
	}
	var raw json.RawMessage
	if err := Unmarshal(json.RawMessage(`{"a": 1}`), nil, &raw); err != nil || string(raw) != `{"a": 1}` {
		t.Fatalf("raw: %s %v", raw, err)
	}
	if err := Unmarshal(json.RawMessage(`[{"_placeholder":true,"num":5}]`), atts, &v); !errors.Is(err, ErrIllegalPlaceholder) {
		t.Fatalf("bad placeholder: %v", err)
	}
	tree, err := Tree([]byte(`[1.50,{"_placeholder":true,"num":0}]`), atts, true)
	if err != nil {
		t.Fatal(err)
	}
	data, got, err := MarshalArgs(nil, tree.([]any)...)
	if err != nil || string(data) != `[1.50,{"_placeholder":true,"num":0}]` || len(got) != 1 {
		t.Fatalf("tree round trip %s %v %v", data, got, err)
	}
}

func TestAppendArg(t *testing.T) {
	for _, tt := range []struct{ in, el, want string }{
		{`["a"]`, `"off"`, `["a","off"]`},
		{`[]`, `"off"`, `["off"]`},
		{`["a",{"b":[1]}]`, `"x"`, `["a",{"b":[1]},"x"]`},
	} {
		in := []byte(tt.in)
		if got := AppendArg(in, []byte(tt.el)); string(got) != tt.want || string(in) != tt.in {
			t.Errorf("AppendArg(%s) = %s", tt.in, got)
		}
	}
}

var fuzzSeeds = []string{
	"0", `0{"token":"123"}`, "0/custom,", `0/custom,{"token":"abc"}`, "1", "1/custom,",
	`2["message",1,"2",{"3":[true]}]`, `2456["message-with-ack",1,"2",{"3":[false]}]`,
	`3456[1,"2",{"3":[false]}]`, `4{"message":"Invalid namespace"}`,
	`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
	`52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
	`62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
	"4abc", "42{}", `42abc["message-with-ack",1,"2",{"3":[false]}]`, `2/chat,7["join","room1"]`,
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), []byte{1, 2, 3})
	}
	f.Fuzz(func(t *testing.T, text, bin []byte) {
		var d Decoder
		p, err := d.Add(text, false)
		if err != nil {
			return
		}
		for p == nil && d.Pending() {
			if p, err = d.Add(bin, true); err != nil {
				return
			}
		}
		if p == nil {
			t.Fatal("nil packet without error")
		}
		out, err := p.Encode()
		if err != nil {
			t.Fatalf("re-encode %q: %v", text, err)
		}
		var d2 Decoder
		q, err := d2.Add(out, false)
		for _, a := range p.Attachments {
			if err != nil {
				break
			}
			q, err = d2.Add(a, true)
		}
		if err != nil || q == nil {
			t.Fatalf("re-decode %q (from %q): %v", out, text, err)
		}
		want := p.Type
		if len(p.Attachments) == 0 && want == BinaryEvent {
			want = Event // a binary packet without attachments is re-encoded as a plain one
		} else if len(p.Attachments) == 0 && want == BinaryAck {
			want = Ack
		}
		if q.Type != want || q.Nsp() != p.Nsp() || q.ID != p.ID || q.HasID != p.HasID || !bytes.Equal(q.Data, p.Data) {
			t.Fatalf("round trip differs: %+v vs %+v", p, q)
		}
		if p.Type == Event || p.Type == BinaryEvent {
			args, err := SplitArray(p.Data)
			if err != nil || len(args) == 0 {
				t.Fatalf("valid event without args: %v", err)
			}
			for _, a := range args {
				var v any
				_ = Unmarshal(a, p.Attachments, &v)
			}
		}
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	type op struct {
		Doc string `json:"doc"`
		Rev int    `json:"rev"`
		Op  []any  `json:"op"`
	}
	v := op{Doc: "readme", Rev: 42, Op: []any{5, "hello", -3}}
	b.ReportAllocs()
	for b.Loop() {
		data, atts, err := MarshalArgs("doc:op", v)
		if err != nil {
			b.Fatal(err)
		}
		p := Packet{Type: Event, Data: data, Attachments: atts}
		if _, err := p.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeBinary(b *testing.B) {
	blob := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		data, atts, err := MarshalArgs("file", map[string]any{"name": "a", "data": blob})
		if err != nil {
			b.Fatal(err)
		}
		p := Packet{Type: Event, Data: data, Attachments: atts}
		if _, err := p.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	frame := []byte(`2/chat,17["doc:op",{"doc":"readme","rev":42,"op":[5,"hello",-3],"client":"c1","seq":9}]`)
	b.ReportAllocs()
	var d Decoder
	for b.Loop() {
		p, err := d.Add(frame, false)
		if err != nil || p == nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBinary(b *testing.B) {
	frame := []byte(`51-["file",{"name":"a","data":{"_placeholder":true,"num":0}}]`)
	blob := make([]byte, 1024)
	b.ReportAllocs()
	var d Decoder
	for b.Loop() {
		if _, err := d.Add(frame, false); err != nil {
			b.Fatal(err)
		}
		p, err := d.Add(blob, true)
		if err != nil || p == nil {
			b.Fatal(err)
		}
	}
}

type Embedded struct {
	E []byte `json:"e"`
}

type withPtr struct {
	*Embedded
	N int `json:"n,omitempty"`
}

func TestMarshalArgsEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		arg  any
		want string
		n    int
	}{
		{"int keys", map[int][]byte{2: {1}, 10: {2}}, `{"10":{"_placeholder":true,"num":0},"2":{"_placeholder":true,"num":1}}`, 2},
		{"nil embedded pointer", withPtr{}, `{}`, 0},
		{"embedded pointer", withPtr{Embedded: &Embedded{E: []byte{1}}, N: 3}, `{"e":{"_placeholder":true,"num":0},"n":3}`, 1},
		{"byte array", [2]byte{1, 2}, `[1,2]`, 0}, // an array of numbers, as encoding/json writes it
		{"nil map of binary", map[string][]byte(nil), `null`, 0},
		{"nil pointer", (*Embedded)(nil), `null`, 0},
		{"slice of any", []any{1, []byte{1}, nil}, `[1,{"_placeholder":true,"num":0},null]`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, atts, err := MarshalArgs(nil, tt.arg)
			if err != nil {
				t.Fatal(err)
			}
			if want := "[" + tt.want + "]"; string(data) != want || len(atts) != tt.n {
				t.Fatalf("got %s (%d attachments), want %s (%d)", data, len(atts), want, tt.n)
			}
		})
	}
	if _, _, err := MarshalArgs(nil, json.RawMessage(`{bad`)); err == nil {
		t.Fatal("invalid RawMessage accepted")
	}
	if _, _, err := MarshalArgs(nil, map[[2]int][]byte{{1, 2}: {1}}); err == nil {
		t.Fatal("unsupported map key accepted")
	}
	for typ := Connect; typ <= BinaryAck+1; typ++ {
		if typ.String() == "" {
			t.Fatal("empty type name")
		}
	}
}
