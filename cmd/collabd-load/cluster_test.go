//go:build linux

package main

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCollabdDoesNotLinkNATSServer: nats-server is a tool of the module
// (built for the load program and the e2e tests), never part of collabd.
func TestCollabdDoesNotLinkNATSServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/collabd/collabd/cmd/collabd").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/collabd/collabd/storage") {
		t.Fatalf("go list -deps of cmd/collabd lacks storage:\n%s", out)
	}
	for _, line := range strings.Fields(string(out)) {
		if strings.HasPrefix(line, "github.com/nats-io/nats-server/") {
			t.Errorf("cmd/collabd links %s", line)
		}
	}
}

func TestParseNodesFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--collabd", "x", "--nodes", "2"}, true},
		{[]string{"--collabd", "x", "--nodes", "0"}, true},
		{[]string{"--url", "http://127.0.0.1:1/", "--nodes", "1"}, true},
		{[]string{"--url", "http://127.0.0.1:1/", "--nodes", "2"}, false},
		{[]string{"--collabd", "x", "--nodes", "-1"}, false},
		{[]string{"--collabd", "x", "--nodes", "3", "--server-profile", "p"}, false},
	} {
		c, err := parseCollabFlags(tc.args)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok %v", tc.args, err, tc.ok)
		}
		if err == nil && c.nodes < 0 {
			t.Errorf("%q: nodes %d", tc.args, c.nodes)
		}
	}
	c, err := parseCollabFlags([]string{"--collabd", "x"})
	if err != nil || c.nodes != 1 {
		t.Fatalf("default --nodes %d, %v; want 1", c.nodes, err)
	}
}

// TestClusterCounters: the collabd_cluster_*_total counters are summed over
// label sets and nodes, their growth over the window is reported per
// committed op, and a missing one is "n/a".
func TestClusterCounters(t *testing.T) {
	node1 := "collabd_commits_total 10\ncollabd_cluster_stale_total 3\ncollabd_cluster_other_total{kind=\"x\"} 1\ncollabd_cluster_other_total{kind=\"y\"} 1\n"
	node2 := "collabd_commits_total 5\ncollabd_cluster_stale_total 1\ncollabd_cluster_lag_seconds_bucket{le=\"1\"} 9\n"
	m0 := commitMetricsOf(append(parsePrometheus([]byte(node1)), parsePrometheus([]byte(node2))...))
	if m0.Cluster["collabd_cluster_stale_total"] != 4 || m0.Cluster["collabd_cluster_other_total"] != 2 || len(m0.Cluster) != 2 {
		t.Fatalf("cluster counters %v", m0.Cluster)
	}
	node1 = strings.ReplaceAll(node1, "stale_total 3", "stale_total 43")
	m1 := commitMetricsOf(append(parsePrometheus([]byte(node1)), parsePrometheus([]byte(node2))...))
	cw, ok := commitsBetween(m0, m1)
	if !ok || cw.Cluster["collabd_cluster_stale_total"] != 40 || cw.Cluster["collabd_cluster_other_total"] != 0 {
		t.Fatalf("window %v, %v", cw.Cluster, ok)
	}
	var buf bytes.Buffer
	writeClusterCounters(&buf, &collabResult{Committed: 200, HaveCommits: true, Commits: cw})
	got := buf.String()
	for _, want := range []string{"stale appends (lost the race) 0.2000 (40)", "rebased ops (re-sequenced after a lost race) n/a (no collabd_cluster_rebased_total)", "collabd_cluster_other_total 0.0000 (0)"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

// TestNATSServerFromModule builds nats-server from the module's tool line
// and runs it with JetStream the way --nodes does.
func TestNATSServerFromModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts nats-server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := buildNATSServer(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := startNATSServer(ctx, bin, t.TempDir(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(n.URL, "nats://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 5)
	_, err = conn.Read(line)
	conn.Close()
	if err != nil || string(line) != "INFO " {
		t.Fatalf("nats-server greeting %q, %v", line, err)
	}
	if err := n.stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// hasClusterMode reports whether the collabd binary has the --nats flag.
func hasClusterMode(t *testing.T, bin string) bool {
	out, _ := exec.Command(bin, "serve", "-h").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "-nats" {
			return true
		}
	}
	return false
}

// TestCollabTwoNodes runs a short closed-loop workload with --nodes 2: a
// nats-server and two collabd nodes, editors spread over them.
func TestCollabTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts nats-server and collabd")
	}
	bin := buildCollabd(t)
	if !hasClusterMode(t, bin) {
		t.Skip("collabd has no --nats flag: cluster mode (branch wiring) is not merged")
	}
	var buf bytes.Buffer
	c, err := parseCollabFlags([]string{"--collabd", bin, "--nodes", "2", "--docs", "2", "--editors", "4",
		"--duration", "2s", "--warmup", "500ms", "--drain", "20s", "--seed", "3"})
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
	if !res.HaveNATS || res.Nodes != 2 || res.NATSCPU <= 0 || res.ServerUser+res.ServerSys <= res.NATSCPU || res.NATSPeakRSS <= 0 {
		t.Fatalf("cluster figures missing: %+v\n%s", res, report)
	}
	if len(res.CommittedByNode) != 2 || res.CommittedByNode[0] <= 0 || res.CommittedByNode[1] <= 0 ||
		res.CommittedByNode[0]+res.CommittedByNode[1] != res.Committed || res.AckByNode[1].N == 0 {
		t.Fatalf("committed by node %v of %d, ack by node %v\n%s", res.CommittedByNode, res.Committed, res.AckByNode, report)
	}
	for _, want := range []string{"on all 2 nodes", "editors on node2:", "server node2:", "nats-server:", "cluster counters per committed op"} {
		if !strings.Contains(report, want) {
			t.Fatalf("report lacks %q:\n%s", want, report)
		}
	}
	if res.ExitCode != 0 {
		t.Fatalf("a node's exit code %d after SIGTERM\n%s", res.ExitCode, report)
	}
}
