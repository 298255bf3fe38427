package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options are those of a quiet server on 127.0.0.1 at port (-1: a random
// one), with JetStream storing in dir when dir is not empty; syncAlways
// makes JetStream fsync every write (sync_interval: always).
func Options(dir string, port int, syncAlways bool) *server.Options {
	return &server.Options{
		Host: "127.0.0.1", Port: port, JetStream: dir != "", StoreDir: dir,
		NoLog: true, NoSigs: true, SyncAlways: syncAlways,
	}
}

// Run starts a server with opts, waits until it accepts connections and
// shuts it down at cleanup (shutting it down earlier is fine).
func Run(tb testing.TB, opts *server.Options) *server.Server {
	tb.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		tb.Fatal("nats-server not ready")
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// RunCluster starts a three-server JetStream cluster on 127.0.0.1 (each
// server routes to all three, stores in a temporary directory) and returns
// its servers and a client URL naming all of them.
func RunCluster(tb testing.TB) ([]*server.Server, string) {
	tb.Helper()
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	servers := make([]*server.Server, 3)
	for i := range servers {
		o := Options(tb.TempDir(), -1, false)
		o.ServerName = fmt.Sprint("n", i)
		o.Cluster = server.ClusterOpts{Name: "collabd-test", Host: "127.0.0.1", Port: ports[i]}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		s, err := server.NewServer(o)
		if err != nil {
			tb.Fatal(err)
		}
		go s.Start()
		servers[i] = s
		tb.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
	}
	var urls []string
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			tb.Fatal("nats-server not ready")
		}
		urls = append(urls, s.ClientURL())
	}
	return servers, strings.Join(urls, ",")
}
