//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/collabd/collabd/sockets"
)

// benchServer is the Socket.IO server the "sockets" scenarios start as a
// child process. Handlers (namespace "/"):
//
//	bench-join (room, ack)          join room, then ack()
//	bench-bcast (room, t, pad, ack?) emit bench-msg (t, pad) to room's members but the sender, then ack()
//	bench-echo (args..., ack)       ack(args...), the arguments unchanged
//	bench-stats (ack)               ack({reasons: {socketID: server-side disconnect reason}})
//	bench-gc (ack)                  run the garbage collector (3 cycles), return free memory to the OS, then ack(runtime figures)
type benchServer struct {
	memProfile string // heap profile path written at bench-gc, or ""

	mu      sync.Mutex        // guards reasons
	reasons map[string]string // socket id -> disconnect reason
}

// maxBenchReasons bounds the reason table.
const maxBenchReasons = 1_000_000

func serveSockets(args []string) error {
	fs := flag.NewFlagSet("serve-sockets", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	queueBytes := fs.Int("queue-bytes", 0, "per-connection write queue bound, bytes (0: the sockets default)")
	pingInterval := fs.Duration("ping-interval", 25*time.Second, "Engine.IO ping interval")
	pingTimeout := fs.Duration("ping-timeout", 20*time.Second, "Engine.IO ping timeout")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file at each bench-gc")
	blocking := fs.Bool("blocking-reads", false, "read each WebSocket with a blocking goroutine (sockets.Config.BlockingReads)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	b := &benchServer{reasons: make(map[string]string), memProfile: *memProfile}
	srv, err := sockets.New(sockets.Config{
		PingInterval:    *pingInterval,
		PingTimeout:     *pingTimeout,
		WriteQueueBytes: *queueBytes,
		BlockingReads:   *blocking,
	})
	if err != nil {
		return err
	}
	b.register(srv)
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Printf("listening on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if herr := hs.Shutdown(sctx); herr != nil {
		err = errors.Join(err, herr)
	}
	return err
}

// register installs the handlers once for the namespace (Server.On), not
// per socket: a server with many sockets saves a handler map per socket.
func (b *benchServer) register(srv *sockets.Server) {
	srv.OnConnection(func(s *sockets.Socket) {
		s.OnDisconnect(b.onDisconnect)
	})
	srv.On("bench-join", func(s *sockets.Socket, ev *sockets.Event) {
		var room string
		if ev.Decode(&room) != nil {
			return
		}
		s.Join(room)
		if ev.Ack.Wanted() {
			_ = ev.Ack.Reply()
		}
	})
	srv.On("bench-bcast", func(s *sockets.Socket, ev *sockets.Event) {
		var room string
		if ev.Decode(&room) != nil {
			return
		}
		// the raw JSON arguments go out as they came: no re-encoding
		_ = s.To(room).Emit("bench-msg", ev.Raw(1), ev.Raw(2))
		if ev.Ack.Wanted() {
			_ = ev.Ack.Reply()
		}
	})
	srv.On("bench-echo", func(s *sockets.Socket, ev *sockets.Event) {
		if !ev.Ack.Wanted() {
			return
		}
		if len(ev.Attachments()) > 0 {
			_ = ev.Ack.Reply(ev.Values()...) // binary goes back as attachments
			return
		}
		// the raw JSON arguments go back as they came: no re-encoding
		raw := make([]json.RawMessage, ev.Len())
		for i := range raw {
			raw[i] = ev.Raw(i)
		}
		_ = ev.Ack.ReplyRaw(raw...)
	})
	srv.On("bench-gc", func(s *sockets.Socket, ev *sockets.Event) {
		// Stacks shrink by half per GC at most: a few cycles let idle
		// readers' stacks reach the size they keep in a long-lived server
		// (where the runtime forces a GC at least every 2 minutes).
		for range 3 {
			runtime.GC()
		}
		debug.FreeOSMemory()
		if b.memProfile != "" {
			if f, err := os.Create(b.memProfile); err == nil {
				_ = pprof.WriteHeapProfile(f)
				_ = f.Close()
			}
		}
		_ = ev.Ack.Reply(runtimeFigures())
	})
	srv.On("bench-stats", func(s *sockets.Socket, ev *sockets.Event) {
		b.mu.Lock()
		reasons := make(map[string]string, len(b.reasons))
		for k, v := range b.reasons {
			reasons[k] = v
		}
		b.mu.Unlock()
		_ = ev.Ack.Reply(map[string]any{"reasons": reasons})
	})
}

func (b *benchServer) onDisconnect(s *sockets.Socket, reason string) {
	b.mu.Lock()
	if len(b.reasons) < maxBenchReasons {
		b.reasons[s.ID()] = reason
	}
	b.mu.Unlock()
}

// runtimeFigures reads the runtime's own account of the server's memory
// (runtime/metrics), for the load program's report.
func runtimeFigures() map[string]any {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/os-stacks:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/gc/stack/starting-size:bytes"},
		{Name: "/gc/gogc:percent"},
		{Name: "/sched/goroutines:goroutines"},
	}
	metrics.Read(samples)
	out := make(map[string]any, len(samples))
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			out[s.Name] = s.Value.Uint64()
		}
	}
	return out
}
