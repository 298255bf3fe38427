//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/collabd/collabd/internal/sioclient"
)

// out receives the report.
var out io.Writer = os.Stdout

// idleResult, broadcastResult and overloadResult are what the scenarios
// measured (also printed).
type idleResult struct {
	Opened, Held, Failed int
	BytesPerConn         float64
	BytesPerConnAfterGC  float64
}

type broadcastResult struct {
	Sent               int
	Deliveries, Want   int64
	PerSecond          float64
	P50, P95, P99      time.Duration
	CPUPerThousand     time.Duration
	ReceiversConnected int
	SenderConnected    bool
}

type overloadResult struct {
	Sent                       int
	PeakRSS                    int64
	SlowDropped, NormalDropped int
	Reasons                    map[string]int // server-side reasons of dropped receivers
	SenderDropped              bool
}

// socketsConfig holds the flags of "collabd-load sockets".
type socketsConfig struct {
	scenarios  string
	idle       int
	dialConc   int
	hold       time.Duration
	queueBytes int

	serverFlags string
	serverCmd   string

	echoClients  int
	echoInterval time.Duration
	echoDur      time.Duration
	echoMax      int
	echoPayload  int

	receivers int
	bcastDur  time.Duration
	bcastMax  int
	window    int
	payload   int

	ovRate      int
	ovDur       time.Duration
	ovReceivers int
	ovPayload   int
	slowFrac    float64
	slowDelay   time.Duration
	slowRcvBuf  int

	deadline time.Duration
}

func runSockets(args []string) error {
	var c socketsConfig
	fs := flag.NewFlagSet("sockets", flag.ContinueOnError)
	fs.StringVar(&c.scenarios, "scenarios", "idle,broadcast,overload", "comma-separated scenarios to run: idle, broadcast, echo, overload")
	fs.IntVar(&c.idle, "idle", 10000, "idle: number of WebSocket clients to open and hold")
	fs.IntVar(&c.dialConc, "dial-concurrency", 64, "connections being opened at once")
	fs.DurationVar(&c.hold, "hold", 5*time.Second, "idle: how long the connections stay idle before the memory is read")
	fs.StringVar(&c.serverFlags, "server-flags", "", "extra flags for the server, space-separated, appended to its command (e.g. \"-memprofile /tmp/heap.pprof\")")
	fs.StringVar(&c.serverCmd, "server-cmd", "", "run this command as the server instead of the built-in bench server: a Socket.IO server with the same bench events (split at spaces, no quoting; "+
		"it prints \"listening on http://ADDR\" on stdout, stops on SIGTERM, and must be the server process itself, not a shell wrapper, "+
		"since its PID's RSS and CPU are measured; e.g. \"node --expose-gc cmd/collabd-load/node/server.mjs\")")
	fs.IntVar(&c.queueBytes, "queue-bytes", 0, "server per-connection outgoing queue bound, bytes (0: the sockets default)")
	fs.IntVar(&c.receivers, "receivers", 1000, "broadcast: sockets in the room that receives the broadcasts")
	fs.DurationVar(&c.bcastDur, "broadcast-duration", 10*time.Second, "broadcast: how long to broadcast")
	fs.IntVar(&c.bcastMax, "broadcast-max", 5000, "broadcast: at most this many broadcasts")
	fs.IntVar(&c.window, "window", 4, "broadcast: broadcasts in flight (awaiting their ack) at once")
	fs.IntVar(&c.payload, "payload", 64, "broadcast: padding bytes per broadcast")
	fs.IntVar(&c.echoClients, "echo-clients", 20, "echo: clients, each with one bench-echo call in flight at a time")
	// A light, steady load: the percentiles measure the server's latency,
	// not a queue in front of it.
	fs.DurationVar(&c.echoInterval, "echo-interval", 10*time.Millisecond, "echo: each client's pause between an answer and its next call")
	fs.DurationVar(&c.echoDur, "echo-duration", 10*time.Second, "echo: how long to echo")
	fs.IntVar(&c.echoMax, "echo-max", 100000, "echo: at most this many calls in all")
	fs.IntVar(&c.echoPayload, "echo-payload", 64, "echo: padding bytes per call")
	fs.IntVar(&c.ovRate, "overload-rate", 200, "overload: broadcasts per second")
	fs.DurationVar(&c.ovDur, "overload-duration", 20*time.Second, "overload: how long to broadcast")
	fs.IntVar(&c.ovReceivers, "overload-receivers", 1000, "overload: receivers in the room")
	// 8 KiB: on loopback the kernel buffers megabytes per socket, so smaller
	// messages take minutes to overflow a slow reader's queue.
	fs.IntVar(&c.ovPayload, "overload-payload", 8192, "overload: padding bytes per broadcast")
	fs.Float64Var(&c.slowFrac, "slow-fraction", 0.05, "overload: fraction of receivers that read slowly")
	fs.DurationVar(&c.slowDelay, "slow-delay", time.Second, "overload: a slow reader sleeps this long after each message")
	fs.IntVar(&c.slowRcvBuf, "slow-rcvbuf", 8192, "overload: SO_RCVBUF of the slow readers' sockets (bytes; 0 = kernel default)")
	fs.DurationVar(&c.deadline, "deadline", 10*time.Minute, "give up after this long in total")
	if err := fs.Parse(args); err != nil {
		return err
	}
	want, err := c.check()
	if err != nil {
		return err
	}
	limit, err := raiseFileLimit()
	if err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
	}
	fmt.Fprintf(out, "RLIMIT_NOFILE %d (inherited by the server)\n", limit)
	// which server and mode, for side-by-side reports
	if argv, err := serverCommand(c); err == nil {
		fmt.Fprintf(out, "server command: %s\n", strings.Join(argv, " "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.deadline)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if want["idle"] || want["broadcast"] {
		if _, _, err := runIdleAndBroadcast(ctx, c, want["idle"], want["broadcast"]); err != nil {
			return err
		}
	}
	if want["echo"] {
		if _, err := runEcho(ctx, c); err != nil {
			return err
		}
	}
	if want["overload"] {
		if _, err := runOverload(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// check validates the flags and returns the scenarios asked for.
func (c socketsConfig) check() (map[string]bool, error) {
	want := map[string]bool{}
	for _, s := range strings.Split(c.scenarios, ",") {
		s = strings.TrimSpace(s)
		switch s {
		case "idle", "broadcast", "echo", "overload":
			want[s] = true
		case "":
		default:
			return nil, fmt.Errorf("unknown scenario %q (want idle, broadcast, echo, overload)", s)
		}
	}
	if c.serverCmd != "" && c.queueBytes > 0 {
		// -queue-bytes is a flag of the built-in bench server only.
		return nil, errors.New("-queue-bytes applies to the built-in bench server, not to -server-cmd")
	}
	if want["echo"] && (c.echoClients < 1 || c.echoMax < 1) {
		return nil, errors.New("echo: -echo-clients and -echo-max must be at least 1")
	}
	return want, nil
}

// serverCommand is the command line of the scenarios' server: -server-cmd,
// or this executable's serve-sockets; -server-flags go at the end of either.
func serverCommand(c socketsConfig) ([]string, error) {
	extra := strings.Fields(c.serverFlags)
	if c.serverCmd != "" {
		return append(strings.Fields(c.serverCmd), extra...), nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	argv := []string{exe, "serve-sockets", "-addr", "127.0.0.1:0"}
	if c.queueBytes > 0 {
		argv = append(argv, "-queue-bytes", strconv.Itoa(c.queueBytes))
	}
	return append(argv, extra...), nil
}

// startServer starts the scenarios' server and waits until it listens.
func startServer(ctx context.Context, c socketsConfig) (*child, error) {
	argv, err := serverCommand(c)
	if err != nil {
		return nil, err
	}
	return startChild(ctx, 30*time.Second, argv)
}

// recorder collects what one client receives. onEvent runs on the client's
// reader goroutine.
type recorder struct {
	slowDelay time.Duration // sleep after each message (a slow reader)
	count     atomic.Int64  // bench-msg events received
	total     *atomic.Int64 // shared count across recorders, may be nil

	mu  sync.Mutex      // guards lat
	lat []time.Duration // delivery latencies, at most maxLat
}

const maxLat = 20000

func (r *recorder) onEvent(name string, args []byte) {
	if name != "bench-msg" {
		return
	}
	now := time.Now().UnixNano()
	t := leadingInt(args)
	r.count.Add(1)
	if r.total != nil {
		r.total.Add(1)
	}
	r.mu.Lock()
	if len(r.lat) < maxLat && t > 0 {
		r.lat = append(r.lat, time.Duration(now-t))
	}
	r.mu.Unlock()
	if r.slowDelay > 0 {
		time.Sleep(r.slowDelay)
	}
}

func (r *recorder) reset() {
	r.count.Store(0)
	r.mu.Lock()
	r.lat = r.lat[:0]
	r.mu.Unlock()
}

func (r *recorder) latencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lat)
}

// leadingInt parses the integer at the start of a JSON array "[123,...".
func leadingInt(args []byte) int64 {
	if len(args) < 2 || args[0] != '[' {
		return 0
	}
	var n int64
	for _, b := range args[1:] {
		if b < '0' || b > '9' {
			break
		}
		n = n*10 + int64(b-'0')
	}
	return n
}

// dialMany opens n clients with at most conc handshakes at once; the result
// has a nil entry for each client that failed to connect.
func dialMany(ctx context.Context, n, conc int, cfg func(i int) sioclient.Config) ([]*sioclient.Client, int, error) {
	clients := make([]*sioclient.Client, n)
	var failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				cl, err := sioclient.Dial(ctx, cfg(i))
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				clients[i] = cl
			}
		}()
	}
	wg.Wait()
	return clients, int(failed.Load()), firstErr
}

// connected returns the clients that did connect, with their recorders.
func connected(cls []*sioclient.Client, recs []*recorder) ([]*sioclient.Client, []*recorder) {
	var oc []*sioclient.Client
	var or []*recorder
	for i, cl := range cls {
		if cl != nil {
			oc = append(oc, cl)
			or = append(or, recs[i])
		}
	}
	return oc, or
}

func closeAll(cls []*sioclient.Client) {
	var wg sync.WaitGroup
	for _, cl := range cls {
		wg.Add(1)
		go func() { defer wg.Done(); cl.Close() }()
	}
	wg.Wait()
}

func alive(cls []*sioclient.Client) int {
	n := 0
	for _, cl := range cls {
		if cl.Err() == nil {
			n++
		}
	}
	return n
}

const mib = 1 << 20

func runIdleAndBroadcast(ctx context.Context, c socketsConfig, doIdle, doBcast bool) (*idleResult, *broadcastResult, error) {
	srv, err := startServer(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err := srv.stop(30 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "stopping server:", err)
		}
	}()
	fmt.Fprintf(out, "server pid %d on %s\n", srv.PID, srv.Addr)
	time.Sleep(500 * time.Millisecond)
	// One extra client asks the server for its runtime figures (bench-gc):
	// once before the measured clients connect, as the baseline, and once
	// after. It is connected during both RSS readings, so the delta is the
	// measured clients' alone.
	var base benchFigures
	var figClient *sioclient.Client
	if doIdle {
		figClient, err = sioclient.Dial(ctx, sioclient.Config{Addr: srv.Addr})
		if err != nil {
			return nil, nil, err
		}
		defer figClient.Close()
		if base, err = benchGC(figClient); err != nil {
			return nil, nil, err
		}
	}
	rss0, _, err := procMem(srv.PID)
	if err != nil {
		return nil, nil, err
	}
	n := c.receivers
	if doIdle && c.idle > n {
		n = c.idle
	}
	recs := make([]*recorder, n)
	for i := range recs {
		recs[i] = &recorder{}
	}
	start := time.Now()
	clients, failed, ferr := dialMany(ctx, n, c.dialConc, func(i int) sioclient.Config {
		return sioclient.Config{Addr: srv.Addr, OnEvent: recs[i].onEvent}
	})
	clients, recs = connected(clients, recs)
	defer closeAll(clients)
	dialTime := time.Since(start)
	if failed > 0 {
		fmt.Fprintf(out, "  %d connections failed; first error: %v\n", failed, ferr)
	}
	var ir *idleResult
	if doIdle {
		time.Sleep(c.hold)
		rss1, _, err := procMem(srv.PID)
		if err != nil {
			return nil, nil, err
		}
		held := alive(clients)
		ir = &idleResult{Opened: n, Held: held, Failed: failed}
		fmt.Fprintf(out, "\n== idle: %d WebSocket Socket.IO clients (namespace /)\n", n)
		fmt.Fprintf(out, "  opened in %v, held after %v idle: %d (failed %d)\n", dialTime.Round(time.Millisecond), c.hold, held, failed)
		fmt.Fprintf(out, "  server RSS: %.1f MiB before, %.1f MiB with the connections, after %v idle\n", float64(rss0)/mib, float64(rss1)/mib, c.hold)
		if held > 0 {
			ir.BytesPerConn = float64(rss1-rss0) / float64(held)
			fmt.Fprintf(out, "  server memory per idle connection: %.2f KiB (RSS delta / %d, no forced GC)\n", ir.BytesPerConn/1024, held)
		}
		// The same after a forced GC that returns free memory to the OS: what
		// the connections retain, without the garbage of their handshakes.
		if fig, err := benchGC(figClient); err == nil && held > 0 {
			if rss2, _, err := procMem(srv.PID); err == nil {
				ir.BytesPerConnAfterGC = float64(rss2-rss0) / float64(held)
				fmt.Fprintf(out, "  after %s: RSS %.1f MiB, %.2f KiB per idle connection\n",
					gcDescription(fig), float64(rss2)/mib, ir.BytesPerConnAfterGC/1024)
			}
			if line := figuresLine(base, fig, held); line != "" {
				fmt.Fprintf(out, "  %s\n", line)
			}
		} else if err != nil {
			fmt.Fprintln(out, "  bench-gc:", err)
		}
	}
	if !doBcast {
		return ir, nil, nil
	}
	if len(clients) < c.receivers {
		return ir, nil, fmt.Errorf("broadcast: only %d clients connected, need %d receivers", len(clients), c.receivers)
	}
	br, err := runBroadcast(ctx, c, srv, clients[:c.receivers], recs[:c.receivers], len(clients))
	return ir, br, err
}

// joinRoom makes every client join room (acknowledged), a few at a time.
func joinRoom(clients []*sioclient.Client, room string) error {
	var wg sync.WaitGroup
	errc := make(chan error, len(clients))
	sem := make(chan struct{}, 64)
	for _, cl := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := cl.Call(10*time.Second, "bench-join", room); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func percentiles(lat []time.Duration) (p50, p95, p99, max time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	return at(0.50), at(0.95), at(0.99), lat[len(lat)-1]
}

func runBroadcast(ctx context.Context, c socketsConfig, srv *child, receivers []*sioclient.Client, recs []*recorder, connected int) (*broadcastResult, error) {
	if err := joinRoom(receivers, "bench"); err != nil {
		return nil, fmt.Errorf("joining the bench room: %w", err)
	}
	sender, err := sioclient.Dial(ctx, sioclient.Config{Addr: srv.Addr})
	if err != nil {
		return nil, err
	}
	defer sender.Close()
	pad := strings.Repeat("x", c.payload)
	var total atomic.Int64
	for _, r := range recs {
		r.total = &total
	}
	// warm up
	for i := 0; i < 20; i++ {
		if _, err := sender.Call(10*time.Second, "bench-bcast", "bench", time.Now().UnixNano(), pad); err != nil {
			return nil, fmt.Errorf("warm-up broadcast: %w", err)
		}
	}
	waitDeliveries(&total, int64(20*len(recs)), 5*time.Second)
	for _, r := range recs {
		r.reset()
	}
	total.Store(0)

	user0, sys0, err := procCPUSplit(srv.PID)
	if err != nil {
		return nil, err
	}
	sem := make(chan struct{}, c.window)
	start := time.Now()
	end := start.Add(c.bcastDur)
	sent := 0
	for sent < c.bcastMax && time.Now().Before(end) && ctx.Err() == nil && sender.Err() == nil {
		sem <- struct{}{}
		err := sender.EmitAck(func([]byte) { <-sem }, "bench-bcast", "bench", time.Now().UnixNano(), pad)
		if err != nil {
			return nil, fmt.Errorf("broadcast: %w", err)
		}
		sent++
	}
	want := int64(sent * len(recs))
	got := waitDeliveries(&total, want, 10*time.Second)
	elapsed := time.Since(start)
	user1, sys1, err := procCPUSplit(srv.PID)
	if err != nil {
		return nil, err
	}
	var lat []time.Duration
	for _, r := range recs {
		lat = append(lat, r.latencies()...)
	}
	p50, p95, p99, pmax := percentiles(lat)
	fmt.Fprintf(out, "\n== broadcast: 1 sender, %d receivers in a room, %d connections open, window %d, %d-byte padding\n",
		len(recs), connected+1, c.window, c.payload)
	fmt.Fprintf(out, "  broadcasts sent %d, deliveries %d of %d in %v\n", sent, got, want, elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "  deliveries per second: %.0f\n", float64(got)/elapsed.Seconds())
	fmt.Fprintf(out, "  delivery latency: p50 %v, p95 %v, p99 %v, max %v (%d samples)\n",
		p50.Round(time.Microsecond), p95.Round(time.Microsecond), p99.Round(time.Microsecond), pmax.Round(time.Microsecond), len(lat))
	res := &broadcastResult{Sent: sent, Deliveries: got, Want: want, PerSecond: float64(got) / elapsed.Seconds(),
		P50: p50, P95: p95, P99: p99, ReceiversConnected: alive(receivers), SenderConnected: sender.Err() == nil}
	if got > 0 {
		user, system := user1-user0, sys1-sys0
		cpu := user + system
		res.CPUPerThousand = time.Duration(float64(cpu) / float64(got) * 1000)
		perK := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(got) * 1000 }
		fmt.Fprintf(out, "  server CPU: %v total, %.2f ms per 1,000 deliveries (user %.2f ms, system %.2f ms)\n",
			cpu, perK(cpu), perK(user), perK(system))
	}
	fmt.Fprintf(out, "  receivers still connected: %d of %d, sender connected: %v\n", res.ReceiversConnected, len(receivers), res.SenderConnected)
	return res, nil
}

// waitDeliveries waits until total reaches want or timeout passes; it
// returns the count reached.
func waitDeliveries(total *atomic.Int64, want int64, timeout time.Duration) int64 {
	deadline := time.Now().Add(timeout)
	for total.Load() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return total.Load()
}

func runOverload(ctx context.Context, c socketsConfig) (*overloadResult, error) {
	srv, err := startServer(ctx, c)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := srv.stop(30 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "stopping server:", err)
		}
	}()
	nslow := int(float64(c.ovReceivers) * c.slowFrac)
	recs := make([]*recorder, c.ovReceivers)
	for i := range recs {
		recs[i] = &recorder{}
		if i < nslow {
			recs[i].slowDelay = c.slowDelay
		}
	}
	receivers, failed, ferr := dialMany(ctx, c.ovReceivers, c.dialConc, func(i int) sioclient.Config {
		cfg := sioclient.Config{Addr: srv.Addr, OnEvent: recs[i].onEvent}
		if i < nslow {
			cfg.SocketRecvBuffer = c.slowRcvBuf
		}
		return cfg
	})
	if failed > 0 {
		all, _ := connected(receivers, recs)
		closeAll(all)
		return nil, fmt.Errorf("overload: %d receivers failed to connect: %v", failed, ferr)
	}
	defer closeAll(receivers)
	if err := joinRoom(receivers, "bench"); err != nil {
		return nil, fmt.Errorf("joining the bench room: %w", err)
	}
	sender, err := sioclient.Dial(ctx, sioclient.Config{Addr: srv.Addr})
	if err != nil {
		return nil, err
	}
	defer sender.Close()
	rssStart, _, _ := procMem(srv.PID)

	// sample RSS every 100 ms
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				if rss, _, err := procMem(srv.PID); err == nil && rss > peak.Load() {
					peak.Store(rss)
				}
			}
		}
	}()
	cpu0, _ := procCPU(srv.PID)
	pad := strings.Repeat("x", c.ovPayload)
	tick := time.NewTicker(time.Second / time.Duration(c.ovRate))
	start := time.Now()
	sent := 0
	maxSends := int(c.ovDur.Seconds()*float64(c.ovRate)) + 1
	for sent < maxSends && time.Since(start) < c.ovDur && ctx.Err() == nil {
		<-tick.C
		if sender.Err() != nil {
			break
		}
		if err := sender.Emit("bench-bcast", "bench", time.Now().UnixNano(), pad); err != nil {
			break
		}
		sent++
	}
	tick.Stop()
	sendTime := time.Since(start)
	time.Sleep(3 * time.Second) // let the queues drain or the slow readers be dropped
	cpu1, _ := procCPU(srv.PID)
	close(stopSampling)
	<-sampled
	_, hwm, _ := procMem(srv.PID)
	if hwm > peak.Load() {
		peak.Store(hwm)
	}

	// server-side disconnect reasons
	reasons := map[string]string{}
	senderOK := sender.Err() == nil
	if senderOK {
		raw, err := sender.Call(10*time.Second, "bench-stats")
		if err == nil {
			var ans []struct {
				Reasons map[string]string `json:"reasons"`
			}
			if err := json.Unmarshal(raw, &ans); err == nil && len(ans) == 1 {
				reasons = ans[0].Reasons
			}
		} else {
			fmt.Fprintln(out, "  bench-stats:", err)
		}
	}
	type tally struct {
		dropped int
		why     map[string]int
		lat     []time.Duration
		got     int64
	}
	count := func(cls []*sioclient.Client, rs []*recorder) tally {
		t := tally{why: map[string]int{}}
		for i, cl := range cls {
			t.got += rs[i].count.Load()
			// The server's record decides: a slow client may not have read
			// up to the close yet.
			r, droppedByServer := reasons[cl.ID]
			if droppedByServer || cl.Err() != nil {
				t.dropped++
				if r == "" {
					r = "(no server reason recorded; client saw: " + shortErr(cl.Err()) + ")"
				}
				t.why[r]++
			} else {
				t.lat = append(t.lat, rs[i].latencies()...)
			}
		}
		return t
	}
	// every receiver connected (checked above), so the first nslow are the slow ones
	slow := count(receivers[:nslow], recs[:nslow])
	fast := count(receivers[nslow:], recs[nslow:])
	fmt.Fprintf(out, "\n== overload: %d broadcasts/s for %v to %d receivers (%d slow: %v per message, SO_RCVBUF %d), %d-byte padding\n",
		c.ovRate, c.ovDur, c.ovReceivers, nslow, c.slowDelay, c.slowRcvBuf, c.ovPayload)
	fmt.Fprintf(out, "  broadcasts sent %d in %v (%.0f/s)\n", sent, sendTime.Round(time.Millisecond), float64(sent)/sendTime.Seconds())
	fmt.Fprintf(out, "  server RSS: %.1f MiB at start, peak %.1f MiB\n", float64(rssStart)/mib, float64(peak.Load())/mib)
	fmt.Fprintf(out, "  server CPU during the run: %v\n", (cpu1 - cpu0).Round(time.Millisecond))
	byReason := map[string]int{}
	for _, r := range reasons {
		byReason[r]++
	}
	fmt.Fprintf(out, "  server-side disconnects recorded: %d %v\n", len(reasons), byReason)
	fmt.Fprintf(out, "  slow receivers: %d deliveries in total\n", slow.got)
	fmt.Fprintf(out, "  slow receivers disconnected: %d of %d %v\n", slow.dropped, nslow, slow.why)
	fmt.Fprintf(out, "  normal receivers disconnected: %d of %d %v\n", fast.dropped, len(receivers)-nslow, fast.why)
	p50, p95, p99, pmax := percentiles(fast.lat)
	fmt.Fprintf(out, "  normal receivers still connected: deliveries %d, latency p50 %v p95 %v p99 %v max %v\n",
		fast.got, p50.Round(time.Microsecond), p95.Round(time.Microsecond), p99.Round(time.Microsecond), pmax.Round(time.Microsecond))
	res := &overloadResult{Sent: sent, PeakRSS: peak.Load(), SlowDropped: slow.dropped, NormalDropped: fast.dropped,
		Reasons: maps.Clone(slow.why)}
	for k, v := range fast.why {
		res.Reasons[k] += v
	}
	if r, ok := reasons[sender.ID]; ok || !senderOK {
		res.SenderDropped = true
		fmt.Fprintf(out, "  SENDER DROPPED: server reason %q, client error %v\n", r, sender.Err())
	} else {
		fmt.Fprintf(out, "  sender still connected: yes\n")
	}
	return res, nil
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && errors.Is(err, sioclient.ErrServerDisconnect) {
		return s[i+2:]
	}
	return string(bytes.TrimSpace([]byte(s)))
}

// benchFigures are the numbers of a bench-gc answer: the Go bench server's
// runtime/metrics, or another server's own (the Node one's
// process.memoryUsage()). Values that are not numbers are left out.
type benchFigures map[string]float64

// benchGC makes the bench server collect garbage and return its runtime
// figures.
func benchGC(cl *sioclient.Client) (benchFigures, error) {
	raw, err := cl.Call(30*time.Second, "bench-gc")
	if err != nil {
		return nil, fmt.Errorf("bench-gc: %w", err)
	}
	var ans []map[string]any
	if err := json.Unmarshal(raw, &ans); err != nil || len(ans) != 1 {
		return nil, fmt.Errorf("bench-gc answer %s: %v", raw, err)
	}
	fig := benchFigures{}
	for k, v := range ans[0] {
		if f, ok := v.(float64); ok {
			fig[k] = f
		}
	}
	return fig, nil
}

// perConnFigures are the bench-gc figures the idle report divides by the
// connections held, as label and key; a server reports some of them.
var perConnFigures = []struct{ label, key string }{
	{"heap objects", "/memory/classes/heap/objects:bytes"},
	{"heap unused", "/memory/classes/heap/unused:bytes"},
	{"goroutine stacks", "/memory/classes/heap/stacks:bytes"},
	{"V8 heap used", "heapUsed"},
	{"V8 heap total", "heapTotal"},
	{"external (buffers, native objects)", "external"},
}

// figuresLine reports the change of the server's own memory figures per
// connection, with only the figures both answers have ("" if none).
func figuresLine(base, fig benchFigures, held int) string {
	var parts []string
	for _, f := range perConnFigures {
		b, ok0 := base[f.key]
		a, ok1 := fig[f.key]
		if ok0 && ok1 && held > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f B", f.label, (a-b)/float64(held)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	source := "process.memoryUsage()"
	if _, ok := fig["/sched/goroutines:goroutines"]; ok {
		source = "runtime/metrics"
	}
	line := source + " after it, per connection: " + strings.Join(parts, ", ")
	if n, ok := fig["/sched/goroutines:goroutines"]; ok {
		line += fmt.Sprintf("; %.0f goroutines in all", n)
	}
	if n, ok := fig["/gc/gogc:percent"]; ok {
		line += fmt.Sprintf("; GOGC %.0f", n)
	}
	return line
}

// gcDescription says what bench-gc did. The Node server reports the GC
// cycles it ran as gcCycles (none unless node runs with --expose-gc); the Go
// bench server has no such key.
func gcDescription(fig benchFigures) string {
	n, ok := fig["gcCycles"]
	switch {
	case !ok:
		return "a FORCED GC (3 cycles + FreeOSMemory)"
	case n == 0:
		return "bench-gc WITHOUT a GC (the server exposes none: start node with --expose-gc)"
	default:
		return fmt.Sprintf("a FORCED GC (%.0f cycles)", n)
	}
}
