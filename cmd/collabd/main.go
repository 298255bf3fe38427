// Command collabd is the collaborative text editing server: documents edited
// together over Socket.IO, kept in one bbolt file, with the browser editor,
// an HTTP API, metrics and a few operator subcommands.
//
//	collabd [serve] [flags]            run the server (the default)
//	collabd history DOC [--limit N]    a document's revisions, newest first
//	collabd cat DOC [--rev R]          a document's text (at revision R; --version NAME: a named version)
//	collabd diff DOC FROM TO           what changed between two revisions
//	collabd backup FILE                a consistent copy of the data file
//	collabd purge DOC                  delete a document with all its history
//	collabd compact                    rewrite the data file, smaller (online through a running server)
//	collabd token --user NAME --edit PATTERN --view PATTERN [--ttl 24h]
//
// Every flag can also be given as an environment variable COLLABD_<FLAG>
// (upper case, dashes as underscores: --max-doc-bytes is
// COLLABD_MAX_DOC_BYTES); a flag on the command line wins. See
// docs/operations.md.
//
// history, cat, diff and backup read the data file directly (bbolt, read
// only) when no server holds it, and otherwise ask the running server's
// HTTP API (--server, default http://127.0.0.1:8080 or COLLABD_ADDR's
// address).
//
// With --nats URL (cluster mode, cluster.go) the server keeps the documents
// in NATS JetStream and shares Socket.IO rooms with the other nodes over
// NATS; history, cat, diff and purge then read JetStream directly.
//
// On SIGINT or SIGTERM the server stops gracefully: /readyz turns 503, it
// stops accepting connections, closes every socket with "server shutting
// down", commits the ops in flight, writes final snapshots and closes the
// data file, within --shutdown-timeout, then exits 0. A second signal exits
// at once with status 1; bbolt's file stays consistent (it is crash-safe).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr, sigs))
}

const usage = `collabd: collaborative text editing server

usage:
  collabd [serve] [flags]                       run the server (default)
  collabd history DOC [--limit N] [--before R]  revisions of DOC, newest first
  collabd cat DOC [--rev R | --version NAME]    text of DOC (at revision R, or a named version)
  collabd diff DOC FROM TO                      changes of DOC between two revisions
  collabd backup FILE [--force]                 consistent copy of the data file
  collabd purge DOC                             delete DOC with every revision and snapshot
  collabd compact [--data DIR]                  rewrite the data file, smaller (online when a server runs)
  collabd token --user NAME [--edit P]... [--view P]... [--ttl 24h] [--jti ID]

'collabd COMMAND -h' lists a command's flags. Every flag is also read from
the environment variable COLLABD_<FLAG> (e.g. COLLABD_ADDR, COLLABD_DATA).
With --nats URL (COLLABD_NATS) serve runs in cluster mode, documents in NATS
JetStream, and history, cat, diff and purge read them there.
`

// run executes one command line and returns the exit status.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = cmdServe(args, getenv, stdout, stderr, sigs)
	case "history":
		err = cmdHistory(args, getenv, stdout, stderr)
	case "cat":
		err = cmdCat(args, getenv, stdout, stderr)
	case "diff":
		err = cmdDiff(args, getenv, stdout, stderr)
	case "backup":
		err = cmdBackup(args, getenv, stdout, stderr)
	case "token":
		err = cmdToken(args, getenv, stdout, stderr)
	case "purge":
		err = cmdPurge(args, getenv, stdout, stderr)
	case "compact":
		err = cmdCompact(args, getenv, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "collabd: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case err == errUsage:
		return 2
	default:
		fmt.Fprintf(stderr, "collabd %s: %v\n", cmd, err)
		return 1
	}
}

// errUsage: the flag package has already printed the problem and the usage.
var errUsage = fmt.Errorf("usage")

// cmdServe runs the server until the first signal, then shuts it down. A
// second signal exits the process at once.
func cmdServe(args []string, getenv func(string) string, stdout, stderr io.Writer, sigs <-chan os.Signal) error {
	var cfg serveConfig
	fs := newFlagSet("serve", stderr, "")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\nflags of serve:\n", usage)
		fs.PrintDefaults()
	}
	serveFlags(fs, &cfg)
	pos, err := parseFlags(fs, args, nil, getenv)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return errUsage
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	srv, err := startServer(cfg, log, stdout)
	if err != nil {
		log.Error().Err(err).Msg("start failed")
		return err
	}
	var sig os.Signal
	select {
	case sig = <-sigs:
		log.Info().Str("signal", sig.String()).Msg("signal received, stopping")
	case <-srv.serveDone:
		log.Error().Err(srv.serveErr).Msg("HTTP server stopped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.shutdown(ctx) }()
	select {
	case err = <-done:
	case sig = <-sigs:
		// bbolt is crash-safe: exiting mid-commit leaves the last committed
		// transaction; no acked op is lost.
		log.Warn().Str("signal", sig.String()).Msg("second signal, exiting now")
		os.Exit(1)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if srv.serveErr != nil && sig == nil {
		return srv.serveErr
	}
	return nil
}
