package sioclient

import (
	"encoding/json"
	"testing"
)

func TestSplitEvent(t *testing.T) {
	tests := []struct {
		body, name, args string
		bad              bool
	}{
		{body: `["ping"]`, name: "ping", args: `[]`},
		{body: `["bench-msg",123,"xx"]`, name: "bench-msg", args: `[123,"xx"]`},
		{body: `["a\"b",{"k":[1,2]}]`, name: `a"b`, args: `[{"k":[1,2]}]`},
		{body: `[ "spaced" , 1 ]`, name: "spaced", args: `[ 1 ]`},
		{body: `["é",null]`, name: "é", args: `[null]`},
		{body: `{}`, bad: true},
		{body: `[]`, bad: true},
		{body: `[1,2]`, bad: true},
		{body: ``, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.body, func(t *testing.T) {
			name, args, err := splitEvent([]byte(tc.body))
			if tc.bad {
				if err == nil {
					t.Fatalf("splitEvent(%q) = %q, %q; want an error", tc.body, name, args)
				}
				return
			}
			if err != nil || name != tc.name || string(args) != tc.args {
				t.Fatalf("splitEvent(%q) = %q, %q, %v; want %q, %q", tc.body, name, args, err, tc.name, tc.args)
			}
		})
	}
}

// FuzzSplitEvent checks that whatever splitEvent accepts is a JSON array
// whose first element is the name and the rest are the arguments.
func FuzzSplitEvent(f *testing.F) {
	for _, s := range []string{`["ping"]`, `["bench-msg",123,"xx"]`, `["a\"b",{"k":[1,2]}]`, `[ "x" ]`, `["x",]`, `["x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		name, args, err := splitEvent(body)
		if err != nil {
			return
		}
		var full []json.RawMessage
		if json.Unmarshal(body, &full) != nil {
			return // the fast path does not validate; the reader trusts the server's JSON
		}
		var rest []json.RawMessage
		if err := json.Unmarshal(args, &rest); err != nil {
			t.Fatalf("args %q of valid body %q are not a JSON array: %v", args, body, err)
		}
		var n string
		if json.Unmarshal(full[0], &n) != nil || n != name || len(rest) != len(full)-1 {
			t.Fatalf("body %q: got name %q args %q", body, name, args)
		}
	})
}
