package contract

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		code Code
		want int
	}{
		{CodeBadRequest, http.StatusBadRequest},
		{CodeUnauthorized, http.StatusUnauthorized},
		{CodeForbidden, http.StatusForbidden},
		{CodeNotFound, http.StatusNotFound},
		{CodeConflict, http.StatusConflict},
		{CodeTooLarge, http.StatusRequestEntityTooLarge},
		{CodeRateLimited, http.StatusTooManyRequests},
		{CodeInternal, http.StatusInternalServerError},
		{CodeGone, http.StatusGone},
		{"no_such_code", http.StatusInternalServerError},
		{"", http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			if got := tt.code.HTTPStatus(); got != tt.want {
				t.Fatalf("%q.HTTPStatus() = %d, want %d", tt.code, got, tt.want)
			}
		})
	}
}

func TestCodes(t *testing.T) {
	seen := map[Code]bool{}
	for _, c := range Codes() {
		if !regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`).MatchString(string(c)) {
			t.Errorf("code %q is not lower snake case", c)
		}
		if seen[c] {
			t.Errorf("code %q listed twice", c)
		}
		seen[c] = true
	}
	// The codes docs/protocol.md lists for acks, plus unauthorized.
	for _, c := range []Code{"bad_request", "not_found", "forbidden", "too_large", "rate_limited", "conflict", "internal", "unauthorized", "gone", "unavailable"} {
		if !seen[c] {
			t.Errorf("Codes() lacks %q", c)
		}
	}
	if len(seen) != 10 {
		t.Errorf("Codes() has %d codes, want 10", len(seen))
	}
}

func TestValidDocID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"", false},
		{"a", true},
		{"notes", true},
		{"Team-1.draft_2~x", true},
		{strings.Repeat("x", MaxDocIDLen), true},
		{strings.Repeat("x", MaxDocIDLen+1), false},
		{"a b", false},
		{"a/b", false},
		{"a\x00b", false},
		{"é", false},
		{"%41", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := ValidDocID(tt.id); got != tt.want {
				t.Fatalf("ValidDocID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

// TestDocIDRuleAgrees holds ValidDocID, DocIDChars, MaxDocIDLen and
// DocIDRule to one rule: every byte, in and out of DocIDChars.
func TestDocIDRuleAgrees(t *testing.T) {
	re := regexp.MustCompile(fmt.Sprintf(`^[%s]{1,%d}$`, DocIDChars, MaxDocIDLen))
	for b := 0; b < 256; b++ {
		for _, id := range []string{string([]byte{byte(b)}), "x" + string([]byte{byte(b)}) + "x"} {
			if got, want := ValidDocID(id), re.MatchString(id); got != want {
				t.Errorf("ValidDocID(%q) = %v, the class [%s] says %v", id, got, DocIDChars, want)
			}
		}
	}
	if ValidDocID("a\x00") {
		t.Error("a document id may contain the zero byte, which the store's keys rely on")
	}
	if want := fmt.Sprintf("1 to %d characters of %s", MaxDocIDLen, DocIDChars); DocIDRule != want {
		t.Errorf("DocIDRule = %q, want %q", DocIDRule, want)
	}
}

func TestMaxUserNameBytes(t *testing.T) {
	if name := strings.Repeat("😀", MaxUserNameRunes); len(name) > MaxUserNameBytes {
		t.Fatalf("a name of %d four-byte code points takes %d bytes, over MaxUserNameBytes %d", MaxUserNameRunes, len(name), MaxUserNameBytes)
	}
}

func TestValidVersionName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"v1.2", true},
		{"Sent to client", true},
		{"日本語 😀", true},
		{strings.Repeat("é", MaxVersionNameRunes), true},
		{strings.Repeat("é", MaxVersionNameRunes+1), false},
		{"", false},
		{"   ", false},
		{"a\x00b", false},
		{"tab\there", false},
		{"line\n", false},
		{"\xff", false},
	} {
		if got := ValidVersionName(tc.name); got != tc.ok {
			t.Errorf("ValidVersionName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}
