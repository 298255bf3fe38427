//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// buildCollabd builds cmd/collabd into a temporary directory, or returns
// $COLLABD_BIN when set (to measure another build).
func buildCollabd(tb testing.TB) string {
	tb.Helper()
	if bin := os.Getenv("COLLABD_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(tb.TempDir(), "collabd")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/collabd/collabd/cmd/collabd")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("building cmd/collabd: %v\n%s", err, stderr.String())
	}
	return bin
}

func checkCollabResult(tb testing.TB, res *collabResult, report string) {
	tb.Helper()
	if !res.Converged {
		tb.Fatalf("not converged\n%s", report)
	}
	if res.Committed <= 0 || res.OpsPerSec <= 0 {
		tb.Fatalf("committed %d ops (%.0f/s), want some\n%s", res.Committed, res.OpsPerSec, report)
	}
	if res.E2E.N == 0 || res.E2E.P50 <= 0 || res.E2E.P99 < res.E2E.P50 {
		tb.Fatalf("end-to-end latency %+v\n%s", res.E2E, report)
	}
	if res.E2EIncomplete != 0 || res.E2EUnknown != 0 {
		tb.Fatalf("%d ops never applied everywhere, %d unmatched broadcasts\n%s", res.E2EIncomplete, res.E2EUnknown, report)
	}
	if res.Ack.N == 0 {
		tb.Fatalf("no ack latencies\n%s", report)
	}
	if !strings.Contains(report, "convergence: OK") {
		tb.Fatalf("report without the convergence line:\n%s", report)
	}
}

// TestCollabAgainstCollabd runs a short closed-loop workload (2 documents x
// 3 editors) against a collabd started from a fresh build.
func TestCollabAgainstCollabd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts collabd")
	}
	bin := buildCollabd(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var buf bytes.Buffer
	c, err := parseCollabFlags([]string{"--collabd", bin, "--docs", "2", "--editors", "3",
		"--duration", "2s", "--warmup", "500ms", "--drain", "10s", "--seed", "1"})
	if err != nil {
		t.Fatal(err)
	}
	c.out = &buf
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := runCollab(ctx, c)
	report := buf.String()
	if err != nil {
		t.Fatalf("%v\n%s", err, report)
	}
	t.Log("\n" + report)
	checkCollabResult(t, res, report)
	if !res.HaveServer || res.ServerUser+res.ServerSys <= 0 || res.CPUPerOp <= 0 || res.PeakRSS <= 0 || res.EndRSS <= 0 {
		t.Fatalf("server figures missing: %+v\n%s", res, report)
	}
	if res.ExitCode != 0 {
		t.Fatalf("collabd exit code %d after SIGTERM\n%s", res.ExitCode, report)
	}
	if sum := res.HostBusy + res.HostIdle + res.HostSteal; !res.HaveHostCPU || res.HostBusy <= 0 || sum < 0.99 || sum > 1.01 ||
		!strings.Contains(report, "stolen by the hypervisor") {
		t.Fatalf("machine CPU shares missing or not summing to 1: %+v\n%s", res, report)
	}
}

// TestCollabOpenLoopWithURL runs the open-loop shape against a collabd the
// test started itself, given by --url.
func TestCollabOpenLoopWithURL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts collabd")
	}
	bin := buildCollabd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := startCollabd(ctx, bin, t.TempDir(), nil, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if code, err := srv.stop(30 * time.Second); err != nil || code != 0 {
			t.Errorf("collabd stop: exit code %d, %v", code, err)
		}
	})
	var buf bytes.Buffer
	c, err := parseCollabFlags([]string{"--url", srv.URL, "--docs", "2", "--editors", "3", "--rate", "40",
		"--duration", "2s", "--warmup", "300ms", "--seed", "2"})
	if err != nil {
		t.Fatal(err)
	}
	c.out = &buf
	res, err := runCollab(ctx, c)
	report := buf.String()
	if err != nil {
		t.Fatalf("%v\n%s", err, report)
	}
	t.Log("\n" + report)
	checkCollabResult(t, res, report)
	if res.HaveServer {
		t.Fatal("--url run claims server figures")
	}
	// Each op's latency from its first edit is at least the one from its
	// submission, so are the quantiles.
	if res.E2EFromEdit.N != res.E2E.N || res.E2EFromEdit.P50 < res.E2E.P50 || res.E2EFromEdit.P99 < res.E2E.P99 {
		t.Fatalf("from the edit %+v, from the submission %+v\n%s", res.E2EFromEdit, res.E2E, report)
	}
	// 6 editors at 40 edits/s for 2 s: about 480 edits, fewer ops when
	// edits are composed behind an op in flight.
	if res.Committed > 600 {
		t.Fatalf("committed %d ops in an open loop of at most ~480 edits\n%s", res.Committed, report)
	}
}

func TestListeningURL(t *testing.T) {
	tests := []struct {
		line, want string
		ok         bool
	}{
		{"collabd listening on http://127.0.0.1:40123/", "http://127.0.0.1:40123/", true},
		{"collabd listening on http://127.0.0.1:40123", "http://127.0.0.1:40123/", true},
		{`{"level":"info","message":"collabd listening on http://[::1]:8080/"}`, "http://[::1]:8080/", true},
		{"collabd listening on http://127.0.0.1:1/ (open it in a browser)", "http://127.0.0.1:1/", true},
		{"collabd listening on nowhere", "", false},
		{"collabd listening on ftp://x/", "", false},
		{"listening on http://127.0.0.1:1/", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, ok := listeningURL(tt.line)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("listeningURL(%q) = %q, %v; want %q, %v", tt.line, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestBaseAndHost(t *testing.T) {
	tests := []struct {
		in, base, host string
		bad            bool
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/", "127.0.0.1:8080", false},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/", "127.0.0.1:8080", false},
		{"http://[::1]:9/prefix", "http://[::1]:9/prefix/", "[::1]:9", false},
		{"127.0.0.1:8080", "", "", true},
		{"", "", "", true},
		{"http://%zz", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			base, host, err := baseAndHost(tt.in)
			if (err != nil) != tt.bad || base != tt.base || host != tt.host {
				t.Fatalf("baseAndHost(%q) = %q, %q, %v; want %q, %q, error %v", tt.in, base, host, err, tt.base, tt.host, tt.bad)
			}
		})
	}
}

func TestAddServerWindow(t *testing.T) {
	gone := errors.New("unreadable")
	s0 := serverSample{user: time.Second, sys: 2 * time.Second, reads: 10, writes: 20, switches: 100}
	s1 := serverSample{user: 3 * time.Second, sys: 5 * time.Second, reads: 15, writes: 40, switches: 160}
	tests := []struct {
		name                   string
		s0, s1                 serverSample
		syscalls, switches     bool
		reads, writes, ctxSwit uint64
	}{
		{"all readable", s0, s1, true, true, 5, 20, 60},
		{"io unreadable at the start", func() serverSample { s := s0; s.ioErr = gone; return s }(), s1, false, true, 0, 0, 60},
		{"io unreadable at the end", s0, func() serverSample { s := s1; s.ioErr = gone; return s }(), false, true, 0, 0, 60},
		{"switches unreadable", s0, func() serverSample { s := s1; s.switchErr = gone; return s }(), true, false, 5, 20, 0},
		{"switches went down", s0, func() serverSample { s := s1; s.switches = 50; return s }(), true, false, 5, 20, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res collabResult
			res.addServerWindow(tt.s0, tt.s1)
			if res.ServerUser != 2*time.Second || res.ServerSys != 3*time.Second {
				t.Fatalf("CPU user %v system %v, want 2s 3s", res.ServerUser, res.ServerSys)
			}
			if res.HaveSyscalls != tt.syscalls || res.ServerReads != tt.reads || res.ServerWrites != tt.writes {
				t.Fatalf("system calls %v %d %d, want %v %d %d", res.HaveSyscalls, res.ServerReads, res.ServerWrites, tt.syscalls, tt.reads, tt.writes)
			}
			if res.HaveSwitches != tt.switches || res.ServerSwitches != tt.ctxSwit {
				t.Fatalf("switches %v %d, want %v %d", res.HaveSwitches, res.ServerSwitches, tt.switches, tt.ctxSwit)
			}
		})
	}
}
