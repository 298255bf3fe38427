// Command collabd-load drives load against collabd's servers and reports what
// the server process costs. It starts the server itself, as a child process
// built from this repository, so that it can read the child's memory and CPU
// time from /proc/PID/{status,stat}.
//
// Subcommands:
//
//	collabd-load sockets [flags]        Socket.IO scenarios: idle connections,
//	                                    broadcast throughput/latency, overload
//	collabd-load serve-sockets [flags]  the bench server the scenarios start
//	                                    (a child process; not for direct use)
//
// Later workloads (the collab editing load of issue 4) add subcommands here.
// Every loop is bounded in count and in time.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage:
  collabd-load sockets [flags]        run the Socket.IO load scenarios (-h for flags)
  collabd-load serve-sockets [flags]  bench server started by "sockets" (internal)
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
