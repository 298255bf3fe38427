//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// natsServerPkg is the nats-server main package, a tool of the module (the
// tool line of go.mod): built from the module cache at the version go.mod
// requires, never linked into collabd.
const natsServerPkg = "github.com/nats-io/nats-server/v2"

// buildNATSServer builds nats-server into dir and returns the binary's
// path. It runs "go build" in the working directory, which must be inside
// the collabd module.
func buildNATSServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "nats-server")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, natsServerPkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building nats-server (go build %s; run inside the collabd module, or give --nats-server PATH): %v\n%s", natsServerPkg, err, stderr.String())
	}
	return bin, nil
}

// natsServer is a nats-server process started by the load program, with
// JetStream on a store directory of its own and the default sync_interval
// (JetStream fsyncs in the background, every 2 minutes: an acknowledged
// write is in the page cache, not necessarily on disk).
type natsServer struct {
	cmd      *exec.Cmd
	PID      int
	URL      string // nats://127.0.0.1:PORT
	storeDir string
	done     chan struct{} // closed once Wait returned
	waitErr  error         // set before done is closed
}

// startNATSServer runs bin with JetStream on storeDir on a free loopback
// port and waits (at most timeout) for its "Server is ready" line. Its
// warnings and errors go to this process's stderr.
func startNATSServer(ctx context.Context, bin, storeDir string, timeout time.Duration) (*natsServer, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	cmd := exec.Command(bin, "-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", port)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout // nats-server logs to stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &natsServer{cmd: cmd, PID: cmd.Process.Pid, URL: "nats://" + addr, storeDir: storeDir, done: make(chan struct{})}
	ready := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.Contains(line, "Server is ready"):
				select {
				case ready <- struct{}{}:
				default:
				}
			case strings.Contains(line, "[WRN]") || strings.Contains(line, "[ERR]") || strings.Contains(line, "[FTL]"):
				fmt.Fprintln(os.Stderr, "nats-server:", line)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		n.waitErr = cmd.Wait()
		close(n.done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ready:
		return n, nil
	case <-n.done:
		return nil, fmt.Errorf("nats-server exited before it was ready: %v", n.waitErr)
	case <-t.C:
	case <-ctx.Done():
	}
	n.kill()
	return nil, errors.New("nats-server was not ready in time")
}

func (n *natsServer) kill() {
	_ = n.cmd.Process.Kill()
	<-n.done
}

// stop sends SIGTERM and waits at most grace (then kills).
func (n *natsServer) stop(grace time.Duration) error {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-n.done:
		return nil
	case <-t.C:
		n.kill()
		return fmt.Errorf("nats-server pid %d did not stop within %v; killed", n.PID, grace)
	}
}

// startCluster starts a nats-server (JetStream on root/nats) and c.nodes
// collabd nodes on it, each with its own data directory root/node-K and
// --nats URL --node-name nodeK plus extra. On failure it stops what it
// started.
func startCluster(ctx context.Context, c collabConfig, root string, extra []string, t *target) (err error) {
	bin := c.natsServer
	if bin == "" {
		if bin, err = buildNATSServer(ctx, root); err != nil {
			return err
		}
	}
	storeDir := filepath.Join(root, "nats")
	if t.nats, err = startNATSServer(ctx, bin, storeDir, 30*time.Second); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			t.stopServers(io.Discard, nil)
		}
	}()
	nodes := make([]*collabd, c.nodes)
	errs := make([]error, c.nodes)
	dirs := make([]string, c.nodes)
	for k := range dirs {
		dirs[k] = filepath.Join(root, fmt.Sprintf("node-%d", k+1))
		if err := os.Mkdir(dirs[k], 0o755); err != nil {
			return err
		}
	}
	// All at once, as a deployment would: stream creation must be race-free.
	var wg sync.WaitGroup
	for k, dir := range dirs {
		args := append([]string{"--nats", t.nats.URL, "--node-name", fmt.Sprintf("node%d", k+1)}, extra...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[k], errs[k] = startCollabd(ctx, c.collabd, dir, args, 60*time.Second)
		}()
	}
	wg.Wait()
	for _, n := range nodes {
		if n != nil {
			t.nodes = append(t.nodes, n)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("starting the collabd nodes: %w", err)
	}
	return nil
}

// clusterNames are the counters of cluster mode the report gives per
// committed op (the others named collabd_cluster_*_total are listed too).
var clusterNames = []struct{ name, what string }{
	{"collabd_cluster_stale_total", "stale appends (lost the race)"},
	{"collabd_cluster_rebased_total", "rebased ops (re-sequenced after a lost race)"},
}

// writeClusterCounters prints the cluster counters over the window per
// committed op, "n/a" for the ones the servers do not expose.
func writeClusterCounters(w io.Writer, res *collabResult) {
	perOp := func(v float64) string {
		if res.Committed == 0 {
			return "?"
		}
		return fmt.Sprintf("%.4f", v/float64(res.Committed))
	}
	var parts []string
	known := map[string]bool{}
	for _, c := range clusterNames {
		known[c.name] = true
		v, ok := res.Commits.Cluster[c.name]
		if !res.HaveCommits || !ok {
			parts = append(parts, fmt.Sprintf("%s n/a (no %s)", c.what, c.name))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s (%.0f)", c.what, perOp(v), v))
	}
	for _, name := range slices.Sorted(maps.Keys(res.Commits.Cluster)) {
		if !known[name] {
			parts = append(parts, fmt.Sprintf("%s %s (%.0f)", name, perOp(res.Commits.Cluster[name]), res.Commits.Cluster[name]))
		}
	}
	fmt.Fprintf(w, "  cluster counters per committed op over the window (/metrics, summed over the nodes): %s\n", strings.Join(parts, "; "))
}
