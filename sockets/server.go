package sockets

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"

	"github.com/collabd/collabd/sockets/engineio"
)

// Server is a Socket.IO v5 server (Engine.IO v4 underneath). It is an http.Handler to mount
// at /socket.io/. All methods are safe for concurrent use.
type Server struct {
	cfg    Config
	engine *engineio.Server
	main   *Namespace

	mu       sync.RWMutex // guards nsps, clients and closed
	nsps     map[string]*Namespace
	clients  map[*client]struct{}
	closed   bool
	shutOnce sync.Once
	shutErr  error

	wg sync.WaitGroup // goroutines that disconnect the sockets of closed connections

	stats counters
}

// New returns a Server for cfg, with the main namespace "/" created.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.MaxPayload < 0 || cfg.WriteQueueBytes < 0 || cfg.PingInterval < 0 || cfg.PingTimeout < 0 {
		return nil, errors.New("sockets: negative limit in Config")
	}
	s := &Server{
		cfg:     cfg,
		nsps:    make(map[string]*Namespace),
		clients: make(map[*client]struct{}),
	}
	s.engine = engineio.NewServer(engineio.Config{
		PingInterval:    cfg.PingInterval,
		PingTimeout:     cfg.PingTimeout,
		MaxPayload:      cfg.MaxPayload,
		UpgradeTimeout:  cfg.UpgradeTimeout,
		AllowedOrigins:  cfg.AllowedOrigins,
		CheckOrigin:     cfg.CheckOrigin,
		WriteQueueBytes: cfg.WriteQueueBytes,
		BlockingReads:   cfg.BlockingReads,
		Logger:          cfg.Logger,
		OnConnection:    s.onEngineConnection,
	})
	s.main = s.Of("/")
	return s, nil
}

// ServeHTTP answers Engine.IO requests (polling, WebSocket, upgrades, CORS preflights).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Of returns the namespace name, creating it if needed. A name without a leading "/" gets one.
// Clients can only connect to namespaces created with Of; others are refused with
// CONNECT_ERROR {"message":"Invalid namespace"}.
func (s *Server) Of(name string) *Namespace {
	name = nsName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.nsps[name]; ok {
		return n
	}
	n := newNamespace(s, name)
	s.nsps[name] = n
	return n
}

func (s *Server) namespace(name string) *Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nsps[name]
}

// OnConnection registers fn for new sockets of the main namespace (see Namespace.OnConnection).
func (s *Server) OnConnection(fn func(*Socket)) { s.main.OnConnection(fn) }

// On sets a handler of event for every socket of the main namespace (see Namespace.On).
func (s *Server) On(event string, h Handler) { s.main.On(event, h) }

// Use adds a middleware to the main namespace (see Namespace.Use).
func (s *Server) Use(mw Middleware) { s.main.Use(mw) }

// Emit sends an event to every socket of the main namespace.
func (s *Server) Emit(event string, args ...any) error { return s.main.Emit(event, args...) }

// To selects the members of rooms in the main namespace.
func (s *Server) To(rooms ...string) BroadcastOperator { return s.main.To(rooms...) }

// In is To.
func (s *Server) In(rooms ...string) BroadcastOperator { return s.main.To(rooms...) }

// Except skips the members of rooms in the main namespace.
func (s *Server) Except(rooms ...string) BroadcastOperator { return s.main.Except(rooms...) }

// Local restricts a broadcast of the main namespace to this server.
func (s *Server) Local() BroadcastOperator { return s.main.Local() }

// Volatile makes a broadcast of the main namespace droppable.
func (s *Server) Volatile() BroadcastOperator { return s.main.Volatile() }

// Count returns the number of open engine connections.
func (s *Server) Count() int { return s.engine.Count() }

// Shutdown closes every session with reason "server shutting down", refuses new ones, waits
// until the engine's goroutines have ended or ctx is done, and closes the adapters. It is
// idempotent; later calls wait the same way.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	err := s.engine.Shutdown(ctx)
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	s.shutOnce.Do(func() {
		s.mu.RLock()
		nsps := make([]*Namespace, 0, len(s.nsps))
		for _, n := range s.nsps {
			nsps = append(nsps, n)
		}
		s.mu.RUnlock()
		for _, n := range nsps {
			if cerr := n.adapter.Close(); cerr != nil {
				s.shutErr = cerr
			}
		}
	})
	if err != nil {
		return err
	}
	return s.shutErr
}

func (s *Server) onEngineConnection(c *engineio.Conn) {
	cl := newClient(s, c)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close("server shutting down")
		return
	}
	s.clients[cl] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) removeClient(cl *client) {
	s.mu.Lock()
	delete(s.clients, cl)
	s.mu.Unlock()
}

// newID returns a random 20-character URL-safe id.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
