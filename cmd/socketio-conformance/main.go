// Command socketio-conformance is the small server the Socket.IO conformance
// suites talk to, built on collabd's sockets package. Its behaviour is the
// project's Socket.IO conformance contract (CONFORMANCE.md), in short:
//
//	socketio-conformance --addr 127.0.0.1:PORT [--official]
//
// It prints "listening on http://ADDR" once it accepts connections and stops
// cleanly on SIGINT or SIGTERM.
//
// Default (interop) mode: pingInterval 1000 ms, pingTimeout 1000 ms,
// connection state recovery on (window 2 minutes), namespaces "/", "/chat"
// and "/secure" (token middleware), each running the handler set H of the
// contract (echo, echo-ack, whoami, join, leave, broadcast, broadcast-room,
// to-id, request-ack, server-disconnect, drop, disconnect-reason, csr-drop).
//
// --official mode: the setup the official Engine.IO v4 and Socket.IO v5
// protocol test suites expect: pingInterval 300 ms, pingTimeout 200 ms,
// connect timeout 1000 ms, recovery off, namespaces "/" and "/custom" (emit
// "auth" on connection; "message" -> "message-back"; "message-with-ack" ->
// ack), and a plain Engine.IO echo server at /engine.io/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "listen address (host:port; port 0 picks a free one)")
	official := flag.Bool("official", false, "run the setup of the official protocol test suites")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *official, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "socketio-conformance:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down gracefully. It writes the
// "listening on" line to out once the listener accepts connections.
func run(ctx context.Context, addr string, official bool, out io.Writer) error {
	app, err := newApp(official)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: app.mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(out, "listening on http://%s\n", ln.Addr())

	select {
	case <-ctx.Done():
	case err := <-errc:
		_ = app.shutdown(context.Background())
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// The Socket.IO and Engine.IO servers first: they close every session
	// (hijacked WebSockets and held polling requests, which http.Server's
	// Shutdown would wait for), then the HTTP server drains the rest.
	err = app.shutdown(sctx)
	if herr := srv.Shutdown(sctx); herr != nil && !errors.Is(herr, http.ErrServerClosed) {
		err = errors.Join(err, herr)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
