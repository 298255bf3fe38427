package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/collabd/collabd/frontend"
	"github.com/collabd/collabd/internal/sioclient"
	"github.com/collabd/collabd/storage"
)

// binary is the collabd executable built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "collabd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "collabd")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building collabd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running collabd.
type proc struct {
	cmd    *exec.Cmd
	url    string // http://127.0.0.1:PORT/
	addr   string // 127.0.0.1:PORT
	data   string
	mu     sync.Mutex // guards stderr
	stderr strings.Builder
	done   chan struct{} // closed when the process exited
	err    error         // Wait's result, set before done closes
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type lockedWriter struct{ p *proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

// start runs collabd serve on port 0 with data (a new temp dir when "")
// and waits for its URL line.
func start(tb testing.TB, data string, env []string, args ...string) *proc {
	tb.Helper()
	if data == "" {
		data = filepath.Join(tb.TempDir(), "data")
	}
	p := &proc{data: data, done: make(chan struct{})}
	p.cmd = exec.Command(binary, append([]string{"--addr", "127.0.0.1:0", "--data", data, "--log-format", "json"}, args...)...)
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stderr = lockedWriter{p}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, out)
	}()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if tb.Failed() {
			tb.Logf("collabd stderr:\n%s", p.logs())
		}
	})
	select {
	case line, ok := <-lines:
		if !ok || !strings.HasPrefix(line, "collabd listening on http://") || !strings.HasSuffix(line, "/") {
			<-p.done
			tb.Fatalf("first stdout line %q; stderr:\n%s", line, p.logs())
		}
		p.url = strings.TrimPrefix(line, "collabd listening on ")
		p.addr = strings.TrimSuffix(strings.TrimPrefix(p.url, "http://"), "/")
	case <-time.After(30 * time.Second):
		tb.Fatalf("no URL line; stderr:\n%s", p.logs())
	}
	return p
}

// cleanEnv is the test's environment without COLLABD_ variables. A race
// build's exit is not delayed (the race runtime sleeps a second by default)
// and a race makes it exit with status 66.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return append(env, "GORACE=atexit_sleep_ms=0 exitcode=66")
}

// stop sends sig and waits for the exit; it returns the exit code.
func (p *proc) stop(tb testing.TB, sig os.Signal) int {
	tb.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		tb.Fatal(err)
	}
	return p.wait(tb)
}

// wait waits for the exit and returns the exit code (minus the signal
// number when a signal killed it).
func (p *proc) wait(tb testing.TB) int {
	tb.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		tb.Fatal("collabd did not exit")
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if p.err != nil {
		tb.Fatal(p.err)
	}
	return 0
}

// collabd runs a subcommand to completion.
func collabd(tb testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	tb.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		tb.Fatal(err)
	}
	return o.String(), e.String(), code
}

func httpDo(tb testing.TB, method, url, body string, hdr ...string) (int, string, http.Header) {
	tb.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return res.StatusCode, string(b), res.Header
}

func putDoc(tb testing.TB, p *proc, doc, text string, ifMatch uint64) uint64 {
	tb.Helper()
	code, body, _ := httpDo(tb, "PUT", p.url+"api/docs/"+doc, text, "If-Match", fmt.Sprint(ifMatch))
	if code != 200 {
		tb.Fatalf("PUT %s: %d %s", doc, code, body)
	}
	var v struct{ Rev uint64 }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		tb.Fatal(err)
	}
	return v.Rev
}

func getDoc(tb testing.TB, p *proc, doc string) (uint64, string) {
	tb.Helper()
	code, body, _ := httpDo(tb, "GET", p.url+"api/docs/"+doc, "")
	if code != 200 {
		tb.Fatalf("GET %s: %d %s", doc, code, body)
	}
	var v struct {
		Rev  uint64
		Text string
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		tb.Fatal(err)
	}
	return v.Rev, v.Text
}

// metricValue returns the value of the unlabelled sample name in a
// Prometheus text exposition.
func metricValue(tb testing.TB, exposition, name string) float64 {
	tb.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	tb.Fatalf("no sample %s", name)
	return 0
}

func TestServesEditorHealthAndMetrics(t *testing.T) {
	p := start(t, "", nil)
	for _, tc := range []struct {
		path, ctype, contains string
		status                int
	}{
		{"healthz", "text/plain", "ok", 200},
		{"readyz", "text/plain", "ready", 200},
		{"", "text/html", "<html", 200},
		{"d/x", "text/html", "<html", 200},
		{"index.html", "text/html", "<html", 200},
		{"d/notes.2026~v1", "text/html", "<html", 200},
		{"d/bad%20id", "", "", 404},
		{"d/", "", "", 404},
		{"d/a/b", "", "", 404},
		{"app.js", "javascript", "", 200},
		{"app.css", "text/css", "", 200},
		{"nope.txt", "", "", 404},
		{"metrics", "text/plain; version=0.0.4", "collabd_connections 0", 200},
		{"api/docs", "application/json", `{"docs":[]}`, 200},
	} {
		t.Run("/"+tc.path, func(t *testing.T) {
			code, body, hdr := httpDo(t, "GET", p.url+tc.path, "")
			if code != tc.status || !strings.Contains(hdr.Get("Content-Type"), tc.ctype) || !strings.Contains(body, tc.contains) {
				t.Fatalf("%d %q %.200q", code, hdr.Get("Content-Type"), body)
			}
			if code == 200 && hdr.Get("Cache-Control") == "" {
				t.Fatal("no Cache-Control")
			}
		})
	}
	_, metrics, _ := httpDo(t, "GET", p.url+"metrics", "")
	for _, name := range []string{
		"collabd_connections", "collabd_sockets", "collabd_documents_live", "collabd_document_members",
		"collabd_ops_committed_total", "collabd_commits_total", "collabd_commit_seconds_bucket",
		"collabd_broadcast_dropped_total", "collabd_slow_clients_closed_total", "collabd_errors_total",
		"go_goroutines", "go_memstats_heap_alloc_bytes",
	} {
		if !strings.Contains(metrics, "\n"+name) {
			t.Errorf("metrics lack %s", name)
		}
	}
	// A write goes through the journal, and a checkpoint is counted at
	// the latest when a read of the document needs it.
	putDoc(t, p, "metered", "hello", 0)
	if code, body, _ := httpDo(t, "GET", p.url+"api/docs/metered/history", ""); code != 200 {
		t.Fatalf("history: %d %s", code, body)
	}
	_, metrics, _ = httpDo(t, "GET", p.url+"metrics", "")
	for _, name := range []string{"collabd_journal_bytes_total", "collabd_checkpoints_total", "collabd_commits_total"} {
		if v := metricValue(t, metrics, name); v <= 0 {
			t.Errorf("%s = %v after a write and a read, want > 0", name, v)
		}
	}
	if v := metricValue(t, metrics, "collabd_journal_poisoned"); v != 0 {
		t.Errorf("collabd_journal_poisoned = %v", v)
	}
	if code, _, hdr := httpDo(t, "POST", p.url+"d/x", "x"); code != 405 || hdr.Get("Allow") == "" {
		t.Fatalf("POST to the editor: %d", code)
	}
	// A second server on the same data directory is refused.
	_, stderr, code := collabd(t, nil, "--addr", "127.0.0.1:0", "--data", p.data)
	if code != 1 || !strings.Contains(stderr, "locked") {
		t.Fatalf("second server on the same data: exit %d, %q", code, stderr)
	}
	// An ETag revalidation of the page.
	_, _, hdr := httpDo(t, "GET", p.url, "")
	if code, _, _ := httpDo(t, "GET", p.url, "", "If-None-Match", hdr.Get("ETag")); code != 304 {
		t.Fatalf("revalidation: %d", code)
	}
	// The bundle's files are served whole, and in ranges, from the binary.
	for _, name := range []string{"index.html", "app.js", "editor.js", "app.css", "sw.js"} {
		want, err := fs.ReadFile(frontend.FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		if code, body, _ := httpDo(t, "GET", p.url+name, ""); code != 200 || body != string(want) {
			t.Fatalf("%s: %d, %d bytes, want the %d bytes embedded", name, code, len(body), len(want))
		}
		code, body, _ := httpDo(t, "GET", p.url+name, "", "Range", "bytes=10-19")
		if code != 206 || body != string(want[10:20]) {
			t.Fatalf("%s bytes 10-19: %d %q, want %q", name, code, body, want[10:20])
		}
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	data := filepath.Join(t.TempDir(), "envdata")
	// COLLABD_DATA is overridden by --data (start passes it); the other
	// variables apply.
	p := start(t, data, []string{"COLLABD_DATA=" + filepath.Join(t.TempDir(), "ignored"), "COLLABD_LOG_LEVEL=debug", "COLLABD_MAX_DOC_BYTES=10"})
	if _, err := os.Stat(filepath.Join(data, dbFile)); err != nil {
		t.Fatalf("--data not used: %v", err)
	}
	if code, body, _ := httpDo(t, "PUT", p.url+"api/docs/x", "more than ten bytes", "If-Match", "0"); code != 413 {
		t.Fatalf("COLLABD_MAX_DOC_BYTES not applied: %d %s", code, body)
	}
	p.stop(t, syscall.SIGTERM)
	if !strings.Contains(p.logs(), `"level":"debug"`) {
		t.Fatalf("COLLABD_LOG_LEVEL=debug not applied:\n%s", p.logs())
	}

	// The address from the environment alone.
	cmd := exec.Command(binary, "--data", t.TempDir())
	cmd.Env = append(cleanEnv(), "COLLABD_ADDR=127.0.0.1:0")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil || !strings.HasPrefix(line, "collabd listening on http://127.0.0.1:") {
		t.Fatalf("COLLABD_ADDR: line %q, exit %v", line, err)
	}

	// Bad values are refused before anything starts.
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"COLLABD_MAX_PAYLOAD=lots"}, nil, "COLLABD_MAX_PAYLOAD"},
		{nil, []string{"--log-level", "loud"}, "--log-level"},
		{nil, []string{"--auth-secret", "short"}, "secret"},
		{nil, []string{"--no-such-flag"}, "no-such-flag"},
		{nil, []string{"--checkpoint-interval", "0s"}, "--checkpoint-interval"},
		{[]string{"COLLABD_CHECKPOINT_BYTES=100"}, nil, "--checkpoint-bytes"},
		{[]string{"COLLABD_WRITE_QUEUE_BYTES=4096"}, nil, "--write-queue-bytes"},
		{nil, []string{"--write-queue-bytes", "-1"}, "--write-queue-bytes"},
	} {
		_, stderr, code := collabd(t, tc.env, append([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir()}, tc.args...)...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q", tc.env, tc.args, code, stderr)
		}
	}
}

// TestCheckpointFlags: --checkpoint-interval and --checkpoint-bytes decide
// when journal frames are copied into bbolt.
func TestCheckpointFlags(t *testing.T) {
	scrape := func(p *proc) (checkpoints, pending float64) {
		t.Helper()
		code, body, _ := httpDo(t, "GET", p.url+"metrics", "")
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		return metricValue(t, body, "collabd_checkpoints_total"), metricValue(t, body, "collabd_journal_pending_frames")
	}
	// Neither threshold is reached: the frame waits in the journal, also
	// past the default interval (1 s).
	lazy := start(t, "", nil, "--checkpoint-interval", "1h", "--checkpoint-bytes", "100000000")
	putDoc(t, lazy, "a", strings.Repeat("x", 5000), 0)
	time.Sleep(1500 * time.Millisecond)
	if c, p := scrape(lazy); c != 0 || p < 1 {
		t.Fatalf("with an hour and 100 MB: %v checkpoints, %v pending frames", c, p)
	}
	// The byte threshold (from the environment) starts one; with an hour
	// and the default 4 MiB none would run.
	eager := start(t, "", []string{"COLLABD_CHECKPOINT_BYTES=4096"}, "--checkpoint-interval", "1h")
	putDoc(t, eager, "a", strings.Repeat("x", 5000), 0)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, p := scrape(eager)
		if c >= 1 && p == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with 4096 bytes: %v checkpoints, %v pending frames after 10 s", c, p)
		}
	}
}

// TestSIGTERMCommitsAndRestart: a graceful stop closes sockets with "server
// shutting down", exits 0, and a restart serves every acknowledged edit.
func TestSIGTERMCommitsAndRestart(t *testing.T) {
	p := start(t, "", nil)
	rev := putDoc(t, p, "keep", "one", 0)
	c, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: p.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack := call(t, c, "doc:join", map[string]any{"doc": "keep", "client": "cli-1"})
	if ack["ok"] != true || ack["text"] != "one" {
		t.Fatalf("join ack %v", ack)
	}
	ack = call(t, c, "doc:op", map[string]any{"doc": "keep", "client": "cli-1", "seq": 1, "rev": rev, "op": []any{3, " two"}})
	if ack["ok"] != true {
		t.Fatalf("op ack %v", ack)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("socket still open after shutdown")
	}
	if _, err := os.Stat(filepath.Join(p.data, urlFile)); !os.IsNotExist(err) {
		t.Fatalf("%s left behind: %v", urlFile, err)
	}
	for _, want := range []string{"shutting down", "stopped"} {
		if !strings.Contains(p.logs(), want) {
			t.Fatalf("log lacks %q", want)
		}
	}
	q := start(t, p.data, nil)
	if rev, text := getDoc(t, q, "keep"); rev != 2 || text != "one two" {
		t.Fatalf("after restart: %d %q", rev, text)
	}
	if code := q.stop(t, os.Interrupt); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
}

// TestStopDuringPUTsKeepsAcked stops the server (SIGTERM: gracefully, exit
// 0; SIGKILL: at once) while PUTs are in flight: every acknowledged PUT is
// in the data after a restart, and the file passes the store's check.
func TestStopDuringPUTsKeepsAcked(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		exit int
	}{
		{syscall.SIGTERM, 0},
		{syscall.SIGKILL, -int(syscall.SIGKILL)},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) { stopDuringPUTs(t, tc.sig, tc.exit) })
	}
}

func stopDuringPUTs(t *testing.T, sig syscall.Signal, exit int) {
	p := start(t, "", nil)
	type acked struct {
		rev  uint64
		text string
	}
	var (
		mu   sync.Mutex
		last acked
	)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		text, rev := "", uint64(0)
		for i := 0; i < 10000; i++ {
			next := text + fmt.Sprintf("line %d\n", i)
			req, _ := http.NewRequest("PUT", p.url+"api/docs/k9", strings.NewReader(next))
			req.Header.Set("If-Match", fmt.Sprint(rev))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return // killed
			}
			var v struct{ Rev uint64 }
			err = json.NewDecoder(res.Body).Decode(&v)
			res.Body.Close()
			if err != nil || res.StatusCode != 200 {
				return
			}
			text, rev = next, v.Rev
			mu.Lock()
			last = acked{rev, text}
			mu.Unlock()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := last.rev
		mu.Unlock()
		if n >= 30 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code := p.stop(t, sig); code != exit {
		t.Fatalf("exit %d after %v, want %d", code, sig, exit)
	}
	<-stopped
	mu.Lock()
	want := last
	mu.Unlock()
	if want.rev < 30 {
		t.Fatalf("only %d PUTs acknowledged in 10 s", want.rev)
	}
	q := start(t, p.data, nil)
	rev, text := getDoc(t, q, "k9")
	if rev < want.rev || !strings.HasPrefix(text, want.text) {
		t.Fatalf("after %v: rev %d (acked %d), text is %d bytes, acked %d", sig, rev, want.rev, len(text), len(want.text))
	}
	code, body, _ := httpDo(t, "GET", fmt.Sprintf("%sapi/docs/k9/revisions/%d", q.url, want.rev), "")
	var v struct{ Text string }
	if code != 200 || json.Unmarshal([]byte(body), &v) != nil || v.Text != want.text {
		t.Fatalf("revision %d after restart: %d, text mismatch", want.rev, code)
	}
	q.stop(t, syscall.SIGTERM)
	st, err := storage.OpenBolt(filepath.Join(p.data, dbFile), storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(context.Background()); err != nil {
		t.Fatalf("check after %v and restart: %v", sig, err)
	}
}

// TestSubcommands runs history, cat, diff and backup against a running
// server (through its API) and against the stopped server's data file.
func TestSubcommands(t *testing.T) {
	p := start(t, "", nil)
	putDoc(t, p, "sub", "alpha\n", 0)
	putDoc(t, p, "sub", "alpha\nbeta\n", 1)
	putDoc(t, p, "sub", "alpha\ngamma\n", 2)

	check := func(t *testing.T, via []string) {
		args := func(a ...string) []string { return append(a, via...) }
		out, errOut, code := collabd(t, nil, args("cat", "sub")...)
		if code != 0 || out != "alpha\ngamma\n" {
			t.Fatalf("cat: %d %q %s", code, out, errOut)
		}
		out, _, _ = collabd(t, nil, args("cat", "sub", "--rev", "1")...)
		if out != "alpha\n" {
			t.Fatalf("cat --rev 1: %q", out)
		}
		out, _, _ = collabd(t, nil, args("cat", "--json", "sub")...)
		var doc struct {
			ID   string
			Rev  uint64
			Text string
		}
		if json.Unmarshal([]byte(out), &doc) != nil || doc.Rev != 3 || doc.ID != "sub" {
			t.Fatalf("cat --json: %q", out)
		}
		out, _, _ = collabd(t, nil, args("cat", "never")...)
		if out != "" {
			t.Fatalf("cat of an empty doc: %q", out)
		}
		out, _, code = collabd(t, nil, args("history", "sub")...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "REV") || !strings.HasPrefix(lines[1], "3 ") || !strings.Contains(lines[3], "+6") {
			t.Fatalf("history: %d %q", code, out)
		}
		out, _, _ = collabd(t, nil, args("history", "sub", "--limit", "1", "--json")...)
		var h struct{ Revs []storage.Revision }
		if json.Unmarshal([]byte(out), &h) != nil || len(h.Revs) != 1 || h.Revs[0].Rev != 3 {
			t.Fatalf("history --json: %q", out)
		}
		out, _, _ = collabd(t, nil, args("diff", "sub", "2", "3")...)
		if old, new := undiff(out); old != "alpha\nbeta\n" || new != "alpha\ngamma\n" || !strings.Contains(out, "[-") || !strings.Contains(out, "{+") {
			t.Fatalf("diff: %q", out)
		}
		out, _, _ = collabd(t, nil, args("diff", "--json", "sub", "0", "1")...)
		if strings.TrimSpace(out) != `{"diffs":[[1,"alpha\n"]]}` {
			t.Fatalf("diff --json: %q", out)
		}
		_, errOut, code = collabd(t, nil, args("diff", "sub", "1", "99")...)
		if code != 1 || errOut == "" {
			t.Fatalf("diff to a future rev: %d %q", code, errOut)
		}
		_, errOut, code = collabd(t, nil, args("cat", "bad id")...)
		if code != 1 || !strings.Contains(errOut, "invalid document id") {
			t.Fatalf("cat with a bad id: %d %q", code, errOut)
		}
		file := filepath.Join(t.TempDir(), "backup.db")
		out, errOut, code = collabd(t, nil, args("backup", file)...)
		if code != 0 || !strings.Contains(out, "wrote") {
			t.Fatalf("backup: %d %q %q", code, out, errOut)
		}
		if _, errOut, code = collabd(t, nil, args("backup", file)...); code != 1 || !strings.Contains(errOut, "exists") {
			t.Fatalf("backup over an existing file: %d %q", code, errOut)
		}
		st, err := storage.OpenBolt(file, storage.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if text, err := st.TextAt(context.Background(), "sub", 3); err != nil || text != "alpha\ngamma\n" {
			t.Fatalf("backup content %q %v", text, err)
		}
	}
	t.Run("server via --server", func(t *testing.T) { check(t, []string{"--server", p.url}) })
	t.Run("server found from the data dir", func(t *testing.T) { check(t, []string{"--data", p.data}) })
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	t.Run("stopped server's data file", func(t *testing.T) { check(t, []string{"--data", p.data}) })

	_, errOut, code := collabd(t, nil, "cat", "x", "--data", filepath.Join(t.TempDir(), "none"))
	if code != 1 || !strings.Contains(errOut, "no data file") {
		t.Fatalf("cat without data: %d %q", code, errOut)
	}
	if _, _, code := collabd(t, nil, "history"); code != 2 {
		t.Fatalf("history without DOC: exit %d", code)
	}
	if _, _, code := collabd(t, nil, "frobnicate"); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}

// undiff rebuilds both texts from formatDiff's output.
func undiff(s string) (old, new string) {
	del := regexp.MustCompile(`(?s)\[-(.*?)-\]`)
	ins := regexp.MustCompile(`(?s)\{\+(.*?)\+\}`)
	old = ins.ReplaceAllString(del.ReplaceAllString(s, "$1"), "")
	new = del.ReplaceAllString(ins.ReplaceAllString(s, "$1"), "")
	return old, new
}

// call emits an event with an ack and decodes the first ack argument.
func call(tb testing.TB, c *sioclient.Client, event string, payload any) map[string]any {
	tb.Helper()
	raw, err := c.Call(10*time.Second, event, payload)
	if err != nil {
		tb.Fatalf("%s: %v", event, err)
	}
	var args []map[string]any
	if err := json.Unmarshal(raw, &args); err != nil || len(args) == 0 {
		tb.Fatalf("%s ack %s: %v", event, raw, err)
	}
	return args[0]
}

func errCode(ack map[string]any) string {
	e, _ := ack["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// TestTokens: tokens minted by `collabd token` are accepted by the server,
// with their access rules; bad or missing tokens are refused.
func TestTokens(t *testing.T) {
	const secret = "integration-test-secret-0123456789"
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, "", nil, "--auth-secret-file", secretFile)

	mint := func(args ...string) string {
		out, errOut, code := collabd(t, []string{"COLLABD_AUTH_SECRET=" + secret}, append([]string{"token"}, args...)...)
		if code != 0 {
			t.Fatalf("token %v: %d %s", args, code, errOut)
		}
		return strings.TrimSpace(out)
	}
	editor := mint("--user", "ann", "--edit", "team-*", "--view", "pub")
	viewer := mint("--user", "vic", "--view", "team-*", "--ttl", "1h")
	if _, errOut, code := collabd(t, nil, "token", "--user", "x", "--edit", "*"); code != 1 || !strings.Contains(errOut, "secret") {
		t.Fatalf("token without secret: %d %q", code, errOut)
	}
	otherSecret := strings.TrimSpace(func() string {
		out, _, _ := collabd(t, []string{"COLLABD_AUTH_SECRET=another-secret-of-enough-length"}, "token", "--user", "eve", "--edit", "*")
		return out
	}())

	dial := func(auth any) (*sioclient.Client, error) {
		c, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: p.addr, Auth: auth})
		if err == nil {
			t.Cleanup(c.Close)
		}
		return c, err
	}
	for name, a := range map[string]any{"no auth": nil, "empty": map[string]any{}, "bad": map[string]any{"token": "x.y.z"}, "other secret": map[string]any{"token": otherSecret}} {
		if _, err := dial(a); !errors.Is(err, sioclient.ErrConnectRefused) {
			t.Errorf("%s: Dial = %v, want refused", name, err)
		}
	}

	ed, err := dial(map[string]any{"token": editor})
	if err != nil {
		t.Fatal(err)
	}
	if ack := call(t, ed, "doc:join", map[string]any{"doc": "team-a", "client": "ed-1", "user": map[string]any{"name": "spoofed"}}); ack["ok"] != true {
		t.Fatalf("editor join: %v", ack)
	}
	if ack := call(t, ed, "doc:op", map[string]any{"doc": "team-a", "client": "ed-1", "seq": 1, "rev": 0, "op": []any{"hi"}}); ack["ok"] != true {
		t.Fatalf("editor op: %v", ack)
	}
	if ack := call(t, ed, "doc:join", map[string]any{"doc": "secret", "client": "ed-1"}); errCode(ack) != "forbidden" {
		t.Fatalf("editor join outside patterns: %v", ack)
	}
	if ack := call(t, ed, "doc:join", map[string]any{"doc": "pub", "client": "ed-1"}); ack["ok"] != true {
		t.Fatalf("editor join of a view doc: %v", ack)
	}
	if ack := call(t, ed, "doc:op", map[string]any{"doc": "pub", "client": "ed-1", "seq": 2, "rev": 0, "op": []any{"x"}}); errCode(ack) != "forbidden" {
		t.Fatalf("editor op on a view doc: %v", ack)
	}

	vi, err := dial(map[string]any{"token": viewer})
	if err != nil {
		t.Fatal(err)
	}
	if ack := call(t, vi, "doc:join", map[string]any{"doc": "team-a", "client": "vi-1"}); ack["ok"] != true || ack["text"] != "hi" {
		t.Fatalf("viewer join: %v", ack)
	}
	if ack := call(t, vi, "doc:op", map[string]any{"doc": "team-a", "client": "vi-1", "seq": 1, "rev": 1, "op": []any{"no"}}); errCode(ack) != "forbidden" {
		t.Fatalf("viewer op: %v", ack)
	}
	hist := call(t, vi, "doc:history", map[string]any{"doc": "team-a"})
	revs, _ := hist["revs"].([]any)
	if len(revs) != 1 || revs[0].(map[string]any)["user"] != "ann" {
		t.Fatalf("history shows the token's user: %v", hist)
	}

	// The HTTP API applies the same rules.
	if code, _, _ := httpDo(t, "GET", p.url+"api/docs/team-a", ""); code != 401 {
		t.Fatalf("API without token: %d", code)
	}
	if code, _, _ := httpDo(t, "GET", p.url+"api/docs/team-a", "", "Authorization", "Bearer "+viewer); code != 200 {
		t.Fatalf("API viewer GET: %d", code)
	}
	if code, _, _ := httpDo(t, "PUT", p.url+"api/docs/team-a", "x", "Authorization", "Bearer "+viewer, "If-Match", "1"); code != 403 {
		t.Fatalf("API viewer PUT: %d", code)
	}
	// Subcommands against an auth server mint their own token from the secret.
	out, errOut, code := collabd(t, []string{"COLLABD_AUTH_SECRET=" + secret}, "cat", "team-a", "--data", p.data)
	if code != 0 || out != "hi" {
		t.Fatalf("cat with secret: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := collabd(t, nil, "cat", "team-a", "--data", p.data); code != 1 || !strings.Contains(errOut, "unauthorized") {
		t.Fatalf("cat without secret: %d %q", code, errOut)
	}
	p.stop(t, syscall.SIGTERM)
}

// TestPutConflictsWithSocketEdits: PUTs based on revisions that socket
// clients edit past meanwhile are transformed, not lost, and nothing is
// applied twice.
func TestPutConflictsWithSocketEdits(t *testing.T) {
	p := start(t, "", nil)
	const doc = "mixed"
	putDoc(t, p, doc, "|base|", 0)
	const sockOps, puts = 40, 15
	c, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: p.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack := call(t, c, "doc:join", map[string]any{"doc": doc, "client": "sock-1"})
	rev := uint64(ack["rev"].(float64))
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= sockOps; i++ {
			// Inserting at the front is valid on any revision; the
			// server transforms it over the PUTs it has not seen.
			raw, err := c.Call(10*time.Second, "doc:op", map[string]any{"doc": doc, "client": "sock-1", "seq": i, "rev": rev, "op": []any{fmt.Sprintf("<s%d>", i)}})
			if err != nil {
				done <- err
				return
			}
			var a []struct {
				OK  bool
				Rev uint64
			}
			if json.Unmarshal(raw, &a) != nil || len(a) == 0 || !a[0].OK {
				done <- fmt.Errorf("op %d ack %s", i, raw)
				return
			}
			rev = a[0].Rev
		}
		done <- nil
	}()
	for i := range puts {
		r, text := getDoc(t, p, doc)
		code, body, _ := httpDo(t, "PUT", p.url+"api/docs/"+doc, text+fmt.Sprintf("<p%d>", i), "If-Match", fmt.Sprint(r))
		if code != 200 {
			t.Fatalf("PUT %d: %d %s", i, code, body)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	head, text := getDoc(t, p, doc)
	if head != 1+sockOps+puts {
		t.Fatalf("head %d, want %d", head, 1+sockOps+puts)
	}
	for i := 1; i <= sockOps; i++ {
		if strings.Count(text, fmt.Sprintf("<s%d>", i)) != 1 {
			t.Fatalf("<s%d> not exactly once in %q", i, text)
		}
	}
	for i := range puts {
		if strings.Count(text, fmt.Sprintf("<p%d>", i)) != 1 {
			t.Fatalf("<p%d> not exactly once in %q", i, text)
		}
	}
	if strings.Count(text, "|base|") != 1 {
		t.Fatalf("base text damaged: %q", text)
	}
}

// TestSecondSignal: two signals in a row stop the server at once or
// gracefully; either way the data survives.
func TestSecondSignal(t *testing.T) {
	p := start(t, "", nil)
	putDoc(t, p, "twice", "kept", 0)
	p.cmd.Process.Signal(syscall.SIGTERM)
	code := p.stop(t, syscall.SIGTERM)
	if code != 0 && code != 1 {
		t.Fatalf("exit %d after two signals", code)
	}
	q := start(t, p.data, nil)
	if rev, text := getDoc(t, q, "twice"); rev != 1 || text != "kept" {
		t.Fatalf("after two signals: %d %q", rev, text)
	}
	q.stop(t, syscall.SIGTERM)
}

// TestPprof: --pprof-addr serves net/http/pprof on its own listener, and the
// main listener does not.
func TestPprof(t *testing.T) {
	p := start(t, "", nil, "--pprof-addr", "127.0.0.1:0")
	var addr string
	for _, line := range strings.Split(p.logs(), "\n") {
		var m struct{ Message, Addr string }
		if json.Unmarshal([]byte(line), &m) == nil && m.Message == "pprof listening" {
			addr = m.Addr
		}
	}
	if addr == "" {
		t.Fatalf("no pprof line in the log")
	}
	if code, body, _ := httpDo(t, "GET", "http://"+addr+"/debug/pprof/goroutine?debug=1", ""); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof: %d", code)
	}
	if code, _, _ := httpDo(t, "GET", p.url+"debug/pprof/", ""); code != 404 {
		t.Fatalf("pprof on the main listener: %d", code)
	}
	p.stop(t, syscall.SIGTERM)
}

// TestShutdownReachesPollingClients: a long-polling client, which has no
// connection of its own between two GETs, still reads the Engine.IO close
// packet after SIGTERM (its keep-alive connection is served to the end).
func TestShutdownReachesPollingClients(t *testing.T) {
	p := start(t, "", nil)
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}, Timeout: 20 * time.Second}
	defer hc.CloseIdleConnections()
	poll := func(method, sid, body string) (string, error) {
		u := p.url + "socket.io/?EIO=4&transport=polling"
		if sid != "" {
			u += "&sid=" + sid
		}
		req, err := http.NewRequest(method, u, strings.NewReader(body))
		if err != nil {
			return "", err
		}
		res, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return string(b), err
	}
	open, err := poll("GET", "", "")
	if err != nil || !strings.HasPrefix(open, "0{") {
		t.Fatalf("handshake %q %v", open, err)
	}
	var hs struct{ Sid string }
	if err := json.Unmarshal([]byte(open[1:]), &hs); err != nil {
		t.Fatal(err)
	}
	if _, err := poll("POST", hs.Sid, "40"); err != nil {
		t.Fatal(err)
	}
	if ack, err := poll("GET", hs.Sid, ""); err != nil || !strings.HasPrefix(ack, "40{") {
		t.Fatalf("connect ack %q %v", ack, err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	var got []string
	for range 4 {
		body, err := poll("GET", hs.Sid, "")
		if err != nil {
			break
		}
		got = append(got, strings.Split(body, "\x1e")...)
		if slices.Contains(got, "1") {
			break
		}
	}
	if !slices.Contains(got, "1") {
		t.Fatalf("packets after SIGTERM %q: no close packet", got)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestAllowedOrigins: browsers from other origins may open Socket.IO
// sessions only when --allowed-origins lists them.
func TestAllowedOrigins(t *testing.T) {
	p := start(t, "", []string{"COLLABD_ALLOWED_ORIGINS=https://app.example.com, https://other.example.com"})
	handshake := p.url + "socket.io/?EIO=4&transport=polling"
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + p.addr, true},
		{"https://app.example.com", true},
		{"https://other.example.com", true},
		{"https://evil.example.com", false},
	} {
		var hdr []string
		if tc.origin != "" {
			hdr = []string{"Origin", tc.origin}
		}
		code, body, _ := httpDo(t, "GET", handshake, "", hdr...)
		if ok := code == 200 && strings.HasPrefix(body, "0{"); ok != tc.ok {
			t.Errorf("origin %q: %d %q", tc.origin, code, body)
		}
	}
	p.stop(t, syscall.SIGTERM)
}

// DELETE through the API ends the memberships of connected editors (their
// connection is closed so that they rejoin), and the id then names a new,
// empty document.
func TestDeleteReachesMembers(t *testing.T) {
	p := start(t, t.TempDir(), cleanEnv())
	rev := putDoc(t, p, "gone", "old text", 0)
	c, err := sioclient.Dial(context.Background(), sioclient.Config{Addr: p.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ack := call(t, c, "doc:join", map[string]any{"doc": "gone", "client": "cli-1"}); ack["ok"] != true || ack["rev"] != float64(rev) {
		t.Fatalf("join ack %v", ack)
	}
	if st, body, _ := httpDo(t, "DELETE", p.url+"api/docs/gone", ""); st != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", st, body)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("member still connected after the document was deleted")
	}
	if r, text := getDoc(t, p, "gone"); r != 0 || text != "" {
		t.Fatalf("after DELETE: rev %d text %q", r, text)
	}
}

// TestSlowClientDisconnected: COLLABD_WRITE_QUEUE_BYTES bounds what a member
// that stops reading may have queued; once past it the member is
// disconnected, collabd_slow_clients_closed_total counts it, and the server
// logs why.
func TestSlowClientDisconnected(t *testing.T) {
	const bound = 1_000_000
	p := start(t, "", []string{fmt.Sprint("COLLABD_WRITE_QUEUE_BYTES=", bound)})
	unblock := make(chan struct{})
	defer close(unblock)
	slow, err := sioclient.Dial(context.Background(), sioclient.Config{
		Addr:             p.addr,
		SocketRecvBuffer: 4096,
		OnEvent: func(name string, _ []byte) {
			if name == "doc:op" {
				<-unblock // stop reading at the first broadcast
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if ack := call(t, slow, "doc:join", map[string]any{"doc": "big", "client": "slow"}); ack["ok"] != true {
		t.Fatalf("join ack %v", ack)
	}
	// Each PUT of the big text is a broadcast of 256 KiB. The kernel's
	// buffers take a few megabytes before the queue fills. (The client
	// does not see its connection close: its reader is blocked.)
	text := strings.Repeat("x", 256<<10)
	rev := uint64(0)
	for i := 0; ; i++ {
		_, metrics, _ := httpDo(t, "GET", p.url+"metrics", "")
		if strings.Contains(metrics, "\ncollabd_slow_clients_closed_total 1\n") {
			break
		}
		if !strings.Contains(metrics, "\ncollabd_slow_clients_closed_total 0\n") {
			t.Fatalf("metrics:\n%s", metrics)
		}
		if i == (bound+32<<20)/(256<<10)*2 {
			t.Fatalf("the slow member is still connected after %d PUTs", i)
		}
		if i%2 == 1 {
			rev = putDoc(t, p, "big", "", rev)
		} else {
			rev = putDoc(t, p, "big", text, rev)
		}
	}
	if logs := p.logs(); !strings.Contains(logs, "slow client disconnected") || !strings.Contains(logs, fmt.Sprint("bound of ", bound, " bytes")) {
		t.Errorf("no log line tells why the client was disconnected:\n%s", logs)
	}
}
