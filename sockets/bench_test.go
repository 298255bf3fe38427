package sockets

import (
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// benchClients connects n WebSocket clients to "/" (joined to "room") that count the
// messages they receive and answer pings.
func benchClients(b *testing.B, url string, srv *Server, n int) *atomic.Int64 {
	b.Helper()
	joined := make(chan struct{}, n)
	srv.OnConnection(func(s *Socket) {
		s.Join("room")
		joined <- struct{}{}
	})
	var received atomic.Int64
	var wg sync.WaitGroup
	u := "ws" + strings.TrimPrefix(url, "http") + "/socket.io/?EIO=4&transport=websocket"
	conns := make([]*websocket.Conn, 0, n)
	for range n {
		ws, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, ws)
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		if err := ws.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
			b.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if len(data) == 1 && data[0] == '2' {
					_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
					continue
				}
				received.Add(1)
			}
		})
	}
	for range n {
		<-joined
	}
	b.Cleanup(func() {
		for _, ws := range conns {
			ws.Close()
		}
		wg.Wait()
	})
	return &received
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBroadcast1000 broadcasts an event to a room of 1,000 WebSocket clients over
// loopback. ns/op is the time per broadcast (1,000 deliveries), waiting for the clients to
// keep up every 32 broadcasts; cpu-ms/1000-deliveries is the process CPU time (server AND
// the 1,000 in-process client readers) per 1,000 deliveries, an upper bound of the server's.
func BenchmarkBroadcast1000(b *testing.B) {
	const n = 1000
	srv, url := newTestServer(b, Config{WriteQueueSize: 256})
	received := benchClients(b, url, srv, n)
	payload := map[string]any{"doc": "readme", "rev": 42, "op": []any{5, "hello", -3}, "client": "c1", "seq": 9}
	room := srv.To("room")
	wait := func(want int64) {
		deadline := time.Now().Add(30 * time.Second)
		for received.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("received %d of %d", received.Load(), want)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	base := received.Load()
	b.ReportAllocs()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		if err := room.Emit("doc:op", payload); err != nil {
			b.Fatal(err)
		}
		i++
		if i%32 == 0 {
			wait(base + int64(i)*n)
		}
	}
	wait(base + int64(i)*n)
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(i), "cpu-ms/1000-deliveries")
}
