package ot

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string // want: normalized wire form
	}{
		{"empty array", `[]`, `[]`},
		{"whitespace", " \t\n[ 3 ,\r\n-2 , \"x\" ] \n", `[3,"x",-2]`},
		{"insert only", `["hello"]`, `["hello"]`},
		{"trailing retain dropped", `[3,"x",4]`, `[3,"x"]`},
		{"retain only is the no-op", `[10]`, `[]`},
		{"adjacent retains merged", `[1,2,"a"]`, `[3,"a"]`},
		{"adjacent deletes merged", `[-1,-2]`, `[-3]`},
		{"adjacent inserts merged", `["a","b",1,"c","d"]`, `["ab",1,"cd"]`},
		{"insert moved before delete", `[2,-3,"xy"]`, `[2,"xy",-3]`},
		{"inserts around a delete merged", `["a",-1,"b"]`, `["ab",-1]`},
		{"delete insert delete", `[-1,"a",-1]`, `["a",-2]`},
		{"max count", `[9007199254740991,"x"]`, `[9007199254740991,"x"]`},
		{"min count", `[-9007199254740991]`, `[-9007199254740991]`},
		{"utf8", `["héllo 中文 😀 👍🏽"]`, `["héllo 中文 😀 👍🏽"]`},
		{"escapes", `["\"\\\/\b\f\n\r\t"]`, `["\"\\/\u0008\u000c\n\r\t"]`},
		{"unicode escapes", `["\u00e9\u4e2D\u0000"]`, `["é中\u0000"]`},
		{"surrogate pair", `["\ud83d\ude00"]`, `["😀"]`},
		{"surrogate pair upper hex", `["\uD83D\uDE00!"]`, `["😀!"]`},
		{"line separators escaped on output", "[\"a\u2028b\u2029\"]", `["a\u2028b\u2029"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatalf("Parse(%s): %v", tc.in, err)
			}
			checkNormal(t, o)
			got, err := o.MarshalJSON()
			if err != nil || string(got) != tc.want {
				t.Fatalf("Marshal = %s, %v; want %s", got, err, tc.want)
			}
			if !json.Valid(got) {
				t.Fatalf("Marshal output %s is not valid JSON", got)
			}
			again, err := Parse(got)
			if err != nil || !again.Equal(o) {
				t.Fatalf("Parse(Marshal(op)) = %v, %v; want %v", again, err, o)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		tooLarge bool
		msg      string // substring of the error message
	}{
		{"empty input", ``, false, "expected a JSON array, found end of input"},
		{"null", `null`, false, "expected a JSON array"},
		{"object", `{"op":[1]}`, false, "expected a JSON array"},
		{"number", `5`, false, "expected a JSON array"},
		{"string", `"abc"`, false, "expected a JSON array"},
		{"unterminated array", `[1,2`, false, "expected ',' or ']'"},
		{"unterminated after comma", `[1,`, false, "unterminated array"},
		{"trailing comma", `[1,]`, false, "component 2: expected an integer or a string, found ']'"},
		{"leading comma", `[,1]`, false, "component 1: expected an integer or a string"},
		{"missing comma", `[1 2]`, false, "after component 1: expected ',' or ']'"},
		{"trailing data", `[1] x`, false, "unexpected data after the array"},
		{"two arrays", `[1][2]`, false, "unexpected data after the array"},
		{"zero", `[0]`, false, "zero count"},
		{"minus zero", `[-0]`, false, "zero count"},
		{"zero among others", `[1,0,"a"]`, false, "component 2: zero count"},
		{"fraction", `[1.0]`, false, "number 1.0 at byte 1 is not an integer"},
		{"fraction 1.5", `[1.5]`, false, "not an integer"},
		{"exponent", `[1e3]`, false, "number 1e3 at byte 1 is not an integer"},
		{"negative exponent", `[-1E+2]`, false, "not an integer"},
		{"leading zero", `[01]`, false, "leading zero"},
		{"plus sign", `[+1]`, false, "expected an integer or a string"},
		{"bare minus", `[-]`, false, "malformed number"},
		{"beyond 2^53", `[9007199254740992]`, false, "out of range"},
		{"beyond int64", `[99999999999999999999999]`, false, "out of range"},
		{"negative beyond", `[-9007199254740992]`, false, "out of range"},
		{"span overflow", `[9007199254740991,9007199254740991]`, true, "span exceeds"},
		{"empty string", `[1,""]`, false, "component 2: empty insert string"},
		{"true", `[true]`, false, "expected an integer or a string, found 't'"},
		{"null component", `[null]`, false, "expected an integer or a string"},
		{"nested array", `[[1]]`, false, "expected an integer or a string, found '['"},
		{"object component", `[{"a":1}]`, false, "expected an integer or a string"},
		{"unterminated string", `["abc`, false, "unterminated string"},
		{"raw newline in string", "[\"a\nb\"]", false, "control character 0xa"},
		{"raw tab in string", "[\"a\tb\"]", false, "control character 0x9"},
		{"invalid utf8 byte", "[\"a\xffb\"]", false, "invalid UTF-8 in string at byte 3"},
		{"truncated utf8", "[\"\xe4\xb8\"]", false, "invalid UTF-8"},
		{"overlong utf8", "[\"\xc0\xaf\"]", false, "invalid UTF-8"},
		{"utf8-encoded surrogate", "[\"\xed\xa0\x80\"]", false, "invalid UTF-8"},
		{"lone high surrogate", `["\ud800"]`, false, `lone surrogate escape \ud800`},
		{"lone low surrogate", `["\udc00"]`, false, `lone surrogate escape \udc00`},
		{"high then non-surrogate", `["\ud83d\u0041"]`, false, "lone surrogate"},
		{"high then text", `["\ud83dx"]`, false, "lone surrogate"},
		{"two highs", `["\ud83d\ud83d"]`, false, "lone surrogate"},
		{"bad escape", `["\x41"]`, false, `invalid escape \x`},
		{"short unicode escape", `["\u12"]`, false, "malformed \\u escape"},
		{"bad hex", `["\u12g4"]`, false, "malformed \\u escape"},
		{"invalid utf8 outside strings", "[1,\xff]", false, "expected an integer or a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("Parse(%q) accepted", tc.in)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			if errors.Is(err, ErrTooLarge) != tc.tooLarge {
				t.Errorf("error %v: errors.Is(ErrTooLarge) = %v, want %v", err, !tc.tooLarge, tc.tooLarge)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "ot: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	big := `["` + strings.Repeat("a", DefaultMaxBytes) + `"]`
	many := "[" + strings.TrimSuffix(strings.Repeat(`1,"a",`, DefaultMaxComponents/2+1), ",") + "]"
	for _, tc := range []struct {
		name    string
		in      string
		opts    ParseOptions
		wantErr string // "" means accepted
	}{
		{"default bytes", big, ParseOptions{}, "1048580 bytes, limit 1048576"},
		{"unlimited bytes", big, ParseOptions{MaxBytes: -1}, ""},
		{"raised bytes", big, ParseOptions{MaxBytes: 2 << 20}, ""},
		{"small bytes", `["abcdef"]`, ParseOptions{MaxBytes: 5}, "10 bytes, limit 5"},
		{"default components", many, ParseOptions{}, "more than 65536 components"},
		{"unlimited components", many, ParseOptions{MaxComponents: -1}, ""},
		{"few components", `[1,"a",-1]`, ParseOptions{MaxComponents: 2}, "more than 2 components"},
		{"exactly at the limit", `[1,"a",-1]`, ParseOptions{MaxComponents: 3}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLimit([]byte(tc.in), tc.opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrTooLarge and ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestParseAgreesWithEncodingJSON encodes random components with
// encoding/json (which escapes differently: \u003c, \u0026, ...) and checks
// Parse reads them as the Builder builds them, and that MarshalJSON output
// decodes with encoding/json to the same components.
func TestParseAgreesWithEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 2000 {
		raw := randRaw(r, r.IntN(50))
		vals := make([]any, len(raw))
		for j, c := range raw {
			if c.n != 0 {
				vals[j] = c.n
			} else {
				vals[j] = c.s
			}
		}
		data, err := json.Marshal(vals)
		if err != nil {
			t.Fatal(err)
		}
		o, err := Parse(data)
		if err != nil {
			t.Fatalf("case %d: Parse(%s): %v", i, data, err)
		}
		want := buildRaw(raw)
		if !o.Equal(want) {
			t.Fatalf("case %d: Parse(%s) = %v, want %v", i, data, o, want)
		}
		out, _ := o.MarshalJSON()
		var back []any
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("case %d: encoding/json rejects %s: %v", i, out, err)
		}
		if len(back) != o.NumComponents() {
			t.Fatalf("case %d: %s decodes to %d components, want %d", i, out, len(back), o.NumComponents())
		}
		for j, v := range back {
			c := o.c[j]
			switch v := v.(type) {
			case string:
				if c.k != insert || c.s != v {
					t.Fatalf("case %d: component %d decodes to %q, want %v", i, j, v, c)
				}
			case float64:
				if (c.k == retain && v != float64(c.n)) || (c.k == del && v != -float64(c.n)) || c.k == insert {
					t.Fatalf("case %d: component %d decodes to %v, want %v", i, j, v, c)
				}
			}
		}
	}
}

func TestOpUnmarshalJSONField(t *testing.T) {
	var msg struct {
		Rev int `json:"rev"`
		Op  Op  `json:"op"`
	}
	if err := json.Unmarshal([]byte(`{"rev":3,"op":[2,"x",-1]}`), &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Op.String() != `[2,"x",-1]` {
		t.Fatalf("op = %v", msg.Op)
	}
	err := json.Unmarshal([]byte(`{"rev":3,"op":[0]}`), &msg)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v does not match ErrInvalid", err)
	}
	// encoding/json would have replaced this invalid byte with U+FFFD;
	// Op's own parser sees the raw bytes.
	err = json.Unmarshal([]byte("{\"op\":[\"\xff\"]}"), &msg)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid UTF-8 inside a message: error %v", err)
	}
	out, err := json.Marshal(msg)
	if err != nil || string(out) != `{"rev":3,"op":[2,"x",-1]}` {
		t.Fatalf("json.Marshal = %s, %v", out, err)
	}
}
