package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/metrics"
	"github.com/collabd/collabd/storage"
)

// Cluster mode (--nats): the documents live in NATS JetStream
// (storage.JetStream), Socket.IO rooms and broadcasts cross nodes over
// core NATS (sockets.NewNATSAdapter), and every node serves every document.
// See docs/operations.md, "Cluster mode".

// Reconnection of the NATS connection: nats.go waits reconnectWait plus a
// random jitter (up to reconnectJitter) between two attempts at one
// server, so that nodes do not come back in step after an outage.
const (
	reconnectWait      = 250 * time.Millisecond
	reconnectJitter    = 750 * time.Millisecond
	reconnectJitterTLS = time.Second
	// reconnectBufBytes is what nats.go keeps of publications made while
	// disconnected (broadcasts of the sockets adapter, JetStream requests
	// that are retried anyway); beyond it a publish fails at once.
	reconnectBufBytes = 8 << 20
)

// natsConfig is the NATS connection of cluster mode, shared by serve and
// the client subcommands.
type natsConfig struct {
	// URLs: comma-separated NATS URLs; empty means single-node bbolt mode.
	URLs  string
	Creds string // nats.UserCredentials file
	CA    string // nats.RootCAs file
	Cert  string // nats.ClientCert certificate file (with Key)
	Key   string // nats.ClientCert key file (with Cert)
}

// natsEnv lists the environment variables of natsConfig's flags.
var natsEnv = []string{"nats", "nats-creds", "nats-ca", "nats-cert", "nats-key"}

func natsFlags(fs *flag.FlagSet, c *natsConfig) {
	fs.StringVar(&c.URLs, "nats", "", "comma-separated NATS URLs (user:password@ or token@ in a URL work): cluster mode, documents in JetStream, several nodes; empty: single node, documents in the bbolt file")
	fs.StringVar(&c.Creds, "nats-creds", "", "NATS credentials file (JWT and NKey seed)")
	fs.StringVar(&c.CA, "nats-ca", "", "PEM file of the CAs that sign the NATS servers' TLS certificates")
	fs.StringVar(&c.Cert, "nats-cert", "", "PEM client certificate for NATS TLS (with --nats-key)")
	fs.StringVar(&c.Key, "nats-key", "", "PEM key of --nats-cert")
}

// enabled reports cluster mode.
func (c natsConfig) enabled() bool { return strings.TrimSpace(c.URLs) != "" }

func (c natsConfig) validate() error {
	if !c.enabled() {
		if c.Creds != "" || c.CA != "" || c.Cert != "" || c.Key != "" {
			return errors.New("--nats-creds, --nats-ca, --nats-cert and --nats-key need --nats")
		}
		return nil
	}
	if (c.Cert == "") != (c.Key == "") {
		return errors.New("--nats-cert and --nats-key go together")
	}
	for _, u := range splitList(c.URLs) {
		if _, err := url.Parse(withScheme(u)); err != nil {
			return fmt.Errorf("--nats %q: %w", redactURL(u), err)
		}
	}
	for _, f := range []struct{ flag, path string }{{"--nats-creds", c.Creds}, {"--nats-ca", c.CA}, {"--nats-cert", c.Cert}, {"--nats-key", c.Key}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
	}
	return nil
}

// servers is the URL list without credentials, for messages and logs.
func (c natsConfig) servers() string {
	var out []string
	for _, u := range splitList(c.URLs) {
		out = append(out, redactURL(u))
	}
	return strings.Join(out, ",")
}

// withScheme adds nats:// to a URL without a scheme, as nats.go does.
func withScheme(u string) string {
	if !strings.Contains(u, "://") {
		return "nats://" + u
	}
	return u
}

// redactURL hides the user, password or token of a NATS URL.
func redactURL(raw string) string {
	u, err := url.Parse(withScheme(raw))
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "***" + raw[i:]
		}
		return raw
	}
	if u.User == nil {
		return u.String()
	}
	u.User = nil
	scheme, rest, _ := strings.Cut(u.String(), "://")
	return scheme + "://***@" + rest
}

// options are the nats.go options of a connection named name.
func (c natsConfig) options(name string) []nats.Option {
	opts := []nats.Option{nats.Name(name)}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.CA != "" {
		opts = append(opts, nats.RootCAs(c.CA))
	}
	if c.Cert != "" {
		opts = append(opts, nats.ClientCert(c.Cert, c.Key))
	}
	return opts
}

// defaultNodeName is hostname:port of the listen address, or hostname-pid
// when the port is picked by the kernel (0).
func defaultNodeName(addr string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "collabd"
	}
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "" && port != "0" {
		return host + ":" + port
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// clusterRecordMargin is what a record needs in a message besides its op
// (client id, user, time, counts, framing), and a snapshot in a KV value
// besides its text: in cluster mode documents and ops are limited to the
// store's message size less this.
const clusterRecordMargin = 8 << 10

// clusterConn is the NATS connection of a server in cluster mode, with
// what it counts for the metrics.
type clusterConn struct {
	nc      *nats.Conn
	servers string // the configured URLs, redacted

	// connected is closed at the first successful connection.
	connected chan struct{}
	once      sync.Once
	// disconnects counts the connection losses (the reconnects are
	// nats.go's Statistics.Reconnects).
	disconnects *metrics.Counter

	// reconnectMu guards reconnected, called after each reconnection.
	reconnectMu sync.Mutex
	reconnected []func()
}

// onReconnect has fn called after each reconnection (on nats.go's
// goroutine: fn must not block).
func (cc *clusterConn) onReconnect(fn func()) {
	cc.reconnectMu.Lock()
	defer cc.reconnectMu.Unlock()
	cc.reconnected = append(cc.reconnected, fn)
}

// connectCluster connects to NATS for the server: unlimited reconnects,
// jittered, each event logged. It waits for the first connection at most
// until ctx ends (the startup window, whose length window is for the
// message: NATS may start after collabd), then fails naming the URLs.
func connectCluster(ctx context.Context, window time.Duration, c natsConfig, node string, log zerolog.Logger, reg *metrics.Registry) (*clusterConn, error) {
	cc := &clusterConn{servers: c.servers(), connected: make(chan struct{}),
		disconnects: reg.Counter("collabd_nats_disconnects_total", "Losses of the NATS connection.")}
	log = log.With().Str("component", "nats").Logger()
	up := func(what string) nats.ConnHandler {
		return func(nc *nats.Conn) {
			cc.once.Do(func() { close(cc.connected) })
			log.Info().Str("server", nc.ConnectedUrlRedacted()).Str("server_id", nc.ConnectedServerId()).Msg(what)
		}
	}
	opts := append(c.options(node),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectJitter(reconnectJitter, reconnectJitterTLS),
		nats.ReconnectBufSize(reconnectBufBytes),
		nats.ConnectHandler(up("NATS connected")),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			up("NATS reconnected")(nc)
			cc.reconnectMu.Lock()
			fns := slices.Clone(cc.reconnected)
			cc.reconnectMu.Unlock()
			for _, fn := range fns {
				fn()
			}
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // our own Close at shutdown; the ClosedHandler logs it
			}
			cc.disconnects.Inc()
			log.Warn().Err(err).Msg("NATS disconnected; reconnecting (ops are answered unavailable meanwhile)")
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			log.Info().AnErr("last_error", nc.LastError()).Msg("NATS connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Error().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("NATS error")
		}),
	)
	// Connect itself may block beyond the window (a DNS lookup that hangs):
	// give up on it then, and close what it returns later.
	type connected struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan connected, 1)
	go func() {
		nc, err := nats.Connect(strings.Join(splitList(c.URLs), ","), opts...)
		done <- connected{nc, err}
	}()
	var nc *nats.Conn
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("NATS %s: %w", cc.servers, r.err)
		}
		nc = r.nc
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("NATS unreachable at %s after %s (--nats-startup-timeout): connecting did not return", cc.servers, window)
	}
	cc.nc = nc
	if nc.IsConnected() {
		// The ConnectHandler logs it.
		cc.once.Do(func() { close(cc.connected) })
	} else {
		log.Warn().Str("servers", cc.servers).Msg("NATS not reachable yet; retrying")
	}
	select {
	case <-cc.connected:
	case <-ctx.Done():
		err := nc.LastError()
		nc.Close()
		msg := fmt.Sprintf("NATS unreachable at %s after %s (--nats-startup-timeout)", cc.servers, window)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", msg, err)
		}
		return nil, errors.New(msg)
	}
	reg.GaugeFunc("collabd_nats_connected", "1 while the NATS connection is up, else 0.", func() float64 {
		if nc.IsConnected() {
			return 1
		}
		return 0
	})
	reg.CounterFunc("collabd_nats_reconnects_total", "Reconnections of the NATS connection.", func() float64 { return float64(nc.Stats().Reconnects) })
	return cc, nil
}

// openClusterStore opens the JetStream store, creating the stream and the
// bucket with replicas when they do not exist, retrying until ctx ends.
func openClusterStore(ctx context.Context, nc *nats.Conn, replicas int, servers string) (*storage.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	st, err := storage.OpenJetStream(ctx, js, storage.JetStreamConfig{Replicas: replicas})
	if err != nil {
		return nil, fmt.Errorf("JetStream at %s: %w (is JetStream enabled on the NATS servers?)", servers, err)
	}
	return st, nil
}

// ready reports whether the NATS connection is up; when it is not, why,
// for /readyz.
func (cc *clusterConn) ready() (bool, string) {
	if st := cc.nc.Status(); st != nats.CONNECTED {
		return false, fmt.Sprintf("not ready: NATS connection %s (servers %s)\n", strings.ToLower(st.String()), cc.servers)
	}
	return true, ""
}

// readyz answers /readyz: 503 with the reason while NATS is not connected,
// else next's answer.
func (cc *clusterConn) readyz(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, why := cc.ready(); !ok {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, why)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// connectClient connects a client subcommand to NATS: no retries, a short
// timeout, and the JetStream store opened only when the op log stream
// exists (a read must not create it with the wrong replicas).
func connectClient(ctx context.Context, c natsConfig) (*nats.Conn, *storage.JetStream, error) {
	servers := c.servers()
	nc, err := nats.Connect(strings.Join(splitList(c.URLs), ","), append(c.options("collabd-cli"), nats.Timeout(5*time.Second))...)
	if err != nil {
		return nil, nil, fmt.Errorf("NATS %s: %w", servers, err)
	}
	js, err := jetstream.New(nc)
	if err == nil {
		_, err = js.Stream(ctx, storage.DefaultJetStreamStream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			err = fmt.Errorf("no stream %s: no collabd has run in cluster mode on this NATS yet", storage.DefaultJetStreamStream)
		}
	}
	var st *storage.JetStream
	if err == nil {
		st, err = storage.OpenJetStream(ctx, js, storage.JetStreamConfig{})
	}
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("JetStream at %s: %w", servers, err)
	}
	return nc, st, nil
}

// presence starts the presence bus of collab/session on the connection:
// members and their cursors on other nodes are shown like local ones.
func (cc *clusterConn) presence(node string, log zerolog.Logger) (*session.NATSPeers, error) {
	p, err := session.NewNATSPeers(cc.nc, peerNodeID(node), session.NATSPeersConfig{
		Logger: log.With().Str("component", "presence").Logger(),
	})
	if err != nil {
		return nil, fmt.Errorf("presence across nodes: %w", err)
	}
	return p, nil
}

// peerNodeID turns a node name into an id the presence bus accepts
// (A-Za-z0-9_-, short enough for the incarnation suffix it appends):
// "host:8080" becomes "host-8080".
func peerNodeID(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	const max = session.MaxNodeIDBytes - len("-xxxxxxxx")
	if len(b) > max {
		b = b[:max]
	}
	if len(b) == 0 {
		return "collabd"
	}
	return string(b)
}
