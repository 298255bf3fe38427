package jsonx

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// valid reports what Scanner says of b as a whole JSON text.
func valid(b []byte) bool {
	s := Scanner{Data: b}
	s.SkipSpace()
	return s.Value() && s.AtEnd()
}

var scanSeeds = []string{
	``, ` `, `0`, `-0`, `01`, `1.`, `1.5e`, `1.5e+3`, `-1E-2`, `+1`, `true`, `tru`, `null `,
	`"a"`, `"\u00e9\ud800"`, `"\x"`, "\"\t\"", `"\/\b\f\n\r\t"`, `"\u12g4"`, "\"\xff\xfe\"",
	`[]`, `[1,]`, `[,1]`, `[1 2]`, `{}`, `{"a":1}`, `{"a" 1}`, `{"a":1,}`, `{1:2}`,
	`{"doc":"d","client":"c","seq":1,"rev":0,"op":[3,"x",-1]}`, "[\"doc:op\",{\"a\":[{}]}]", `[1] x`,
}

func TestScannerAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range scanSeeds {
		if got, want := valid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("%q: Scanner says %v, encoding/json %v", in, got, want)
		}
	}
}

func TestScannerDepth(t *testing.T) {
	for _, tc := range []struct {
		name  string
		max   int
		depth int
		ok    bool
	}{
		{"encoding/json's limit", 0, MaxDepth, true},
		{"one past it", 0, MaxDepth + 1, false},
		{"a caller's limit", 5, 5, true},
		{"one past a caller's limit", 5, 6, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Repeat("[", tc.depth) + strings.Repeat("]", tc.depth)
			s := Scanner{Data: []byte(in), MaxDepth: tc.max}
			if got := s.Value() && s.AtEnd(); got != tc.ok {
				t.Fatalf("depth %d: %v, want %v", tc.depth, got, tc.ok)
			}
			if tc.max == 0 && tc.ok != json.Valid([]byte(in)) {
				t.Fatalf("encoding/json disagrees at depth %d", tc.depth)
			}
		})
	}
}

func FuzzScanner(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := valid(b), json.Valid(b); got != want {
			t.Fatalf("%q: Scanner says %v, encoding/json %v", b, got, want)
		}
	})
}

// FuzzAppendString checks AppendString against encoding/json (without HTML
// escaping).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "c-\"q\"\\", "\x00\x1f\x7f", "\b\f\n\r\t", "Zoë 😀", "\u2028\u2029", "\xff\xfe", "<&>", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: %s, want %s", s, got, want)
		}
	})
}
