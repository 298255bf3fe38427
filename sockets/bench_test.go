package sockets

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// benchClientsEnv makes the test binary run as the client process of BenchmarkBroadcast1000:
// "URL N" connects N WebSocket clients to "/" and reports the number of messages received.
const benchClientsEnv = "SOCKETS_BENCH_CLIENTS"

// runBenchClients is the client process: it connects the clients, prints "ready", then prints
// the total of received messages whenever it changes, until its stdin closes.
func runBenchClients(spec string) {
	url, nstr, _ := strings.Cut(spec, " ")
	n, _ := strconv.Atoi(nstr)
	u := "ws" + strings.TrimPrefix(url, "http") + "/socket.io/?EIO=4&transport=websocket"
	var received atomic.Int64
	var wg sync.WaitGroup
	for range n {
		ws, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_, _, _ = ws.ReadMessage()
		_ = ws.WriteMessage(websocket.TextMessage, []byte("40"))
		_, _, _ = ws.ReadMessage()
		wg.Go(func() {
			for {
				_, r, err := ws.NextReader()
				if err != nil {
					return
				}
				var b [8]byte
				k, _ := r.Read(b[:])
				if k == 1 && b[0] == '2' {
					_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
					continue
				}
				received.Add(1)
			}
		})
	}
	fmt.Println("ready")
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadByte() // parent gone or done
		os.Exit(0)
	}()
	last := int64(-1)
	for {
		if v := received.Load(); v != last {
			fmt.Println(v)
			last = v
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBroadcast1000 broadcasts an event to a room of 1,000 WebSocket clients over
// loopback; the clients run in a separate process, so the CPU time reported
// (server-cpu-ms/1000-deliveries, from getrusage) is the server's alone. ns/op is the wall
// time per broadcast (1,000 deliveries); the loop waits for the clients every 32 broadcasts.
func BenchmarkBroadcast1000(b *testing.B) {
	const n = 1000
	srv, url := newTestServer(b, Config{})
	joined := make(chan struct{}, n)
	srv.OnConnection(func(s *Socket) {
		s.Join("room")
		joined <- struct{}{}
	})
	received, ready := startBenchClients(b, url, n)
	for range n {
		<-joined
	}
	<-ready
	payload := map[string]any{"doc": "readme", "rev": 42, "op": []any{5, "hello", -3}, "client": "c1", "seq": 9}
	room := srv.To("room")
	base := received.Load()
	wait := func(want int64) {
		deadline := time.Now().Add(30 * time.Second)
		for received.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("received %d of %d", received.Load(), want)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
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
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(i), "server-cpu-ms/1000-deliveries")
}

// startBenchClients starts the client process with n clients against url. received counts
// the messages they got; ready is closed once all are connected.
func startBenchClients(b *testing.B, url string, n int) (*atomic.Int64, chan struct{}) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchClientsEnv+"="+url+" "+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var received atomic.Int64
	ready := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
				continue
			}
			v, _ := strconv.ParseInt(sc.Text(), 10, 64)
			received.Store(v)
		}
	}()
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
		<-readDone
	})
	return &received, ready
}

// BenchmarkIdleConnections reports the server's memory per idle WebSocket connection connected
// to "/" (heap and goroutine stacks after GC, clients in a child process).
func BenchmarkIdleConnections(b *testing.B) {
	const n = 2000
	for b.Loop() {
		srv, url := newTestServer(b, Config{})
		joined := make(chan struct{}, n)
		srv.OnConnection(func(s *Socket) { joined <- struct{}{} })
		before := memInUse()
		_, ready := startBenchClients(b, url, n)
		for range n {
			<-joined
		}
		<-ready
		time.Sleep(200 * time.Millisecond)
		b.ReportMetric(float64(memInUse()-before)/n, "server-bytes/conn")
	}
}

func memInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
