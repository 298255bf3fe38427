package sockets

import (
	"context"
	"encoding/json"

	"sync"
	"sync/atomic"

	"github.com/collabd/collabd/sockets/parser"
)

// Middleware runs for every socket connecting to a namespace, before it is connected, in the
// order added. Returning an error refuses the connection: a *ConnectError is sent as is
// ({message, data}), any other error as {message: err.Error()}. Middlewares run on the
// connection's reader goroutine: they may block briefly (an auth lookup), not for long.
type Middleware func(s *Socket) error

// Namespace is a communication channel multiplexed on the engine connections (Socket.IO's
// "/", "/chat", ...). All methods are safe for concurrent use.
type Namespace struct {
	name    string
	srv     *Server
	adapter Adapter
	ackIDs  atomic.Uint64 // acknowledgement ids, shared by every socket so broadcasts can use one

	mu          sync.RWMutex // guards sockets, middlewares, onConnect, handlers and anyHandlers
	sockets     map[string]*Socket
	middlewares []Middleware
	onConnect   []func(*Socket)
	handlers    map[string]Handler
	anyHandlers []Handler
}

func newNamespace(s *Server, name string) *Namespace {
	n := &Namespace{name: name, srv: s, sockets: make(map[string]*Socket)}
	n.adapter = s.cfg.Adapter(n)
	return n
}

// nextAckID returns a fresh acknowledgement id, unique in the namespace.
func (n *Namespace) nextAckID() uint64 { return n.ackIDs.Add(1) - 1 }

// NextAckID returns a fresh acknowledgement id for a packet (for adapters).
func (n *Namespace) NextAckID() uint64 { return n.nextAckID() }

// Name returns the namespace name, starting with "/".
func (n *Namespace) Name() string { return n.name }

// Server returns the server the namespace belongs to.
func (n *Namespace) Server() *Server { return n.srv }

// Adapter returns the namespace's adapter.
func (n *Namespace) Adapter() Adapter { return n.adapter }

// RecoveryEnabled reports whether connection state recovery is on (for adapters).
func (n *Namespace) RecoveryEnabled() bool { return n.srv.cfg.Recovery.Enabled }

// Use adds a middleware. Middlewares are skipped for recovered sessions unless
// Config.Recovery.RunMiddlewares is set.
func (n *Namespace) Use(mw Middleware) {
	n.mu.Lock()
	n.middlewares = append(n.middlewares, mw)
	n.mu.Unlock()
}

// OnConnection registers fn, called for every socket that connects, after the CONNECT
// acknowledgement is queued and before any of its events is dispatched. Register the socket's
// handlers there. fn runs on the connection's reader goroutine.
func (n *Namespace) OnConnection(fn func(*Socket)) {
	n.mu.Lock()
	n.onConnect = append(n.onConnect, fn)
	n.mu.Unlock()
}

// On sets the handler of event for every socket of the namespace (a Socket.On for the same
// event takes precedence). Registering handlers once per namespace instead of once per
// socket saves a map per connection.
func (n *Namespace) On(event string, h Handler) {
	n.mu.Lock()
	if n.handlers == nil {
		n.handlers = make(map[string]Handler)
	}
	n.handlers[event] = h
	n.mu.Unlock()
}

// OnAny adds a catch-all handler for every socket of the namespace; it runs before the
// sockets' own catch-all handlers.
func (n *Namespace) OnAny(h Handler) {
	n.mu.Lock()
	n.anyHandlers = append(n.anyHandlers, h)
	n.mu.Unlock()
}

func (n *Namespace) handlersFor(event string) ([]Handler, Handler) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.anyHandlers, n.handlers[event]
}

// LocalSocket returns the connected socket id of this server, or nil.
func (n *Namespace) LocalSocket(id string) *Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.sockets[id]
}

// Sockets returns the number of sockets connected to the namespace on this server.
func (n *Namespace) Sockets() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.sockets)
}

func (n *Namespace) runMiddlewares(s *Socket) error {
	n.mu.RLock()
	mws := n.middlewares
	n.mu.RUnlock()
	for _, mw := range mws {
		if err := mw(s); err != nil {
			return err
		}
	}
	return nil
}

// add connects s: registers it, joins its rooms, queues the missed packets of a recovered
// session and the CONNECT acknowledgement, then runs the connection handlers.
func (n *Namespace) add(s *Socket, sess *Session) {
	s.mu.Lock()
	if s.state != stateConnecting {
		s.mu.Unlock()
		return
	}
	s.state = stateConnected
	// Hold sendMu until the missed packets are queued: live packets wait behind them.
	s.sendMu.Lock()
	n.mu.Lock()
	n.sockets[s.id] = s
	handlers := n.onConnect
	n.mu.Unlock()
	rooms := append([]string{s.id}, s.pending...)
	s.pending = nil
	if sess != nil {
		for _, r := range sess.Rooms {
			if r != s.id {
				rooms = append(rooms, r)
			}
		}
	}
	n.adapter.AddAll(s.id, rooms)
	s.mu.Unlock()

	if sess != nil {
		missed, err := n.adapter.MissedPackets(sess)
		if err != nil {
			n.srv.cfg.Logger.Debug("sockets: missed packets", "err", err)
		}
		for _, e := range missed {
			_ = s.client.send(e, false)
			s.replayed = max(s.replayed, e.Seq)
		}
	}
	ack := struct {
		SID string `json:"sid"`
		PID string `json:"pid,omitempty"`
	}{s.id, s.pid}
	data, _ := json.Marshal(ack)
	_ = s.client.sendPacket(&parser.Packet{Type: parser.Connect, Namespace: n.name, Data: data})
	s.sendMu.Unlock()
	for _, h := range handlers {
		h(s)
	}
}

func (n *Namespace) remove(s *Socket) {
	n.mu.Lock()
	if n.sockets[s.id] == s {
		delete(n.sockets, s.id)
	}
	n.mu.Unlock()
}

func (n *Namespace) op() BroadcastOperator { return BroadcastOperator{nsp: n} }

// Emit sends an event to every socket of the namespace.
func (n *Namespace) Emit(event string, args ...any) error { return n.op().Emit(event, args...) }

// To selects the members of rooms.
func (n *Namespace) To(rooms ...string) BroadcastOperator { return n.op().To(rooms...) }

// In is To.
func (n *Namespace) In(rooms ...string) BroadcastOperator { return n.op().To(rooms...) }

// Except skips the members of rooms.
func (n *Namespace) Except(rooms ...string) BroadcastOperator { return n.op().Except(rooms...) }

// Local restricts the broadcast to this server.
func (n *Namespace) Local() BroadcastOperator { return n.op().Local() }

// Volatile makes the broadcast droppable for receivers whose queue is full.
func (n *Namespace) Volatile() BroadcastOperator { return n.op().Volatile() }

// FetchSockets describes every socket of the namespace.
func (n *Namespace) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	return n.op().FetchSockets(ctx)
}

// SocketsJoin makes every socket of the namespace join rooms.
func (n *Namespace) SocketsJoin(ctx context.Context, rooms ...string) error {
	return n.op().SocketsJoin(ctx, rooms...)
}

// SocketsLeave makes every socket of the namespace leave rooms.
func (n *Namespace) SocketsLeave(ctx context.Context, rooms ...string) error {
	return n.op().SocketsLeave(ctx, rooms...)
}

// DisconnectSockets disconnects every socket of the namespace.
func (n *Namespace) DisconnectSockets(ctx context.Context, close bool) error {
	return n.op().DisconnectSockets(ctx, close)
}
