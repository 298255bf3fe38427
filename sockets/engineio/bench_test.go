package engineio

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkSendTo1000 sends one shared Message to 1,000 WebSocket
// connections per iteration and waits until every client has read it: the
// broadcast path from Send to the socket (clients in the same process).
func BenchmarkSendTo1000(b *testing.B) {
	const n = 1000
	h := newHarness(b, Config{}, false)
	var received atomic.Int64
	var want atomic.Int64
	signal := make(chan struct{}, 1)
	conns := make([]*Conn, 0, n)
	var wg sync.WaitGroup
	for range n {
		ws, _, err := websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket"), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil { // open
			b.Fatal(err)
		}
		conns = append(conns, h.nextConn(b))
		wg.Go(func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
				if received.Add(1) == want.Load() {
					signal <- struct{}{}
				}
			}
		})
	}
	b.Cleanup(wg.Wait)
	payload := []byte(`2["doc:op",{"doc":"notes","rev":1234,"op":[120,"hello",-3],"client":"c1","seq":7}]`)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		want.Add(n)
		msg := NewTextMessage(payload)
		for _, c := range conns {
			if err := c.Send(msg); err != nil {
				b.Fatal(err)
			}
		}
		<-signal
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(received.Load())/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(received.Load()), "ns/delivery")
}

// BenchmarkSendEnqueue1000 measures only the broadcaster's side: Send of one
// Message to 1,000 polling sessions (queues drained between iterations).
func BenchmarkSendEnqueue1000(b *testing.B) {
	srv := NewServer(Config{})
	b.Cleanup(func() { _ = srv.Shutdown(b.Context()) })
	conns := make([]*Conn, 1000)
	for i := range conns {
		c := srv.newConn(httptestRequest(), transportPolling)
		if !srv.start(c) {
			b.Fatal("start")
		}
		conns[i] = c
	}
	msg := NewTextMessage([]byte(`2["x",1]`))
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range conns {
			if err := c.Send(msg); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for _, c := range conns {
			c.mu.Lock()
			c.queue = c.queue[:0]
			c.queued = 0
			c.mu.Unlock()
		}
		b.StartTimer()
	}
}

// BenchmarkIdleWebSocketMemory opens ENGINEIO_MEM_CONNS (default 2000) idle
// WebSocket sessions and reports the Go memory (heap in use + goroutine
// stacks) added per connection. The clients are raw TCP connections in the
// same process without goroutines, so the figure is the server's cost plus
// a few hundred bytes of client socket per connection; kernel socket
// buffers are not counted.
func BenchmarkIdleWebSocketMemory(b *testing.B) {
	n := 2000
	if s := os.Getenv("ENGINEIO_MEM_CONNS"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v > 0 {
			n = v
		}
	}
	if os.Getenv("ENGINEIO_MEM_PROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	for b.Loop() {
		h := newHarness(b, Config{}, false)
		addr := strings.TrimPrefix(h.ts.URL, "http://")
		heap0, stack0 := memInUse()
		goroutines := runtime.NumGoroutine()
		clients := make([]net.Conn, 0, n)
		for range n {
			clients = append(clients, rawWebSocket(b, addr))
		}
		waitForLong(b, "every session", func() bool { return h.srv.Count() == n })
		// Drain the OnConnection notifications of the harness.
		for range n {
			<-h.conns
		}
		heap1, stack1 := memInUse()
		if path := os.Getenv("ENGINEIO_MEM_PROFILE"); path != "" {
			if f, err := os.Create(path); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		b.ReportMetric(float64(heap1+stack1-heap0-stack0)/float64(n), "B/conn")
		b.ReportMetric(float64(heap1-heap0)/float64(n), "heapB/conn")
		b.ReportMetric(float64(stack1-stack0)/float64(n), "stackB/conn")
		b.ReportMetric(float64(runtime.NumGoroutine()-goroutines)/float64(n), "goroutines/conn")
		for _, c := range clients {
			c.Close()
		}
		waitForLong(b, "every session to close", func() bool { return h.srv.Count() == 0 })
	}
}

// memInUse returns heap in use and stacks after a GC.
func memInUse() (heap, stack int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), int64(ms.StackInuse)
}

// rawWebSocket opens an Engine.IO WebSocket session with a bare TCP
// connection and reads up to the open packet.
func rawWebSocket(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintf(c, "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"+
		"Sec-WebSocket-Version: 13\r\n\r\n", addr)
	var got []byte
	buf := make([]byte, 512)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !bytes.Contains(got, []byte(`"maxPayload":`)) || !bytes.HasSuffix(got, []byte("}")) {
		k, err := c.Read(buf)
		if err != nil {
			tb.Fatalf("raw websocket: %v (read %q)", err, got)
		}
		got = append(got, buf[:k]...)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c
}

// waitForLong is waitFor with a minute.
func waitForLong(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
