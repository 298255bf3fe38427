//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as the bench server: the scenarios start
// os.Executable() with "serve-sockets", which is this binary under go test.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve-sockets" {
		if err := serveSockets(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// captureOut sends the report to a buffer for the test's duration.
func captureOut(tb testing.TB) *bytes.Buffer {
	tb.Helper()
	var buf bytes.Buffer
	prev := out
	out = &buf
	tb.Cleanup(func() { out = prev })
	return &buf
}

// TestScenariosSmall runs every scenario at a small scale against a real
// bench server child process and checks what they measured.
func TestScenariosSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	buf := captureOut(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := socketsConfig{
		idle: 60, dialConc: 8, hold: 200 * time.Millisecond,
		receivers: 20, bcastDur: 500 * time.Millisecond, bcastMax: 200, window: 4, payload: 16,
		// 16 KiB: the server's socket send buffer grows up to 4 MiB
		// (tcp_wmem), which 4 KiB messages did not always fill in 4 s on
		// a loaded machine; 16 KiB ones overflow it after ~270.
		ovRate: 200, ovDur: 4 * time.Second, ovReceivers: 20, ovPayload: 16384,
		slowFrac: 0.1, slowDelay: time.Second, slowRcvBuf: 4096,
	}
	// The broadcast runs with the server's default queue: with a queue of
	// 16 messages, a receiver whose reader lagged 40 ms behind 400 broadcasts/s was
	// closed as a slow client (seen on a quiet machine, old code too).
	ir, br, err := runIdleAndBroadcast(ctx, c, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if ir.Held != 60 || ir.Failed != 0 || ir.BytesPerConn <= 0 {
		t.Errorf("idle: %+v", ir)
	}
	if br.Sent == 0 || br.Deliveries != br.Want || br.Want != int64(br.Sent*20) || !br.SenderConnected || br.ReceiversConnected != 20 {
		t.Errorf("broadcast: %+v", br)
	}
	if br.P50 <= 0 || br.P99 < br.P50 {
		t.Errorf("broadcast latencies: %+v", br)
	}
	c.queueBytes = 256 << 10 // small (16 messages), so that the slow readers overflow within the second
	or, err := runOverload(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if or.SenderDropped {
		t.Errorf("overload: the sender was dropped: %+v", or)
	}
	if or.Sent < 1 || or.PeakRSS <= 0 {
		t.Errorf("overload: %+v", or)
	}
	if or.SlowDropped != 2 || or.NormalDropped != 0 {
		t.Errorf("overload: %d of 2 slow and %d normal readers dropped (queue 256 KiB, 1 s per 16 KiB message at 200/s): %+v",
			or.SlowDropped, or.NormalDropped, or)
	}
	for reason := range or.Reasons {
		if reason != "transport error" {
			t.Errorf("overload: unexpected server-side reason %q", reason)
		}
	}
	for _, want := range []string{"== idle", "== broadcast", "== overload", "per 1,000 deliveries"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf)
		}
	}
	t.Log(buf.String())
}
