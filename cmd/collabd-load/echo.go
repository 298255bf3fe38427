//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/collabd/collabd/internal/sioclient"
)

// echoResult is what the echo scenario measured (also printed).
type echoResult struct {
	Clients               int
	Sent, Completed       int
	Failed, Mismatched    int // calls without an answer; answers unlike the call
	PerSecond             float64
	P50, P95, P99, Max    time.Duration
	CPUPerThousand        time.Duration
	CPUUser, CPUSystem    time.Duration
	Elapsed               time.Duration
	ClientsStillConnected int
}

const (
	// echoWarmup calls per client come before the window, so that the
	// server's first calls (a JIT's compilation, pools filling) are not
	// measured.
	echoWarmup = 10
	// echoTimeout bounds one call: far above any answer of a working server.
	echoTimeout = 10 * time.Second
)

// echoer is one client's part of the echo scenario.
type echoer struct {
	sent, failed, mismatched int
	rtt                      []time.Duration
}

// run makes bench-echo calls one at a time, pausing interval after each
// answer, until end, the end of ctx, the first failed call, or the shared
// budget of calls is spent. seq numbers the calls across clients.
func (e *echoer) run(ctx context.Context, cl *sioclient.Client, pad string, interval time.Duration, end time.Time, budget, seq *atomic.Int64) {
	for time.Now().Before(end) && ctx.Err() == nil && budget.Add(-1) >= 0 {
		n := seq.Add(1)
		e.sent++
		t0 := time.Now()
		ans, err := cl.Call(echoTimeout, "bench-echo", n, pad)
		rtt := time.Since(t0)
		if err != nil {
			e.failed++
			return // the connection is gone or the server stuck: stop this client
		}
		e.rtt = append(e.rtt, rtt)
		if !bytes.Equal(ans, echoArgs(n, pad)) {
			e.mismatched++
		}
		time.Sleep(interval)
	}
}

// echoArgs is the JSON array a bench-echo call of (n, pad) sends, which the
// server acks back unchanged.
func echoArgs(n int64, pad string) []byte {
	b, _ := json.Marshal([]any{n, pad})
	return b
}

// warmEcho makes echoWarmup calls on every client, the clients in parallel.
func warmEcho(clients []*sioclient.Client, pad string) error {
	var wg sync.WaitGroup
	errc := make(chan error, len(clients))
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range echoWarmup {
				if _, err := cl.Call(echoTimeout, "bench-echo", 0, pad); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// runEcho measures the round trip of an acknowledged event that the server
// answers with its arguments, and the server's CPU time per echo, on a
// server of its own with c.echoClients clients.
func runEcho(ctx context.Context, c socketsConfig) (*echoResult, error) {
	srv, err := startServer(ctx, c)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := srv.stop(30 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "stopping server:", err)
		}
	}()
	fmt.Fprintf(out, "server pid %d on %s\n", srv.PID, srv.Addr)
	clients, failed, ferr := dialMany(ctx, c.echoClients, c.dialConc, func(int) sioclient.Config {
		return sioclient.Config{Addr: srv.Addr}
	})
	if failed > 0 {
		closeAll(slices.DeleteFunc(clients, func(cl *sioclient.Client) bool { return cl == nil }))
		return nil, fmt.Errorf("echo: %d clients failed to connect: %v", failed, ferr)
	}
	defer closeAll(clients)
	pad := strings.Repeat("x", c.echoPayload)
	if err := warmEcho(clients, pad); err != nil {
		return nil, fmt.Errorf("echo warm-up: %w", err)
	}

	user0, sys0, err := procCPUSplit(srv.PID)
	if err != nil {
		return nil, err
	}
	echoers := make([]echoer, len(clients))
	var budget, seq atomic.Int64
	budget.Store(int64(c.echoMax))
	start := time.Now()
	end := start.Add(c.echoDur)
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			echoers[i].run(ctx, cl, pad, c.echoInterval, end, &budget, &seq)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	user1, sys1, err := procCPUSplit(srv.PID)
	if err != nil {
		return nil, err
	}
	res := tallyEcho(echoers, elapsed, user1-user0, sys1-sys0)
	res.ClientsStillConnected = alive(clients)
	reportEcho(c, res)
	return res, nil
}

// tallyEcho adds up the clients' calls and the server's CPU time.
func tallyEcho(echoers []echoer, elapsed, user, system time.Duration) *echoResult {
	res := &echoResult{Clients: len(echoers), Elapsed: elapsed, CPUUser: user, CPUSystem: system}
	var rtt []time.Duration
	for _, e := range echoers {
		res.Sent += e.sent
		res.Failed += e.failed
		res.Mismatched += e.mismatched
		rtt = append(rtt, e.rtt...)
	}
	res.Completed = len(rtt)
	res.PerSecond = float64(res.Completed) / elapsed.Seconds()
	res.P50, res.P95, res.P99, res.Max = percentiles(rtt)
	if res.Completed > 0 {
		res.CPUPerThousand = time.Duration(float64(user+system) / float64(res.Completed) * 1000)
	}
	return res
}

func reportEcho(c socketsConfig, r *echoResult) {
	us := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
	fmt.Fprintf(out, "\n== echo: %d clients, one bench-echo call with ack in flight each, %v pause after each answer, %d-byte padding\n",
		r.Clients, c.echoInterval, c.echoPayload)
	fmt.Fprintf(out, "  echoes completed %d of %d sent in %v (no answer %d, answers unlike the call %d)\n",
		r.Completed, r.Sent, r.Elapsed.Round(time.Millisecond), r.Failed, r.Mismatched)
	fmt.Fprintf(out, "  echoes per second: %.0f\n", r.PerSecond)
	fmt.Fprintf(out, "  round trip: p50 %v, p95 %v, p99 %v, max %v (%d samples)\n",
		us(r.P50), us(r.P95), us(r.P99), us(r.Max), r.Completed)
	if r.Completed > 0 {
		perK := func(d time.Duration) float64 {
			return float64(d) / float64(time.Millisecond) / float64(r.Completed) * 1000
		}
		cpu := r.CPUUser + r.CPUSystem
		fmt.Fprintf(out, "  server CPU: %v total, %.2f ms per 1,000 echoes (user %.2f ms, system %.2f ms)\n",
			cpu, perK(cpu), perK(r.CPUUser), perK(r.CPUSystem))
	}
	fmt.Fprintf(out, "  clients still connected: %d of %d\n", r.ClientsStillConnected, r.Clients)
}
