package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/collabd/collabd/internal/contract"
)

// frontendCopy is the committed module, relative to this package.
const frontendCopy = "../../../frontend/src/app/contract.js"

// check returns an error unless the file at path holds exactly what render
// writes.
func check(path string) error {
	have, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	want := render()
	if bytes.Equal(have, want) {
		return nil
	}
	hl, wl := strings.Split(string(have), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(hl), len(wl)); i++ {
		var h, w string
		if i < len(hl) {
			h = hl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if h != w {
			return fmt.Errorf("%s differs from package contract at line %d:\n  have %q\n  want %q\nrun `go generate ./internal/contract` and `npm run build` in frontend/", path, i+1, h, w)
		}
	}
	return fmt.Errorf("%s differs from package contract", path)
}

func TestFrontendCopyIsCurrent(t *testing.T) {
	if err := check(frontendCopy); err != nil {
		t.Fatal(err)
	}
}

// TestCheckFailsOnMismatch makes sure the test above would catch a stale
// or hand-edited copy.
func TestCheckFailsOnMismatch(t *testing.T) {
	good := string(render())
	tests := []struct {
		name string
		edit func(string) string
	}{
		{"limit changed", func(s string) string {
			return strings.Replace(s, fmt.Sprintf("MAX_HISTORY_LIMIT = %d;", contract.MaxHistoryLimit), "MAX_HISTORY_LIMIT = 1000;", 1)
		}},
		{"code changed", func(s string) string { return strings.Replace(s, "'rate_limited'", "'rate-limited'", 1) }},
		{"code missing", func(s string) string { return strings.Replace(s, "  INTERNAL: 'internal',\n", "", 1) }},
		{"line added", func(s string) string { return s + "export const EXTRA = 1;\n" }},
		{"newline lost", func(s string) string { return strings.TrimSuffix(s, "\n") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := tt.edit(good)
			if bad == good {
				t.Fatal("the edit changed nothing: the test is stale")
			}
			path := filepath.Join(t.TempDir(), "contract.js")
			if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := check(path); err == nil {
				t.Fatal("check accepted a copy that differs")
			}
		})
	}
	if err := check(filepath.Join(t.TempDir(), "missing.js")); err == nil {
		t.Fatal("check accepted a missing file")
	}
}

// TestDocIDPatternAgrees holds the escaped pattern the module carries to
// contract.ValidDocID.
func TestDocIDPatternAgrees(t *testing.T) {
	re := regexp.MustCompile("^" + docIDPattern() + "$")
	ids := []string{"", strings.Repeat("a", contract.MaxDocIDLen), strings.Repeat("a", contract.MaxDocIDLen+1), "a-b", "-", `\`}
	for b := 0; b < 256; b++ {
		ids = append(ids, string([]byte{byte(b)}))
	}
	for _, id := range ids {
		if got, want := re.MatchString(id), contract.ValidDocID(id); got != want {
			t.Errorf("pattern %s matches %q: %v, ValidDocID says %v", docIDPattern(), id, got, want)
		}
	}
}

func TestJSString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"bad_request", `'bad_request'`},
		{`[a\-]`, `'[a\\-]'`},
		{"it's", `'it\'s'`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := jsString(tt.in); got != tt.want {
				t.Fatalf("jsString(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
