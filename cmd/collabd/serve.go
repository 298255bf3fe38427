package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/collab/session"
	"github.com/collabd/collabd/httpapi"
	"github.com/collabd/collabd/metrics"
	"github.com/collabd/collabd/sockets"
	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/webhook"
)

// Files of the data directory.
const (
	// dbFile is the bbolt file holding every document.
	dbFile = "collabd.db"
	// outboxFile is the bbolt file of the webhook outbox in cluster mode
	// (the documents are in JetStream; each node reports its own commits).
	outboxFile = "webhooks.db"
	// urlFile holds the URL of the server using the directory, for the
	// client subcommands; written (atomically) once the server listens,
	// removed when it stops.
	urlFile = "collabd.url"
)

// serveConfig is the configuration of `collabd serve`.
type serveConfig struct {
	Addr            string
	Data            string
	LogLevel        string
	LogFormat       string
	AuthSecret      string
	AuthSecretFile  string
	AllowedOrigins  string
	MaxPayload      int
	WriteQueueBytes int // 0: the sockets default
	MaxDocBytes     int
	OpsPerSecond    float64
	DocsPerSocket   int
	MembersPerDoc   int
	Recovery        bool
	PprofAddr       string
	ShutdownTimeout time.Duration
	// WSBlockingReads: a blocking reader goroutine per WebSocket
	// (sockets.Config.BlockingReads).
	WSBlockingReads bool
	// Checkpoints of the journal into bbolt: at most this long or this
	// many bytes of frames after the oldest pending one.
	CheckpointInterval time.Duration
	CheckpointBytes    int64
	// AdminSecret turns the admin endpoints (/admin/...) on.
	AdminSecret     string
	AdminSecretFile string
	// MetricsAuth: with auth on, /metrics needs a token or the admin secret.
	MetricsAuth bool
	// Webhooks (package webhook).
	WebhookURLs        listFlag
	WebhookSecret      string
	WebhookSecretFile  string
	WebhookDebounce    time.Duration
	WebhookMaxWait     time.Duration
	WebhookText        bool
	WebhookMaxQueue    int
	WebhookMaxAttempts int
	// History retention (retention.go): keep every op of the last
	// RetainDays days and/or the last RetainRevisions revisions (0: no
	// bound), folding older ones every RetentionInterval.
	RetainDays        int
	RetainRevisions   int
	RetentionInterval time.Duration
	// Cluster mode (cluster.go): the NATS connection, the replicas of the
	// stream and bucket this node creates, how long startup waits for
	// NATS, and the node's name in logs and in NATS.
	NATS               natsConfig
	NATSReplicas       int
	NATSStartupTimeout time.Duration
	NodeName           string
}

func serveFlags(fs *flag.FlagSet, c *serveConfig) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address host:port (port 0 picks a free port)")
	fs.StringVar(&c.Data, "data", "./data", "data directory (created if missing); the documents live in DATA/"+dbFile+" (in JetStream with --nats)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "", "log format: json or console (default console when stderr is a terminal, else json)")
	fs.StringVar(&c.AuthSecret, "auth-secret", "", "HS256 secret (at least 16 bytes) turning token authentication on; empty: open to everyone")
	fs.StringVar(&c.AuthSecretFile, "auth-secret-file", "", "file holding the auth secret (alternative to --auth-secret)")
	fs.StringVar(&c.AllowedOrigins, "allowed-origins", "", "comma-separated origins allowed to open Socket.IO connections besides same-origin ('*': any)")
	fs.IntVar(&c.MaxPayload, "max-payload", 1_000_000, "largest Socket.IO message or HTTP polling body accepted from a client, bytes")
	fs.IntVar(&c.WriteQueueBytes, "write-queue-bytes", 0, "bytes queued to send to one client before it is disconnected as too slow (0: 4 MiB, or twice --max-payload if larger)")
	fs.IntVar(&c.MaxDocBytes, "max-doc-bytes", collab.DefaultMaxDocBytes, "largest document text, bytes of UTF-8 (also the largest PUT body)")
	fs.Float64Var(&c.OpsPerSecond, "ops-per-second", session.DefaultOpsPerSecond, "ops (doc:op, doc:restore) per second per socket, sustained; bursts up to twice that")
	fs.IntVar(&c.DocsPerSocket, "docs-per-socket", session.DefaultDocsPerSocket, "documents one socket may have joined at once")
	fs.IntVar(&c.MembersPerDoc, "members-per-doc", session.DefaultMembersPerDoc, "sockets that may have joined one document at once")
	fs.BoolVar(&c.Recovery, "recovery", true, "Socket.IO connection state recovery (2 minute window)")
	fs.BoolVar(&c.WSBlockingReads, "ws-blocking-reads", false, "read each WebSocket with its own blocking goroutine instead of parking idle ones (debugging; more memory per idle connection)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "listen address of net/http/pprof (off when empty; keep it on loopback)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "bound on the graceful shutdown after SIGINT/SIGTERM")
	fs.DurationVar(&c.CheckpointInterval, "checkpoint-interval", storage.DefaultCheckpointInterval, "longest time a committed edit waits in the journal before a checkpoint copies it into the bbolt file")
	fs.Int64Var(&c.CheckpointBytes, "checkpoint-bytes", storage.DefaultCheckpointBytes, "journal bytes that start a checkpoint before --checkpoint-interval; lower: less memory at high edit rates, more CPU")
	fs.StringVar(&c.AdminSecret, "admin-secret", "", "bearer secret (at least 16 bytes) of the admin endpoints (/admin/revocations); empty: off. Needs --auth-secret")
	fs.StringVar(&c.AdminSecretFile, "admin-secret-file", "", "file holding the admin secret (alternative to --admin-secret)")
	fs.BoolVar(&c.MetricsAuth, "metrics-auth", false, "with auth on, GET /metrics needs Authorization: Bearer with a valid token or the admin secret")
	fs.Var(&c.WebhookURLs, "webhook-url", "URL to POST document change events to (repeatable, or comma-separated); needs --webhook-secret")
	fs.StringVar(&c.WebhookSecret, "webhook-secret", "", "HMAC-SHA256 key signing the webhook deliveries (Collabd-Signature)")
	fs.StringVar(&c.WebhookSecretFile, "webhook-secret-file", "", "file holding the webhook secret (alternative to --webhook-secret)")
	fs.DurationVar(&c.WebhookDebounce, "webhook-debounce", webhook.DefaultDebounce, "a change event is sent once its document has been quiet this long")
	fs.DurationVar(&c.WebhookMaxWait, "webhook-max-wait", webhook.DefaultMaxWait, "a document that keeps changing gets a change event at least this often")
	fs.BoolVar(&c.WebhookText, "webhook-text", false, "add the document's text at the event's to_rev to change, create and restore events")
	fs.IntVar(&c.WebhookMaxQueue, "webhook-max-queue", webhook.DefaultMaxQueue, "deliveries queued per URL; beyond it the oldest change events are coalesced")
	fs.IntVar(&c.WebhookMaxAttempts, "webhook-max-attempts", webhook.DefaultMaxAttempts, "tries of one delivery (exponential backoff with jitter, 1 s to 5 min) before it is dropped")
	fs.IntVar(&c.RetainDays, "retain-days", 0, "keep every op of the last N days; older ones are folded into snapshots (0: no bound by age; with --retain-revisions an op is folded only outside both)")
	fs.IntVar(&c.RetainRevisions, "retain-revisions", 0, "keep the ops of each document's last N revisions; older ones are folded into snapshots (0: no bound by count)")
	fs.DurationVar(&c.RetentionInterval, "retention-interval", 10*time.Minute, "how often the background job folds the ops the retention policy lets go")
	natsFlags(fs, &c.NATS)
	fs.IntVar(&c.NATSReplicas, "nats-replicas", 1, "replicas of the JetStream op log stream and snapshot bucket when this node creates them (3 on a 3-server NATS cluster)")
	fs.DurationVar(&c.NATSStartupTimeout, "nats-startup-timeout", 30*time.Second, "how long startup waits for NATS and JetStream before giving up")
	fs.StringVar(&c.NodeName, "node-name", "", "this node's name in logs and in its NATS connection (default HOSTNAME:PORT)")
}

func (c *serveConfig) validate() error {
	switch {
	case c.MaxPayload < 1024:
		return errors.New("--max-payload must be at least 1024")
	case c.WriteQueueBytes != 0 && c.WriteQueueBytes < c.MaxPayload:
		return errors.New("--write-queue-bytes must be 0 (the default) or at least --max-payload")
	case c.MaxDocBytes < 1:
		return errors.New("--max-doc-bytes must be positive")
	case c.OpsPerSecond <= 0:
		return errors.New("--ops-per-second must be positive")
	case c.DocsPerSocket < 1 || c.MembersPerDoc < 1:
		return errors.New("--docs-per-socket and --members-per-doc must be positive")
	case c.ShutdownTimeout <= 0:
		return errors.New("--shutdown-timeout must be positive")
	case c.CheckpointInterval < time.Millisecond || c.CheckpointInterval > time.Hour:
		return errors.New("--checkpoint-interval must be between 1ms and 1h")
	case c.CheckpointBytes < 4<<10:
		return errors.New("--checkpoint-bytes must be at least 4096")
	case c.WebhookDebounce <= 0 || c.WebhookMaxWait <= 0 || c.WebhookMaxQueue < 1 || c.WebhookMaxAttempts < 1:
		return errors.New("--webhook-debounce, --webhook-max-wait, --webhook-max-queue and --webhook-max-attempts must be positive")
	case c.RetainDays < 0 || c.RetainRevisions < 0:
		return errors.New("--retain-days and --retain-revisions must not be negative")
	case c.RetentionInterval < time.Millisecond:
		return errors.New("--retention-interval must be at least 1ms")
	case c.NATSReplicas < 1 || c.NATSReplicas > 5:
		return errors.New("--nats-replicas must be 1 to 5")
	case c.NATSStartupTimeout <= 0:
		return errors.New("--nats-startup-timeout must be positive")
	}
	if err := c.NATS.validate(); err != nil {
		return err
	}
	return nil
}

// server is a running collabd: every part, in start order.
type server struct {
	cfg          serveConfig
	log          zerolog.Logger
	store        storage.Store
	bolt         *storage.Bolt      // the store in single-node mode, else nil
	cluster      *clusterConn       // the NATS connection in cluster mode, else nil
	peers        *session.NATSPeers // presence across nodes in cluster mode, else nil
	revocations  *sharedRevocations // the cluster's token revocations (cluster mode with auth), else nil
	outbox       *storage.Bolt      // the webhook outbox in cluster mode with --webhook-url, else nil
	hub          *collab.Hub
	sio          *sockets.Server
	glue         *glue
	api          *httpapi.API
	reg          *metrics.Registry
	httpSrv      *http.Server
	ln           net.Listener
	pprofSrv     *http.Server
	ready        atomic.Bool
	apiErrs      *metrics.Counter
	serveStarted bool          // Serve was started; written before the goroutine
	serveDone    chan struct{} // closed when httpSrv.Serve returned
	serveErr     error         // what Serve returned; read after serveDone

	webhooks  *webhook.Notifier // nil without --webhook-url
	retention *retention        // the fold job (retention.go)
}

// startServer opens the store and starts every part; the caller must call
// shutdown. It writes the "collabd listening on" line to stdout.
func startServer(cfg serveConfig, log zerolog.Logger, stdout io.Writer) (*server, error) {
	secret, err := secretFrom(cfg.AuthSecret, cfg.AuthSecretFile)
	if err != nil {
		return nil, err
	}
	adminSecret, err := readSecret("admin-secret", cfg.AdminSecret, cfg.AdminSecretFile)
	if err != nil {
		return nil, err
	}
	switch {
	case adminSecret != "" && secret == "":
		return nil, errors.New("--admin-secret needs --auth-secret (revocations are of tokens)")
	case adminSecret != "" && len(adminSecret) < auth.MinSecretBytes:
		return nil, fmt.Errorf("--admin-secret must be at least %d bytes", auth.MinSecretBytes)
	case adminSecret != "" && adminSecret == secret:
		return nil, errors.New("--admin-secret must differ from --auth-secret")
	case cfg.MetricsAuth && secret == "":
		return nil, errors.New("--metrics-auth needs --auth-secret")
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	var authority *auth.Authority
	var revocations *auth.Revocations
	if secret != "" {
		if revocations, err = loadRevocations(filepath.Join(cfg.Data, revocationsFile)); err != nil {
			return nil, err
		}
		if authority, err = auth.New([]byte(secret), auth.WithRevocations(revocations)); err != nil {
			return nil, fmt.Errorf("--auth-secret: %w", err)
		}
	}
	if cfg.NATS.enabled() && cfg.NodeName == "" {
		cfg.NodeName = defaultNodeName(cfg.Addr)
	}
	if cfg.NodeName != "" {
		log = log.With().Str("node", cfg.NodeName).Logger()
	}
	s := &server{cfg: cfg, log: log, reg: metrics.NewRegistry(), serveDone: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			s.closeAll(context.Background())
		}
	}()

	dbPath := filepath.Join(cfg.Data, dbFile)
	var adapter func(*sockets.Namespace) sockets.Adapter // nil: in memory
	if cfg.NATS.enabled() {
		if err := s.openCluster(); err != nil {
			return nil, err
		}
		adapter = sockets.NewNATSAdapter(s.cluster.nc, sockets.NATSAdapterOptions{})
		if revocations != nil {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.NATSStartupTimeout)
			s.revocations, err = openSharedRevocations(ctx, s.cluster.nc, cfg.NATSReplicas, revocations, log.With().Str("component", "auth").Logger())
			cancel()
			if err != nil {
				return nil, err
			}
			s.cluster.onReconnect(s.revocations.reconnected)
		}
		if len(cfg.WebhookURLs) > 0 {
			path := filepath.Join(cfg.Data, outboxFile)
			if s.outbox, err = storage.OpenBolt(path, storage.Options{Timeout: 2 * time.Second}); err != nil {
				if errors.Is(err, bolterrors.ErrTimeout) {
					return nil, fmt.Errorf("%s is locked: is another collabd using --data %s? (%w)", path, cfg.Data, err)
				}
				return nil, err
			}
		}
	} else {
		s.bolt, err = storage.OpenBolt(dbPath, storage.Options{Timeout: 2 * time.Second,
			CheckpointInterval: cfg.CheckpointInterval, CheckpointBytes: cfg.CheckpointBytes})
		if err != nil {
			if errors.Is(err, bolterrors.ErrTimeout) {
				return nil, fmt.Errorf("%s is locked: is another collabd using --data %s? (%w)", dbPath, cfg.Data, err)
			}
			return nil, err
		}
		s.store = s.bolt
	}
	if err := s.startWebhooks(cfg); err != nil {
		return nil, err
	}
	maxOpBytes := 2*cfg.MaxDocBytes + 1024
	if js, ok := s.store.(*storage.JetStream); ok {
		// An op is one record of one message, a snapshot one KV value:
		// both are bounded by the NATS servers' max_payload.
		limit := js.MaxMessageBytes() - clusterRecordMargin
		if cfg.MaxDocBytes > limit {
			log.Warn().Int("max_doc_bytes", cfg.MaxDocBytes).Int("limit", limit).Int64("nats_max_payload", s.cluster.nc.MaxPayload()).
				Msg("documents are limited below --max-doc-bytes by the NATS servers' max_payload; raise max_payload in their configuration for larger ones")
			cfg.MaxDocBytes = limit
			s.cfg.MaxDocBytes = limit
		}
		maxOpBytes = min(maxOpBytes, limit)
	}
	commitSeconds := s.reg.Histogram("collabd_commit_seconds", "Wall time of one store commit (bbolt: one journal append and fdatasync; --nats: the JetStream appends until acknowledged).",
		metrics.ExponentialBuckets(0.0005, 2, 14))
	s.hub, err = collab.New(collab.Config{
		Store:       s.store,
		MaxDocBytes: cfg.MaxDocBytes,
		// A PUT may replace a whole document: its op's JSON can be about twice
		// the text (escapes); socket ops are bounded by --max-payload first.
		MaxOpBytes:    maxOpBytes,
		ObserveCommit: func(_ int, took time.Duration) { commitSeconds.Observe(took.Seconds()) },
		OnCommitted:   s.onCommitted(),
		OnDeleted:     s.onDeleted(),
		Retention:     cfg.retentionPolicy(),
	})
	if err != nil {
		return nil, err
	}
	s.sio, err = sockets.New(sockets.Config{
		MaxPayload:      cfg.MaxPayload,
		WriteQueueBytes: cfg.WriteQueueBytes,
		AllowedOrigins:  splitList(cfg.AllowedOrigins),
		Recovery:        sockets.Recovery{Enabled: cfg.Recovery, Window: sockets.DefaultRecoveryWindow},
		BlockingReads:   cfg.WSBlockingReads,
		Adapter:         adapter,
		Logger:          newSlog(log.With().Str("component", "sockets").Logger()),
	})
	if err != nil {
		return nil, err
	}
	var peers session.Peers // nil: a single node
	if s.cluster != nil {
		if s.peers, err = s.cluster.presence(cfg.NodeName, log); err != nil {
			return nil, err
		}
		peers = s.peers
	}
	s.glue, err = attachSession(s.sio, s.hub, authority, peers, cfg, log)
	if err != nil {
		return nil, err
	}
	revPath := filepath.Join(cfg.Data, revocationsFile)
	if s.revocations != nil {
		// Revocations made on other nodes: in effect here at once, and
		// kept in the data directory as this node's own are.
		s.revocations.run(func() {
			s.glue.svc.Revalidate()
			if err := saveRevocations(revPath, revocations.List()); err != nil {
				log.Error().Err(err).Msg("saving the token revocations")
			}
		})
	}
	s.apiErrs = s.reg.Counter("collabd_http_errors_total", "HTTP API error responses.")
	// Backups and compaction are of the bbolt file: NATS has its own
	// (nats stream backup); without them the API answers 404.
	var backup func(context.Context, io.Writer) (int64, error)
	var compact func(context.Context) (storage.CompactResult, error)
	if s.bolt != nil {
		backup, compact = s.bolt.Backup, s.bolt.CompactOnline
	}
	s.api, err = httpapi.New(httpapi.Config{
		Hub:            s.hub,
		Backup:         backup,
		Compact:        compact,
		Delete:         s.purge,
		VersionChanged: s.glue.svc.VersionChanged,
		Auth:           authority,
		MaxBodyBytes:   int64(cfg.MaxDocBytes),
		Ready:          s.ready.Load,
		OnError:        func(string) { s.apiErrs.Inc() },
		Logger:         log.With().Str("component", "http").Logger(),
	})
	if err != nil {
		return nil, err
	}
	s.registerMetrics()
	var admin *httpapi.Admin
	if adminSecret != "" {
		var share func(context.Context, auth.RevocationList) error
		if s.revocations != nil {
			share = s.revocations.share
		}
		admin, err = httpapi.NewAdmin(httpapi.AdminConfig{
			Secret:      adminSecret,
			Revocations: revocations,
			OnChange: func(l auth.RevocationList) error {
				s.glue.svc.Revalidate()
				return saveRevocations(revPath, l)
			},
			Share:   share,
			OnError: func(string) { s.apiErrs.Inc() },
			Logger:  log.With().Str("component", "admin").Logger(),
		})
		if err != nil {
			return nil, err
		}
	}
	s.startRetention()

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", s.sio)
	mux.Handle("/api/", s.api)
	mux.Handle("GET /healthz", s.api)
	if s.cluster != nil {
		mux.Handle("GET /readyz", s.cluster.readyz(s.api))
	} else {
		mux.Handle("GET /readyz", s.api)
	}
	if cfg.MetricsAuth {
		mux.Handle("GET /metrics", guardMetrics(s.reg, authority, admin))
	} else {
		mux.Handle("GET /metrics", s.reg)
	}
	if admin != nil {
		mux.Handle("/admin/", admin)
	}
	editor, err := newEditorHandler()
	if err != nil {
		return nil, err
	}
	mux.Handle("/", editor)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	s.ln = &onceCloseListener{Listener: ln}
	s.httpSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          stdlog.New(lineWriter{log.With().Str("component", "http").Logger()}, "", 0),
	}
	if cfg.PprofAddr != "" {
		if err := s.startPprof(cfg.PprofAddr); err != nil {
			return nil, err
		}
	}
	s.serveStarted = true
	go func() { s.serveErr = s.httpSrv.Serve(s.ln); close(s.serveDone) }()
	s.ready.Store(true)
	url := "http://" + displayAddr(s.ln.Addr()) + "/"
	if _, err := writeFileAtomic(filepath.Join(cfg.Data, urlFile), func(w io.Writer) error {
		_, err := io.WriteString(w, url+"\n")
		return err
	}); err != nil {
		log.Warn().Err(err).Msg("cannot write " + urlFile)
	}
	fmt.Fprintf(stdout, "collabd listening on %s\n", url)
	ev := log.Info().Str("url", url).Bool("auth", authority != nil).Bool("recovery", cfg.Recovery)
	if s.cluster != nil {
		ev = ev.Str("nats", s.cluster.servers)
	} else {
		ev = ev.Str("data", dbPath)
	}
	ev.Msg("collabd listening on " + url)
	ok = true
	return s, nil
}

func (s *server) startPprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.pprofSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.pprofSrv.Serve(ln) }()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("pprof listening")
	return nil
}

func (s *server) registerMetrics() {
	r := s.reg
	r.GaugeFunc("collabd_connections", "Open Engine.IO connections.", func() float64 { return float64(s.sio.Stats().Connections) })
	r.GaugeFunc("collabd_sockets", "Connected Socket.IO sockets.", func() float64 { return float64(s.sio.Stats().Sockets) })
	r.GaugeFunc("collabd_documents_live", "Documents loaded in memory.", func() float64 { return float64(s.hub.Stats().LiveDocs) })
	r.CounterFunc("collabd_ops_committed_total", "Op records committed to the store.", func() float64 { return float64(s.hub.Stats().CommittedOps) })
	r.CounterFunc("collabd_commits_total", "Store commits (each one journal append and fdatasync).", func() float64 { return float64(s.hub.Stats().Commits) })
	r.CounterFunc("collabd_commit_failures_total", "Store commits that failed.", func() float64 { return float64(s.hub.Stats().FailedCommit) })
	r.CounterFunc("collabd_cluster_stale_total", "Cluster mode: appends that lost the race for a revision to another node.", func() float64 { return float64(s.hub.Stats().Stale) })
	r.CounterFunc("collabd_cluster_rebased_total", "Cluster mode: ops sequenced again after another node appended first.", func() float64 { return float64(s.hub.Stats().Rebased) })
	r.CounterFunc("collabd_broadcast_dropped_total", "Volatile packets dropped because a receiver's queue was full.", func() float64 { return float64(s.sio.Stats().Dropped) })
	r.CounterFunc("collabd_slow_clients_closed_total", "Connections closed because their send queue went past --write-queue-bytes.", func() float64 { return float64(s.sio.Stats().SlowClosed) })
	if s.bolt != nil {
		s.registerJournalMetrics()
	}
	s.glue.registerMetrics(r, s.apiErrs)
	if p := s.peers; p != nil {
		r.CounterFunc("collabd_presence_dropped_total", "Cluster mode: presence and membership events not published to the other nodes because the queue was full.", func() float64 { return float64(p.Dropped()) })
	}
	r.RegisterGoRuntime()
}

// registerJournalMetrics exports the store's journal: how far bbolt is
// behind it and what checkpoints cost.
func (s *server) registerJournalMetrics() {
	r, st := s.reg, s.bolt
	r.CounterFunc("collabd_journal_bytes_total", "Bytes appended to the journal.", func() float64 { return float64(st.JournalStats().Bytes) })
	r.GaugeFunc("collabd_journal_pending_frames", "Journal frames (commits) not yet checkpointed into bbolt.", func() float64 { return float64(st.JournalStats().PendingFrames) })
	r.GaugeFunc("collabd_journal_pending_bytes", "Bytes of the journal frames not yet checkpointed into bbolt.", func() float64 { return float64(st.JournalStats().PendingBytes) })
	r.GaugeFunc("collabd_journal_segments", "Journal segment files, spares included.", func() float64 { return float64(st.JournalStats().Segments) })
	r.CounterFunc("collabd_checkpoints_total", "Checkpoints: bbolt transactions applying journal frames.", func() float64 { return float64(st.JournalStats().Checkpoints) })
	r.CounterFunc("collabd_checkpoint_seconds_total", "Wall time spent in checkpoints.", func() float64 { return st.JournalStats().CheckpointTime.Seconds() })
	r.CounterFunc("collabd_checkpoint_failures_total", "Checkpoints that failed (the frames stay in the journal and are retried).", func() float64 { return float64(st.JournalStats().CheckpointErrors) })
	r.GaugeFunc("collabd_journal_poisoned", "1 once a journal write or fsync failed: every later commit fails until a restart.", func() float64 {
		if st.JournalStats().Poisoned {
			return 1
		}
		return 0
	})
}

// shutdown stops the server in the contract's order: not ready, stop
// accepting, close the sockets ("server shutting down"), drain HTTP, commit
// and snapshot (hub.Close), close the store. It returns every step's error
// joined; every step runs even when an earlier one failed or ctx ended.
func (s *server) shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.log.Info().Msg("shutting down")
	os.Remove(filepath.Join(s.cfg.Data, urlFile))
	err := s.closeAll(ctx)
	if err != nil {
		s.log.Error().Err(err).Msg("shutdown")
	} else {
		s.log.Info().Msg("stopped")
	}
	return err
}

func (s *server) closeAll(ctx context.Context) error {
	var errs []error
	// Stop accepting. The connections already open keep being served, so
	// a polling client between two GETs still fetches its close packet over
	// its keep-alive connection.
	if s.ln != nil {
		s.ln.Close()
	}
	if s.pprofSrv != nil {
		s.pprofSrv.Close()
	}
	if s.revocations != nil {
		s.revocations.stop()
	}
	if s.sio != nil {
		if err := s.sio.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("sockets: %w", err))
		}
	}
	if s.httpSrv != nil {
		// Let API requests in flight finish while the hub still runs.
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http: %w", err))
			s.httpSrv.Close()
		}
	}
	if s.serveStarted {
		<-s.serveDone
		if err := s.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("http serve: %w", err))
		}
	}
	s.stopRetention()
	if s.hub != nil {
		if err := s.hub.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("hub: %w", err))
		}
	}
	if s.webhooks != nil {
		// After the hub: every commit has been seen; what is not sent
		// stays in the outbox for the next start.
		if err := s.webhooks.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("webhooks: %w", err))
		}
	}
	if s.glue != nil {
		// The session's goroutines answering slow requests end once the
		// hub has answered them (it is closed now).
		waited := make(chan struct{})
		go func() { s.glue.svc.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("session: %w", ctx.Err()))
		}
	}
	if s.peers != nil {
		// After the sockets: their leaves are published, then a goodbye.
		if err := s.peers.Close(); err != nil {
			errs = append(errs, fmt.Errorf("presence: %w", err))
		}
	}
	if s.outbox != nil {
		if err := s.outbox.Close(); err != nil {
			errs = append(errs, fmt.Errorf("webhook outbox: %w", err))
		}
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: %w", err))
		}
	}
	if s.cluster != nil {
		// Last: the sockets adapter's goodbye and the hub's final commits
		// went through it. Flush what nats.go still buffers.
		_ = s.cluster.nc.FlushTimeout(time.Second)
		s.cluster.nc.Close()
	}
	return errors.Join(errs...)
}

// openCluster connects to NATS and opens the JetStream store, both within
// --nats-startup-timeout: NATS may be starting too.
func (s *server) openCluster() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.NATSStartupTimeout)
	defer cancel()
	cc, err := connectCluster(ctx, s.cfg.NATSStartupTimeout, s.cfg.NATS, s.cfg.NodeName, s.log, s.reg)
	if err != nil {
		return err
	}
	s.cluster = cc
	js, err := openClusterStore(ctx, cc.nc, s.cfg.NATSReplicas, cc.servers)
	if err != nil {
		return err
	}
	s.store = js
	return nil
}

// onceCloseListener closes its listener once: both the shutdown sequence
// and http.Server.Shutdown close it, and a second close must not report an
// error.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error // the first Close's result; written inside once
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// displayAddr is the host:port to print: an unspecified host (":8080",
// "0.0.0.0") becomes localhost.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
