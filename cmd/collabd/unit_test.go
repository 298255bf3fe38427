package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/ot"
)

func TestParseFlags(t *testing.T) {
	newFS := func() (*flag.FlagSet, *string, *int, *listFlag) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		addr := fs.String("addr", "def", "")
		n := fs.Int("max-doc-bytes", 1, "")
		var l listFlag
		fs.Var(&l, "edit", "")
		return fs, addr, n, &l
	}
	env := map[string]string{"COLLABD_ADDR": "from-env", "COLLABD_MAX_DOC_BYTES": "42"}
	getenv := func(k string) string { return env[k] }

	t.Run("env fills unset flags", func(t *testing.T) {
		fs, addr, n, _ := newFS()
		pos, err := parseFlags(fs, nil, nil, getenv)
		if err != nil || len(pos) != 0 || *addr != "from-env" || *n != 42 {
			t.Fatalf("pos %v err %v addr %q n %d", pos, err, *addr, *n)
		}
	})
	t.Run("flag wins over env", func(t *testing.T) {
		fs, addr, n, _ := newFS()
		if _, err := parseFlags(fs, []string{"--addr", "flag"}, nil, getenv); err != nil {
			t.Fatal(err)
		}
		if *addr != "flag" || *n != 42 {
			t.Fatalf("addr %q n %d", *addr, *n)
		}
	})
	t.Run("only listed env", func(t *testing.T) {
		fs, addr, n, _ := newFS()
		if _, err := parseFlags(fs, nil, []string{"addr"}, getenv); err != nil {
			t.Fatal(err)
		}
		if *addr != "from-env" || *n != 1 {
			t.Fatalf("addr %q n %d", *addr, *n)
		}
	})
	t.Run("interspersed positionals", func(t *testing.T) {
		fs, addr, _, l := newFS()
		pos, err := parseFlags(fs, []string{"doc", "--edit", "a,b", "1", "--addr=x", "--edit", "c", "--", "--not-a-flag"}, nil, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(pos, " ") != "doc 1 --not-a-flag" || *addr != "x" || l.String() != "a,b,c" {
			t.Fatalf("pos %q addr %q list %q", pos, *addr, l.String())
		}
	})
	t.Run("a flag overrides its alternative's env", func(t *testing.T) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		secret := fs.String("auth-secret", "", "")
		file := fs.String("auth-secret-file", "", "")
		if _, err := parseFlags(fs, []string{"--auth-secret-file", "f"}, nil, func(k string) string {
			return map[string]string{"COLLABD_AUTH_SECRET": "env-secret"}[k]
		}); err != nil {
			t.Fatal(err)
		}
		if *secret != "" || *file != "f" {
			t.Fatalf("secret %q file %q", *secret, *file)
		}
	})
	t.Run("bad env value names the variable", func(t *testing.T) {
		fs, _, _, _ := newFS()
		_, err := parseFlags(fs, nil, nil, func(k string) string {
			if k == "COLLABD_MAX_DOC_BYTES" {
				return "lots"
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "COLLABD_MAX_DOC_BYTES") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"addr": "COLLABD_ADDR", "max-doc-bytes": "COLLABD_MAX_DOC_BYTES", "auth-secret-file": "COLLABD_AUTH_SECRET_FILE"} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSlogBridge(t *testing.T) {
	var buf bytes.Buffer
	zl := zerolog.New(&buf).Level(zerolog.InfoLevel)
	lg := newSlog(zl).With("conn", "c1").WithGroup("req").With("id", 7)
	lg.Debug("hidden")
	lg.Info("hello", "n", 3, slog.Group("g", "b", true), "d", time.Second, "err", errors.New("boom"))
	lg.Error("bad")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines %q", lines)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"level": "info", "message": "hello", "conn": "c1", "req.id": 7.0, "req.n": 3.0, "req.g.b": true, "req.err": "boom"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, m[k], v, lines[0])
		}
	}
	if !strings.Contains(lines[1], `"level":"error"`) {
		t.Fatalf("error line %s", lines[1])
	}
	if newSlog(zl).Enabled(t.Context(), slog.LevelDebug) {
		t.Fatal("debug enabled at info level")
	}
}

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		ok            bool
	}{
		{"info", "json", true}, {"debug", "console", true}, {"warn", "", true}, {"error", "json", true},
		{"trace", "json", false}, {"", "json", false}, {"info", "xml", false},
	} {
		_, err := newLogger(io.Discard, tc.level, tc.format)
		if (err == nil) != tc.ok {
			t.Errorf("newLogger(%q, %q) = %v", tc.level, tc.format, err)
		}
	}
}

func TestDisplayAddrAndDefaultServer(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:80": "127.0.0.1:80", "0.0.0.0:80": "localhost:80", "[::]:80": "localhost:80", "[::1]:80": "[::1]:80"} {
		a, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := displayAddr(a); got != want {
			t.Errorf("displayAddr(%s) = %s, want %s", in, got, want)
		}
	}
	for addr, want := range map[string]string{"": "http://127.0.0.1:8080", ":9000": "http://127.0.0.1:9000", "0.0.0.0:1": "http://127.0.0.1:1", "example.org:80": "http://example.org:80"} {
		if got := defaultServer(func(string) string { return addr }); got != want {
			t.Errorf("defaultServer(%q) = %s, want %s", addr, got, want)
		}
	}
}

func TestFormatDiff(t *testing.T) {
	got := formatDiff([]ot.Diff{{Op: 0, Text: "a "}, {Op: -1, Text: "old"}, {Op: 1, Text: "new"}})
	if got != "a [-old-]{+new+}\n" {
		t.Fatalf("%q", got)
	}
	if formatDiff(nil) != "" {
		t.Fatal("empty diff not empty")
	}
}

func TestAuthenticate(t *testing.T) {
	a, err := auth.New([]byte("0123456789abcdef0123"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Mint(auth.Claims{User: "ann", Edit: []string{"team-*"}, View: []string{"pub"}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := authenticate(a, json.RawMessage(`{"token":"`+tok+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "ann" || id.Access("team-x") != session.AccessEdit || id.Access("pub") != session.AccessView || id.Access("x") != session.AccessNone {
		t.Fatalf("identity %+v", id)
	}
	for _, raw := range []string{"", "null", `"tok"`, `{}`, `{"token":"x.y.z"}`, `{"token":5}`} {
		if _, err := authenticate(a, json.RawMessage(raw)); err == nil {
			t.Errorf("auth %s accepted", raw)
		}
	}
}

func TestLineWriter(t *testing.T) {
	var buf bytes.Buffer
	w := lineWriter{zerolog.New(&buf)}
	if n, err := w.Write([]byte("http: accept error\n")); n != 19 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := strings.TrimSpace(buf.String()); got != `{"level":"warn","message":"http: accept error"}` {
		t.Fatalf("line %s", got)
	}
}
