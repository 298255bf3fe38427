package parser

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/collabd/collabd/internal/jsonx"
)

// splitArrayJSON is the reference: how SplitArray worked before the hand-written scanner.
func splitArrayJSON(data []byte) ([]json.RawMessage, bool) {
	var out []json.RawMessage
	if err := json.Unmarshal(data, &out); err != nil || out == nil {
		return nil, false
	}
	return out, true
}

// eventNameJSON is the reference event name of a string element.
func eventNameJSON(elem []byte) (string, bool) {
	var s string
	err := json.Unmarshal(elem, &s)
	return s, err == nil
}

// splitSeeds are payloads of real packets (collab doc:op, doc:join, acks, placeholders) and
// the corner cases where a JSON scanner usually goes wrong.
var splitSeeds = []string{
	`["doc:op",{"doc":"notes","client":"c-5f2a9e","seq":3,"rev":2,"op":[5,"x",-2]}]`,
	`["doc:op",{"doc":"load-0042","client":"load-42-3","seq":1187,"rev":4410,"op":[1203,"q"]}]`,
	`["doc:op",{"doc":"notes","client":"ann","seq":12,"rev":40,"op":["h\u00e9llo \ud83d\ude00",-1,7]}]`,
	`["doc:join",{"doc":"readme"}]`, `[{"ok":true,"rev":4411}]`, `[]`, ` [ ] `, "\t[\r\n1\n]\r\n",
	`["message",1,"2",{"3":[true]}]`, `["message",{"_placeholder":true,"num":0}]`,
	`[1,"2",{"3":[false]}]`, `[null,true,false,0,-0,1.5,-0.5E-3,1e5,1E+5,1e-5,123456789012345678901234567890]`,
	`["a\"b\\c\/d\b\f\n\r\t\u00e9\uD800\udfff"]`, `["\ud800"]`, `["\udc00x"]`, "[\"\xff\xfe\"]",
	"[\"\xed\xa0\x80\"]", "[\"\x7f\"]", "[\"a\x01\"]", "[\"a\tb\"]", `["\q"]`, `["\u12g4"]`, `["\u12"]`,
	`[01]`, `[1.]`, `[.5]`, `[-]`, `[+1]`, `[1e]`, `[1e+]`, `[0x1]`, `[-01]`, `[1.e5]`, `[Infinity]`, `[NaN]`,
	`[tru]`, `[truex]`, `[nul]`, `[True]`, `[1,]`, `[,1]`, `[1 2]`, `[1,,2]`, `[`, `]`, `[1`, `[1]]`, `[1] x`,
	`[{"a":1,}]`, `[{"a" 1}]`, `[{1:2}]`, `[{"a":1 "b":2}]`, `[{"a":}]`, `[{,}]`, `[{"a":1}`, `[{"a":[}]]`,
	`{}`, `{"a":[1]}`, `null`, `"x"`, `1`, `true`, ``, ` `, "\ufeff[]", "[\x00]", "[1]\x00", `[1]/**/`,
	`[{"doc":"notes","doc":"other"}]`, `["` + strings.Repeat("x", 300) + `"]`,
	strings.Repeat("[", 64) + strings.Repeat("]", 64), strings.Repeat("[", 64) + strings.Repeat("]", 63),
	`[{"a":{"b":{"c":[{"d":[]}]}}}]`,
}

// checkSplit fails t when splitArray and SplitArray disagree with encoding/json on data.
func checkSplit(t testing.TB, data []byte) {
	t.Helper()
	want, wantOK := splitArrayJSON(data)
	got, ok := splitArray(data)
	if ok != wantOK {
		t.Fatalf("splitArray(%q) ok=%v, encoding/json ok=%v", data, ok, wantOK)
	}
	in := bytes.Clone(data)
	pub, err := SplitArray(in)
	for i := range in {
		in[i] = 0 // SplitArray's elements must not alias its input
	}
	if (err == nil) != wantOK {
		t.Fatalf("SplitArray(%q) err=%v, encoding/json ok=%v", data, err, wantOK)
	}
	if !ok {
		return
	}
	if len(got) != len(want) || len(pub) != len(want) {
		t.Fatalf("splitArray(%q): %d and %d elements, encoding/json %d", data, len(got), len(pub), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) || !bytes.Equal(pub[i], want[i]) {
			t.Fatalf("splitArray(%q)[%d] = %q / %q, encoding/json %q", data, i, got[i], pub[i], want[i])
		}
	}
	if len(got) > 0 && got[0][0] == '"' {
		wantName, nameOK := eventNameJSON(got[0])
		name, err := eventName(got)
		if err != nil && !bytes.Contains([]byte(err.Error()), []byte("reserved")) {
			t.Fatalf("eventName(%q): %v", got[0], err)
		}
		if err == nil && (!nameOK || name != wantName) {
			t.Fatalf("eventName(%q) = %q, encoding/json %q (%v)", got[0], name, wantName, nameOK)
		}
	}
}

func TestSplitArrayMatchesEncodingJSON(t *testing.T) {
	for _, s := range splitSeeds {
		t.Run(s, func(t *testing.T) { checkSplit(t, []byte(s)) })
	}
}

func TestSplitArrayDepthLimit(t *testing.T) {
	tests := []struct {
		name  string
		depth int
		ok    bool
	}{
		{"at the limit", jsonx.MaxDepth, true},
		{"one past the limit", jsonx.MaxDepth + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, open := range []string{"[", `[{"a":`} {
				var b strings.Builder
				b.WriteString("[")
				closers := []string{"]"}
				for len(closers) < tt.depth {
					if open == "[" || len(closers)%2 == 0 {
						b.WriteString("[")
						closers = append(closers, "]")
					} else {
						b.WriteString(`{"a":`)
						closers = append(closers, "}")
					}
				}
				b.WriteString("1")
				for i := len(closers) - 1; i >= 0; i-- {
					b.WriteString(closers[i])
				}
				data := []byte(b.String())
				if _, ok := splitArray(data); ok != tt.ok {
					t.Fatalf("depth %d (%s): ok=%v, want %v", tt.depth, open, ok, tt.ok)
				}
				checkSplit(t, data)
			}
		})
	}
}

// FuzzSplitArray holds the hand-written scanner to encoding/json: same accept/reject decision,
// same element bytes, same event name.
func FuzzSplitArray(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add([]byte(s))
	}
	for _, s := range fuzzSeeds {
		if i := strings.IndexAny(s, "[{\""); i >= 0 {
			f.Add([]byte(s[i:]))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkSplit(t, data) })
}

func BenchmarkSplitArray(b *testing.B) {
	data := []byte(`["doc:op",{"doc":"load-0042","client":"load-42-3","seq":1187,"rev":4410,"op":[1203,"q"]}]`)
	b.Run("scanner", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := splitArray(data); !ok {
				b.Fatal("rejected")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := splitArrayJSON(data); !ok {
				b.Fatal("rejected")
			}
		}
	})
}
