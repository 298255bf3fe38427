package sockets

import (
	"log/slog"
	"net/http"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultConnectTimeout = 45 * time.Second
	DefaultAckTimeout     = 30 * time.Second
	DefaultRecoveryWindow = 2 * time.Minute
)

// Config configures a Server. Every zero value means the documented default.
type Config struct {
	// PingInterval is how often the engine pings each client; zero means 25s.
	PingInterval time.Duration
	// PingTimeout: a client silent for PingInterval+PingTimeout is disconnected with reason
	// "ping timeout"; zero means 20s.
	PingTimeout time.Duration
	// MaxPayload is the largest message or HTTP body accepted from a client, in bytes; zero
	// means 1,000,000.
	MaxPayload int
	// UpgradeTimeout bounds the polling-to-WebSocket upgrade; zero means 10s.
	UpgradeTimeout time.Duration
	// AllowedOrigins lists origins allowed besides same-origin requests; "*" allows all.
	AllowedOrigins []string
	// CheckOrigin, if set, replaces the origin check for requests with an Origin header.
	CheckOrigin func(r *http.Request) bool
	// WriteQueueBytes bounds what is queued to send to one client, in bytes: each queued
	// Engine.IO message (a packet's text, and each binary attachment) counts its payload plus
	// 64 bytes, and a broadcast counts in the queue of every receiver. While a client's queue
	// holds at most this, emits of any size are queued; past it the client is disconnected
	// with reason "transport error" (volatile emits are dropped instead), both transports
	// alike. Zero means 4 MiB, or 2*MaxPayload if that is larger.
	WriteQueueBytes int
	// BlockingReads reads every WebSocket with a goroutine blocked in its read (and its own
	// 4 KiB buffer) for the connection's whole life, instead of parking idle connections
	// without a goroutine or buffer (Linux). For debugging, and as the baseline of the
	// default; see docs/sockets.md.
	BlockingReads bool

	// ConnectTimeout closes an engine connection that has not connected to any namespace
	// this long after its handshake; zero means 45s.
	ConnectTimeout time.Duration
	// AckTimeout bounds Socket.EmitWithAck when its context has no deadline; zero means 30s.
	AckTimeout time.Duration

	// Recovery configures connection state recovery; off unless Recovery.Enabled.
	Recovery Recovery

	// Adapter builds the adapter of each namespace; nil means NewMemoryAdapter.
	Adapter func(nsp *Namespace) Adapter

	// Logger receives debug and error logs; nil discards them.
	Logger *slog.Logger
}

// Recovery configures connection state recovery (Socket.IO 4.6+ semantics). It is off by
// default because it changes what clients see: every event sent through the adapter carries
// its offset as an extra last argument.
type Recovery struct {
	// Enabled turns recovery on.
	Enabled bool
	// Window is how long a session that disconnected unexpectedly ("transport close",
	// "transport error", "ping timeout", "forced close", "server shutting down") and the
	// packets sent meanwhile are kept; zero means 2 minutes.
	Window time.Duration
	// RunMiddlewares runs the namespace middlewares for recovered sessions too; by default
	// they are skipped, as in Socket.IO.
	RunMiddlewares bool
}

func (c *Config) setDefaults() {
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.Recovery.Window <= 0 {
		c.Recovery.Window = DefaultRecoveryWindow
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Adapter == nil {
		c.Adapter = func(nsp *Namespace) Adapter { return NewMemoryAdapter(nsp) }
	}
}
