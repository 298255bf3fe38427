package engineio

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults for the zero values of Config.
const (
	DefaultPingInterval   = 25 * time.Second
	DefaultPingTimeout    = 20 * time.Second
	DefaultMaxPayload     = 1_000_000
	DefaultUpgradeTimeout = 10 * time.Second
	// DefaultWriteQueueBytes is the default of Config.WriteQueueBytes: 4 MiB,
	// unless twice MaxPayload is more.
	DefaultWriteQueueBytes = 4 << 20
)

// writeWait bounds one WebSocket write, and the flush of a closing
// connection.
const writeWait = 10 * time.Second

// Config configures a Server. Every zero value means the documented default.
type Config struct {
	// PingInterval is how often the server sends a ping; zero means 25s.
	PingInterval time.Duration
	// PingTimeout: a session silent for PingInterval+PingTimeout is closed
	// with reason "ping timeout"; zero means 20s. Every received packet
	// counts as a sign of life; the clock starts at the handshake.
	PingTimeout time.Duration
	// MaxPayload is the largest HTTP POST body or WebSocket message accepted,
	// in bytes; zero means 1,000,000.
	MaxPayload int
	// UpgradeTimeout bounds the polling-to-WebSocket upgrade (probe to
	// upgrade packet); zero means 10s.
	UpgradeTimeout time.Duration
	// AllowedOrigins lists origins (scheme://host[:port]) allowed in addition
	// to same-origin requests; "*" allows every origin. Requests without an
	// Origin header are always allowed.
	AllowedOrigins []string
	// CheckOrigin, if set, replaces the same-origin and AllowedOrigins check
	// for requests that carry an Origin header.
	CheckOrigin func(r *http.Request) bool
	// WriteQueueBytes bounds the outgoing messages queued per connection, in
	// bytes: each queued message counts its WebSocket frame payload (for a
	// text message the type digit and the data) plus 64 bytes, and a message
	// shared by many connections counts in each queue. While the queue holds
	// at most this, Send takes messages of any size; past it Send closes the
	// connection and TrySend drops (ErrQueueFull). A message taken by the
	// transport to be written no longer counts. Zero means
	// DefaultWriteQueueBytes (4 MiB) or 2*MaxPayload, whichever is larger.
	WriteQueueBytes int
	// BlockingReads gives every WebSocket a reader goroutine blocked in its
	// read, with its own 4 KiB read buffer, for the connection's whole life:
	// the plain strategy, for debugging and as the baseline of the default
	// one, where an idle connection holds no goroutine and no read buffer
	// (Linux only; see docs/sockets.md). Connections over TLS and systems
	// other than Linux always read so.
	BlockingReads bool
	// Logger receives debug and error logs; nil discards them.
	Logger *slog.Logger
	// OnConnection is called once per new session, on the handshake
	// request's goroutine, before any message of it is delivered. Set the
	// Conn's OnMessage and OnClose here. It must not block for long.
	OnConnection func(c *Conn)
}

// Server is an Engine.IO v4 server. It is an http.Handler; mount it under a
// prefix such as /socket.io/ (the path itself is ignored). All methods are
// safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader
	epoch    time.Time // base of the monotonic clock used for heartbeats

	mu       sync.RWMutex     // guards conns and shutdown
	conns    map[string]*Conn // every session by id, including closing polling sessions
	shutdown bool

	open atomic.Int64 // sessions not yet closed

	// idle parks the readers of idle WebSockets (started with the first
	// WebSocket; nil before, or where unavailable).
	idle     atomic.Pointer[poller]
	idleOnce sync.Once

	// Goroutine tracking for Shutdown: active counts goroutines and
	// requests working for sessions; done is closed once active reaches zero
	// after draining started.
	active    atomic.Int64
	draining  atomic.Bool
	doneOnce  sync.Once
	done      chan struct{}
	closeOnce sync.Once
}

// writeBufferPool is shared by every WebSocket connection of every server.
var writeBufferPool = &sync.Pool{}

// NewServer returns a Server for cfg.
func NewServer(cfg Config) *Server {
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = DefaultPingTimeout
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.UpgradeTimeout <= 0 {
		cfg.UpgradeTimeout = DefaultUpgradeTimeout
	}
	if cfg.WriteQueueBytes <= 0 {
		// At least two of the largest messages a client may send: the
		// relay of one, with as much again in attachments or other
		// messages, does not overflow.
		cfg.WriteQueueBytes = max(DefaultWriteQueueBytes, 2*cfg.MaxPayload)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:   cfg,
		log:   log,
		epoch: time.Now(),
		conns: make(map[string]*Conn),
		done:  make(chan struct{}),
	}
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  0, // gorilla's reader is not used after the handshake
		WriteBufferSize: 4096,
		WriteBufferPool: writeBufferPool,
		// The origin was checked before the upgrade.
		CheckOrigin: func(*http.Request) bool { return true },
		// A refused upgrade (a missing or malformed Sec-WebSocket-Key, an
		// unsupported Sec-WebSocket-Version) gets the Engine.IO error body,
		// as the reference server answers, not an empty 200.
		Error: func(w http.ResponseWriter, _ *http.Request, _ int, _ error) { writeError(w, codeBadRequest) },
	}
	return s
}

// now returns the time since the server's epoch (monotonic).
func (s *Server) now() time.Duration { return time.Since(s.epoch) }

// Count returns the number of open sessions.
func (s *Server) Count() int { return int(s.open.Load()) }

// idlePoller returns the poller of idle WebSocket readers, or nil.
func (s *Server) idlePoller() *poller { return s.idle.Load() }

// startPoller starts the poller, once, unless Shutdown started.
func (s *Server) startPoller() {
	if s.cfg.BlockingReads {
		return
	}
	s.idleOnce.Do(func() {
		// Under s.mu: Shutdown, which sets s.shutdown under it, then
		// finds the poller to stop it.
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.shutdown {
			s.idle.Store(newPoller(s))
		}
	})
}

// track counts one goroutine or request working for a session; untrack
// ends it.
func (s *Server) track() { s.active.Add(1) }

func (s *Server) untrack() {
	if s.active.Add(-1) == 0 && s.draining.Load() {
		s.doneOnce.Do(func() { close(s.done) })
	}
}

// Shutdown closes every session with reason "server shutting down", refuses
// new ones, and waits until every goroutine of the engine has ended and
// every OnClose has returned, or ctx is done. A polling session without a pending GET is kept for up to a
// second so that its client's next GET reads the close packet; keep the HTTP
// server serving until Shutdown returns. It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.shutdown = true
		conns := make([]*Conn, 0, len(s.conns))
		for _, c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			c.closeWith("server shutting down", nil, closeFlush)
		}
		s.idlePoller().stop()
		s.draining.Store(true)
		if s.active.Load() == 0 {
			s.doneOnce.Do(func() { close(s.done) })
		}
	})
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if p := s.idlePoller(); p != nil {
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// lookup returns the session with id, or nil. A session whose heartbeat
// deadline has passed is closed here, so that an expired session is never
// served even if its timer is late.
func (s *Server) lookup(id string) *Conn {
	s.mu.RLock()
	c := s.conns[id]
	s.mu.RUnlock()
	if c != nil && c.expired() {
		c.closeWith("ping timeout", nil, closeAbort)
	}
	return c
}

// add registers c; it returns false after Shutdown.
func (s *Server) add(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	s.conns[c.id] = c
	s.open.Add(1)
	return true
}

// remove forgets c.
func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
	}
	s.mu.Unlock()
}

// newID returns a random, URL-safe session id (120 bits).
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ServeHTTP answers Engine.IO requests: handshakes, long-polling GET and
// POST, WebSocket connections and upgrades, and CORS preflights.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" {
		if !s.originAllowed(r, origin) {
			writeError(w, codeForbidden)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			h.Set("Access-Control-Allow-Headers", req)
		}
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}

	q := r.URL.Query()
	transport := q.Get("transport")
	if transport != "polling" && transport != "websocket" {
		writeError(w, codeUnknownTransport)
		return
	}
	if q.Get("EIO") != "4" {
		writeError(w, codeUnsupportedProto)
		return
	}
	isWS := websocket.IsWebSocketUpgrade(r)
	sid := q.Get("sid")
	if sid == "" {
		s.mu.RLock()
		down := s.shutdown
		s.mu.RUnlock()
		if down {
			http.Error(w, "server shutting down", http.StatusServiceUnavailable)
			return
		}
		switch {
		case transport == "polling" && r.Method == http.MethodGet && !isWS:
			s.handshakePolling(w, r)
		case transport == "websocket" && isWS:
			s.handshakeWebSocket(w, r)
		case transport == "websocket" && r.Method == http.MethodGet:
			writeError(w, codeBadRequest)
		default:
			writeError(w, codeBadHandshake)
		}
		return
	}

	c := s.lookup(sid)
	if c == nil {
		writeError(w, codeUnknownSID)
		return
	}
	switch {
	case transport == "websocket" && isWS:
		c.serveUpgrade(w, r)
	case transport == "polling" && r.Method == http.MethodGet && !isWS:
		c.servePoll(w, r)
	case transport == "polling" && r.Method == http.MethodPost:
		c.servePost(w, r)
	default:
		writeError(w, codeBadRequest)
	}
}

// originAllowed reports whether a request with the given Origin header is
// allowed: Config.CheckOrigin if set, else same host or AllowedOrigins.
func (s *Server) originAllowed(r *http.Request, origin string) bool {
	if s.cfg.CheckOrigin != nil {
		return s.cfg.CheckOrigin(r)
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// newConn builds a session for the handshake request r.
func (s *Server) newConn(r *http.Request, transport int) *Conn {
	c := &Conn{
		srv:       s,
		id:        newID(),
		hs:        compactHandshake(r),
		transport: transport,
	}
	now := s.now()
	c.lastSeen.Store(int64(now))
	c.nextPing = now + s.cfg.PingInterval
	return c
}

// handshakeHeaders are not kept for Conn.Request: they only served the
// WebSocket handshake.
var handshakeHeaders = map[string]bool{
	"Upgrade": true, "Connection": true, "Sec-Websocket-Key": true,
	"Sec-Websocket-Version": true, "Sec-Websocket-Extensions": true,
}

// handshake is what Conn.Request rebuilds the handshake request from: only
// what it promises, in own copies of the strings, so that nothing else of
// the request stays reachable. The *http.Request itself is built on the
// first call (most connections never need it).
type handshake struct {
	method, uri, proto string
	host, remoteAddr   string
	header             http.Header // nil when there is none
	tls                *tls.ConnectionState
}

func compactHandshake(r *http.Request) *handshake {
	hs := &handshake{
		method:     r.Method,
		uri:        strings.Clone(r.RequestURI),
		proto:      r.Proto,
		host:       strings.Clone(r.Host),
		remoteAddr: strings.Clone(r.RemoteAddr),
		tls:        r.TLS,
	}
	if hs.uri == "" {
		hs.uri = r.URL.RequestURI()
	}
	for k, vs := range r.Header {
		if handshakeHeaders[k] {
			continue
		}
		if hs.header == nil {
			hs.header = make(http.Header, len(r.Header))
		}
		cp := make([]string, len(vs))
		for i, v := range vs {
			cp[i] = strings.Clone(v)
		}
		hs.header[strings.Clone(k)] = cp
	}
	return hs
}

// request builds the *http.Request of hs.
func (hs *handshake) request() *http.Request {
	u, err := url.ParseRequestURI(hs.uri)
	if err != nil {
		u = &url.URL{}
	}
	h := hs.header
	if h == nil {
		h = http.Header{}
	}
	major, minor, _ := http.ParseHTTPVersion(hs.proto)
	return &http.Request{
		Method:     hs.method,
		URL:        u,
		Proto:      hs.proto,
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     h,
		Body:       http.NoBody,
		Host:       hs.host,
		RemoteAddr: hs.remoteAddr,
		RequestURI: hs.uri,
		TLS:        hs.tls,
	}
}

// openPacket returns the open packet's JSON for c.
func (s *Server) openPacket(c *Conn, upgrades bool) []byte {
	b := make([]byte, 0, 128)
	b = append(b, typeOpen)
	b = append(b, `{"sid":"`...)
	b = append(b, c.id...)
	b = append(b, `","upgrades":`...)
	if upgrades {
		b = append(b, `["websocket"]`...)
	} else {
		b = append(b, `[]`...)
	}
	b = append(b, `,"pingInterval":`...)
	b = strconv.AppendInt(b, s.cfg.PingInterval.Milliseconds(), 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, s.cfg.PingTimeout.Milliseconds(), 10)
	b = append(b, `,"maxPayload":`...)
	b = strconv.AppendInt(b, int64(s.cfg.MaxPayload), 10)
	b = append(b, '}')
	return b
}

// start registers c, calls OnConnection and starts its heartbeat. It
// returns false after Shutdown.
func (s *Server) start(c *Conn) bool {
	if !s.add(c) {
		return false
	}
	if s.cfg.OnConnection != nil {
		s.cfg.OnConnection(c)
	}
	c.startHeartbeat()
	return true
}

// handshakePolling opens a long-polling session.
func (s *Server) handshakePolling(w http.ResponseWriter, r *http.Request) {
	c := s.newConn(r, transportPolling)
	open := s.openPacket(c, true)
	if !s.start(c) {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	writePollingBody(w, open)
	s.log.Debug("engineio: session opened", "sid", c.id, "transport", "polling")
}

// writePollingBody writes a long-polling response body.
func writePollingBody(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
