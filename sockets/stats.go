package sockets

import (
	"errors"
	"sync/atomic"

	"github.com/collabd/collabd/sockets/engineio"
)

// Stats is a snapshot of a Server's counters (see Server.Stats).
type Stats struct {
	// Connections is the number of open engine connections.
	Connections int
	// Sockets is the number of connected sockets over all namespaces.
	Sockets int
	// Dropped counts volatile packets dropped because a receiver's queue was full.
	Dropped uint64
	// SlowClosed counts connections closed because their send queue went past
	// Config.WriteQueueBytes (reason "transport error").
	SlowClosed uint64
}

// counters are the Server's cumulative counters.
type counters struct {
	dropped    atomic.Uint64
	slowClosed atomic.Uint64
}

// Stats returns the server's current counts. It is cheap enough for every metrics scrape:
// atomic counters and one short read lock per namespace.
func (s *Server) Stats() Stats {
	st := Stats{
		Connections: s.engine.Count(),
		Dropped:     s.stats.dropped.Load(),
		SlowClosed:  s.stats.slowClosed.Load(),
	}
	s.mu.RLock()
	for _, n := range s.nsps {
		st.Sockets += n.Sockets()
	}
	s.mu.RUnlock()
	return st
}

// countVolatile records the outcome of a volatile send to a client.
func (s *Server) countVolatile(err error) {
	if errors.Is(err, engineio.ErrQueueFull) {
		s.stats.dropped.Add(1)
	}
}

// countClose records why an engine connection closed; a slow client's disconnection is
// also logged, with the cause that tells its queue's bytes and the bound.
func (s *Server) countClose(sid string, cause error) {
	if errors.Is(cause, engineio.ErrQueueFull) {
		s.stats.slowClosed.Add(1)
		s.cfg.Logger.Warn("sockets: slow client disconnected", "sid", sid, "cause", cause)
	}
}
