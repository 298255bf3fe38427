//go:build linux

package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func smallEcho() socketsConfig {
	return socketsConfig{
		dialConc: 4, echoClients: 4, echoInterval: 2 * time.Millisecond,
		echoDur: 500 * time.Millisecond, echoMax: 100000, echoPayload: 16,
	}
}

// checkEcho asserts that every call was answered with its own arguments and
// that the counts and percentiles add up.
func checkEcho(t *testing.T, r *echoResult) {
	t.Helper()
	if r.Sent == 0 || r.Completed != r.Sent || r.Failed != 0 || r.Mismatched != 0 {
		t.Errorf("echo counts: %+v", r)
	}
	if r.ClientsStillConnected != r.Clients {
		t.Errorf("echo: %d of %d clients still connected", r.ClientsStillConnected, r.Clients)
	}
	if r.P50 <= 0 || r.P95 < r.P50 || r.P99 < r.P95 || r.Max < r.P99 {
		t.Errorf("echo percentiles: %+v", r)
	}
	if r.PerSecond <= 0 || r.CPUPerThousand < 0 {
		t.Errorf("echo rates: %+v", r)
	}
}

// TestEchoSmall runs the echo scenario against a real bench server child
// process: by duration, then bounded by -echo-max.
func TestEchoSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	buf := captureOut(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	c := smallEcho()
	r, err := runEcho(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, r)
	// 4 clients pausing 2 ms: at most 1,000 calls in 500 ms
	if r.Sent > 1000 || r.Clients != 4 {
		t.Errorf("echo: %d calls by %d clients in 500 ms, pausing 2 ms after each", r.Sent, r.Clients)
	}

	c.echoDur, c.echoMax = time.Minute, 37
	start := time.Now()
	r, err = runEcho(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, r)
	if r.Sent != 37 || time.Since(start) > 20*time.Second {
		t.Errorf("echo with -echo-max 37: %d calls in %v", r.Sent, time.Since(start))
	}
	for _, want := range []string{"== echo", "round trip: p50", "per 1,000 echoes"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf)
		}
	}
	t.Log(buf.String())
}

// TestServerCmd runs idle and echo against a server started from
// -server-cmd (this test binary's serve-sockets, given as a command line),
// with -server-flags appended.
func TestServerCmd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	buf := captureOut(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := smallEcho()
	c.serverCmd = exe + " serve-sockets -addr 127.0.0.1:0"
	c.serverFlags = "-blocking-reads"
	c.idle, c.hold = 20, 100*time.Millisecond
	ir, _, err := runIdleAndBroadcast(ctx, c, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if ir.Held != 20 || ir.Failed != 0 {
		t.Errorf("idle: %+v", ir)
	}
	r, err := runEcho(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, r)
	if !strings.Contains(buf.String(), "FORCED GC (3 cycles") {
		t.Errorf("report lacks the Go server's GC line:\n%s", buf)
	}
}

func TestServerCommand(t *testing.T) {
	argv, err := serverCommand(socketsConfig{serverCmd: " node  --expose-gc server.mjs ", serverFlags: "--addr 127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(argv, "|"); got != "node|--expose-gc|server.mjs|--addr|127.0.0.1:0" {
		t.Errorf("argv %q", argv)
	}
	argv, err = serverCommand(socketsConfig{queueBytes: 1 << 20, serverFlags: "-blocking-reads"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(argv[1:], " "); got != "serve-sockets -addr 127.0.0.1:0 -queue-bytes 1048576 -blocking-reads" {
		t.Errorf("bench server argv %q", argv)
	}
}

func TestSocketsConfigCheck(t *testing.T) {
	want, err := socketsConfig{scenarios: "idle, echo", echoClients: 1, echoMax: 1}.check()
	if err != nil || !want["idle"] || !want["echo"] || want["broadcast"] {
		t.Errorf("idle, echo: %v %v", want, err)
	}
	for _, c := range []socketsConfig{
		{scenarios: "ehco", echoClients: 1, echoMax: 1},
		{scenarios: "idle", serverCmd: "node server.mjs", queueBytes: 1 << 20},
		{scenarios: "echo", echoClients: 0, echoMax: 1},
	} {
		if _, err := c.check(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// TestFiguresLine: the idle report prints the figures a server has, Go's or
// Node's, and nothing for keys it lacks.
func TestFiguresLine(t *testing.T) {
	goBase := benchFigures{"/memory/classes/heap/objects:bytes": 1000, "/memory/classes/heap/unused:bytes": 0,
		"/memory/classes/heap/stacks:bytes": 0, "/sched/goroutines:goroutines": 5, "/gc/gogc:percent": 100}
	goFig := benchFigures{"/memory/classes/heap/objects:bytes": 3000, "/memory/classes/heap/unused:bytes": 200,
		"/memory/classes/heap/stacks:bytes": 8192, "/sched/goroutines:goroutines": 25, "/gc/gogc:percent": 100}
	got := figuresLine(goBase, goFig, 2)
	want := "runtime/metrics after it, per connection: heap objects 1000 B, heap unused 100 B, goroutine stacks 4096 B; 25 goroutines in all; GOGC 100"
	if got != want {
		t.Errorf("go:\n got %q\nwant %q", got, want)
	}
	nodeBase := benchFigures{"rss": 5e7, "heapUsed": 4e6, "heapTotal": 6e6, "external": 1e6, "gcCycles": 3}
	nodeFig := benchFigures{"rss": 9e7, "heapUsed": 24e6, "heapTotal": 30e6, "external": 2e6, "gcCycles": 3}
	got = figuresLine(nodeBase, nodeFig, 1000)
	want = "process.memoryUsage() after it, per connection: V8 heap used 20000 B, V8 heap total 24000 B, external (buffers, native objects) 1000 B"
	if got != want {
		t.Errorf("node:\n got %q\nwant %q", got, want)
	}
	if got := figuresLine(benchFigures{}, benchFigures{"heapUsed": 1}, 10); got != "" {
		t.Errorf("a key missing from the baseline: %q", got)
	}
	for _, tc := range []struct {
		fig  benchFigures
		want string
	}{
		{benchFigures{}, "FORCED GC (3 cycles + FreeOSMemory)"},
		{benchFigures{"gcCycles": 0}, "WITHOUT a GC"},
		{benchFigures{"gcCycles": 3}, "FORCED GC (3 cycles)"},
	} {
		if got := gcDescription(tc.fig); !strings.Contains(got, tc.want) {
			t.Errorf("%v: %q, want %q", tc.fig, got, tc.want)
		}
	}
}

// TestNodeServer runs short idle, broadcast and echo scenarios against the
// Node baseline (node/server.mjs). Opt-in with COLLABD_LOAD_NODE=1 after
// `npm ci` in node/: CI does not spend the seconds on it.
func TestNodeServer(t *testing.T) {
	if os.Getenv("COLLABD_LOAD_NODE") != "1" {
		t.Skip("set COLLABD_LOAD_NODE=1 to run against node/server.mjs")
	}
	if _, err := os.Stat("node/node_modules/socket.io"); err != nil {
		t.Fatal("run npm ci in cmd/collabd-load/node first:", err)
	}
	buf := captureOut(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := smallEcho()
	c.serverCmd = "node --expose-gc node/server.mjs"
	c.idle, c.hold = 20, 100*time.Millisecond
	c.receivers, c.bcastDur, c.bcastMax, c.window, c.payload = 10, 300*time.Millisecond, 100, 4, 16
	ir, br, err := runIdleAndBroadcast(ctx, c, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if ir.Held != 20 || ir.Failed != 0 {
		t.Errorf("idle: %+v", ir)
	}
	if br.Sent == 0 || br.Deliveries != br.Want || br.Want != int64(br.Sent*10) || !br.SenderConnected {
		t.Errorf("broadcast: %+v", br)
	}
	r, err := runEcho(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, r)
	for _, want := range []string{"FORCED GC (3 cycles)", "process.memoryUsage() after it", "per 1,000 echoes"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf)
		}
	}
}
