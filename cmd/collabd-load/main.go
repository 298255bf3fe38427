//go:build linux

// Command collabd-load drives load against collabd's servers and reports what
// the server process costs. It starts the server itself, as a child process
// built from this repository, so that it can read the child's memory and CPU
// time from /proc/PID/{status,stat}; it builds on Linux only.
//
// Subcommands:
//
//	collabd-load sockets [flags]        Socket.IO scenarios: idle connections,
//	                                    broadcast throughput/latency, echo
//	                                    round trip, overload
//	collabd-load serve-sockets [flags]  the bench server the scenarios start
//	                                    (a child process; not for direct use)
//	collabd-load collab [flags]         editing load against a real collabd
//
// # The sockets scenarios
//
// "sockets" runs the scenarios named by -scenarios (idle, broadcast, echo,
// overload) against the bench server, started as a child process: this
// executable's serve-sockets, or with -server-cmd "CMD ARGS..." another
// server with the same bench events, such as the Node socket.io baseline
// in cmd/collabd-load/node. "echo" has -echo-clients clients make
// acknowledged bench-echo calls, one at a time each with -echo-interval
// between them, for -echo-duration (at most -echo-max calls), and reports
// the round trip p50/p95/p99/max and the server's CPU time per 1,000
// echoes.
//
// # The collab workload
//
// "collab" drives the wire contract (docs/protocol.md) against a collabd
// process: with --collabd PATH it starts that binary with --addr
// 127.0.0.1:0 --data <tmpdir> --log-level warn (plus --server-flags) and
// reads the URL from its "collabd listening on http://HOST:PORT/" line; with
// --url it uses a running server (then without server CPU and RSS figures).
// It opens --docs x --editors Socket.IO connections (one editor each, its
// own client id), joins every editor to its document before anyone edits,
// then edits: random small inserts (some non-ASCII), some deletes, keeping
// each document near --doc-size code points. Each editor runs the client
// side of the OT protocol (synchronized / awaiting ack / awaiting ack with a
// buffer, with ot Transform and Compose), so its ops stay valid
// whatever the others do.
//
// Shapes: closed loop by default (each editor keeps exactly one doc:op in
// flight: emit with ack, wait, next edit), or --rate R edits per second per
// editor (open loop; an edit made while an op is in flight joins the buffer,
// sent when the ack comes; at most --max-buffered edits wait, more are
// skipped and counted). A rate_limited ack makes the editor send the same op
// (same seq) again 10 ms later, counted.
//
// After --warmup, it measures for --duration: committed ops/s (acks received
// in the window); end-to-end latency, from the emit of a doc:op until the
// last other editor of the document applied its broadcast (matched by
// client and seq), p50/p95/p99, and in the open loop also from the first
// local edit the op holds; the author's ack latency; the
// server's CPU time (utime+stime from /proc/PID/stat) per committed op, its
// peak RSS (VmHWM) and RSS at the end (anonymous and file-backed, which
// includes bbolt's mmap); from /metrics, the commits in the window, their
// mean wall time and p50/p99 bucket bounds (collabd_commits_total,
// collabd_commit_seconds), which express p99 end-to-end in mean commit
// times, and the server's own committed-ops and dropped-broadcast counts;
// the load program's own CPU and the load average. Then it waits for every
// editor to settle at its document's head and checks convergence: every
// editor's text must equal GET /api/docs/{id}, or the run fails. A started
// server gets SIGTERM and its exit code is reported.
//
// --nodes N (N >= 2) runs cluster mode instead of one node on bbolt: it
// starts a nats-server (--nats-server PATH, or built from the module's tool
// line with go build) with JetStream on a temporary store and the default
// sync_interval, and N collabd nodes at once with --nats URL --node-name
// nodeK, each with its own data directory; editors are spread round-robin
// over the nodes. The server figures are then summed over the nodes and the
// nats-server (CPU also split between them), /metrics is summed over the
// nodes, and the report adds the cluster counters per committed op
// (collabd_cluster_stale_total, collabd_cluster_rebased_total, "n/a" when
// absent, and any other collabd_cluster_*_total). Convergence is checked on
// every node.
//
// --server-profile FILE starts the server with --pprof-addr and saves a CPU
// profile of the window (and a heap profile at its end, FILE.heap);
// --client-profile profiles the load program itself. Run it on an otherwise
// idle machine: the clients share the cores with the server.
//
// Every loop is bounded in count and in time (--max-ops, --drain,
// --deadline).
package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage:
  collabd-load sockets [flags]        run the Socket.IO load scenarios (-h for flags):
                                      -scenarios idle,broadcast,echo,overload;
                                      -server-cmd "CMD ARGS..." measures another server
                                      (e.g. "node --expose-gc cmd/collabd-load/node/server.mjs")
  collabd-load serve-sockets [flags]  bench server started by "sockets" (internal)
  collabd-load collab [flags]         editing load against a collabd server (-h for flags)
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "sockets":
		// The clients are the load, not what is measured: trade memory for
		// less GC work so that they keep up with the server.
		debug.SetGCPercent(400)
		err = runSockets(os.Args[2:])
	case "serve-sockets":
		err = serveSockets(os.Args[2:])
	case "collab":
		debug.SetGCPercent(400) // as for sockets: the clients are the load
		err = runCollabCmd(os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "collabd-load:", err)
		os.Exit(1)
	}
}
