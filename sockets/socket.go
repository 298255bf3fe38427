package sockets

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"sync"

	"github.com/collabd/collabd/sockets/parser"
)

// Socket states.
const (
	stateConnecting = iota
	stateConnected
	stateClosed
)

// Disconnect reasons reported to OnDisconnect handlers.
const (
	ReasonClientNamespaceDisconnect = "client namespace disconnect"
	ReasonServerNamespaceDisconnect = "server namespace disconnect"
	ReasonTransportClose            = "transport close"
	ReasonTransportError            = "transport error"
	ReasonPingTimeout               = "ping timeout"
	ReasonParseError                = "parse error"
	ReasonForcedClose               = "forced close"
	ReasonServerShuttingDown        = "server shutting down"
)

// recoverable lists the reasons after which a session is kept for recovery.
func recoverable(reason string) bool {
	switch reason {
	case ReasonTransportClose, ReasonTransportError, ReasonPingTimeout, ReasonForcedClose, ReasonServerShuttingDown:
		return true
	}
	return false
}

// Handler handles one event. It runs on the connection's reader goroutine: the handlers of
// one socket (and of every socket on the same engine connection) run one at a time, in
// arrival order. A handler must not block for long; it may keep ev and answer ev.Ack later
// from another goroutine.
type Handler func(s *Socket, ev *Event)

// Socket is a client connected to one namespace. All methods are safe for concurrent use.
type Socket struct {
	id        string
	pid       string
	nsp       *Namespace
	client    *client
	auth      json.RawMessage
	recovered bool

	mu           sync.Mutex // guards every field below
	state        int
	reason       string
	handlers     map[string]Handler
	anyHandlers  []Handler
	onDisconnect []func(*Socket, string)
	acks         map[uint64]*pendingAck
	data         any
	pending      []string // rooms joined before the socket was connected (in a middleware)

	// sendMu orders deliveries to this socket: the missed packets of a recovered session are
	// queued before any live packet. It is never held while calling user code.
	sendMu   sync.Mutex
	replayed uint64 // guarded by sendMu: highest stored sequence number already replayed
}

type pendingAck struct {
	fn    func(*Reply, error)
	timer *time.Timer
}

func newSocket(nsp *Namespace, cl *client, auth json.RawMessage, sess *Session) *Socket {
	s := &Socket{nsp: nsp, client: cl, auth: auth}
	if sess != nil {
		s.id, s.pid, s.data, s.recovered = sess.SID, sess.PID, sess.Data, true
	} else {
		s.id = newID()
		if nsp.srv.cfg.Recovery.Enabled {
			s.pid = newID()
		}
	}
	return s
}

// ID returns the socket id, which is also the name of a room the socket is in.
func (s *Socket) ID() string { return s.id }

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Auth returns the CONNECT payload the client sent ({} if none).
func (s *Socket) Auth() json.RawMessage { return s.auth }

// Recovered reports whether the socket is a recovered session (same id, rooms and data).
func (s *Socket) Recovered() bool { return s.recovered }

// Request returns the engine handshake request (headers, query, remote address).
func (s *Socket) Request() *http.Request { return s.client.conn.Request() }

// Transport returns "polling" or "websocket".
func (s *Socket) Transport() string { return s.client.conn.Transport() }

// ConnID returns the id of the underlying engine connection.
func (s *Socket) ConnID() string { return s.client.conn.ID() }

// Connected reports whether the socket is connected.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateConnected
}

// DisconnectReason returns the reason the socket disconnected with, or "".
func (s *Socket) DisconnectReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// Data returns the application value attached with SetData; it survives recovery.
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// SetData attaches an application value to the socket.
func (s *Socket) SetData(v any) {
	s.mu.Lock()
	s.data = v
	s.mu.Unlock()
}

// On sets the handler of event for this socket, replacing any previous one; it takes
// precedence over a handler set with Namespace.On.
func (s *Socket) On(event string, h Handler) {
	s.mu.Lock()
	if s.handlers == nil {
		s.handlers = make(map[string]Handler)
	}
	s.handlers[event] = h
	s.mu.Unlock()
}

// OnAny adds a catch-all handler, called for every event before the event's own handler.
func (s *Socket) OnAny(h Handler) {
	s.mu.Lock()
	s.anyHandlers = append(s.anyHandlers, h)
	s.mu.Unlock()
}

// OnDisconnect adds fn, called once when the socket disconnects, with the reason. It runs on
// the goroutine that noticed the disconnection (the reader, a timer, or the caller of
// Disconnect), after the socket left its rooms.
func (s *Socket) OnDisconnect(fn func(s *Socket, reason string)) {
	s.mu.Lock()
	s.onDisconnect = append(s.onDisconnect, fn)
	s.mu.Unlock()
}

// Join adds the socket to rooms. Called from a middleware, the rooms are joined when the
// socket connects.
func (s *Socket) Join(rooms ...string) {
	s.mu.Lock()
	switch s.state {
	case stateConnecting:
		s.pending = append(s.pending, rooms...)
		s.mu.Unlock()
		return
	case stateClosed:
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.nsp.adapter.AddAll(s.id, rooms)
}

// Leave removes the socket from room.
func (s *Socket) Leave(room string) { s.nsp.adapter.Del(s.id, room) }

// Rooms returns the rooms of the socket, sorted; they include its id.
func (s *Socket) Rooms() []string {
	r := s.nsp.adapter.SocketRooms(s.id)
	slices.Sort(r)
	return r
}

// SendEncoded queues an encoded packet (Encode, EncodeEvent, EventWriter) for this socket; e
// must be encoded for the socket's namespace. Volatile packets are dropped when the queue is
// full; otherwise a full queue closes the connection.
func (s *Socket) SendEncoded(e *Encoded, volatile bool) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if e.Seq != 0 && e.Seq <= s.replayed {
		return nil // already delivered as a missed packet
	}
	return s.client.send(e, volatile)
}

func (s *Socket) sendPacket(p *parser.Packet, volatile bool) error {
	e, err := Encode(p)
	if err != nil {
		return err
	}
	return s.SendEncoded(e, volatile)
}

func isReserved(event string) bool {
	switch event {
	case "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener":
		return true
	}
	return false
}

func eventPacket(nsp, event string, args []any) (*parser.Packet, error) {
	if isReserved(event) {
		return nil, ErrReservedEvent
	}
	data, atts, err := parser.MarshalArgs(event, args...)
	if err != nil {
		if err == parser.ErrTooManyAttachments {
			return nil, ErrTooManyAttachments
		}
		return nil, err
	}
	return &parser.Packet{Type: parser.Event, Namespace: nsp, Data: data, Attachments: atts}, nil
}

// Emit sends an event to this socket. Arguments are encoded as JSON; []byte and Binary values
// anywhere inside them travel as binary attachments (do not modify them afterwards). With
// recovery enabled the event goes through the adapter, is stored, and carries its offset as
// an extra last argument.
func (s *Socket) Emit(event string, args ...any) error {
	p, err := eventPacket(s.nsp.name, event, args)
	if err != nil {
		return err
	}
	if !s.Connected() {
		if s.nsp.RecoveryEnabled() {
			// Still stored for the session's recovery, as a broadcast to its id room.
			return s.nsp.adapter.Broadcast(p, BroadcastOptions{Rooms: []string{s.id}})
		}
		return ErrClosed
	}
	if s.nsp.RecoveryEnabled() {
		return s.nsp.adapter.Broadcast(p, BroadcastOptions{Rooms: []string{s.id}})
	}
	return s.sendPacket(p, false)
}

// EmitVolatile sends an event that is dropped if the socket's queue is full.
func (s *Socket) EmitVolatile(event string, args ...any) error {
	p, err := eventPacket(s.nsp.name, event, args)
	if err != nil {
		return err
	}
	if !s.Connected() {
		return ErrClosed
	}
	return s.sendPacket(p, true)
}

// EmitWithAck sends an event asking for an acknowledgement and waits for it, for ctx, bounded
// by Config.AckTimeout when ctx has no deadline. It fails with ErrAckTimeout, ErrDisconnected
// or ctx's error. It must not be called from a handler of the same connection (the reply could
// not be read while the handler waits); use EmitWithAckFunc there.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (*Reply, error) {
	timeout := s.nsp.srv.cfg.AckTimeout
	if _, ok := ctx.Deadline(); ok {
		timeout = 0 // ctx bounds the wait
	}
	type result struct {
		r   *Reply
		err error
	}
	ch := make(chan result, 1)
	id, err := s.emitWithAck(event, timeout, func(r *Reply, err error) { ch <- result{r, err} }, args)
	if err != nil {
		return nil, err
	}
	select {
	case res := <-ch:
		return res.r, res.err
	case <-ctx.Done():
		s.dropAck(id)
		return nil, ctx.Err()
	}
}

// EmitWithAckFunc sends an event asking for an acknowledgement; fn receives the reply, or
// ErrAckTimeout after timeout (zero means Config.AckTimeout), or ErrDisconnected. fn is called
// exactly once (unless EmitWithAckFunc returns an error), on the reader goroutine, a timer
// goroutine or the goroutine that disconnected the socket; it must not block.
func (s *Socket) EmitWithAckFunc(event string, timeout time.Duration, fn func(r *Reply, err error), args ...any) error {
	if timeout <= 0 {
		timeout = s.nsp.srv.cfg.AckTimeout
	}
	_, err := s.emitWithAck(event, timeout, fn, args)
	return err
}

func (s *Socket) emitWithAck(event string, timeout time.Duration, fn func(*Reply, error), args []any) (uint64, error) {
	p, err := eventPacket(s.nsp.name, event, args)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	if s.state != stateConnected {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	id := s.nsp.nextAckID()
	pa := &pendingAck{fn: fn}
	if s.acks == nil {
		s.acks = make(map[uint64]*pendingAck)
	}
	s.acks[id] = pa
	if timeout > 0 {
		pa.timer = time.AfterFunc(timeout, func() {
			if s.takeAck(id) != nil {
				fn(nil, ErrAckTimeout)
			}
		})
	}
	s.mu.Unlock()
	p.ID, p.HasID = id, true
	if err := s.sendPacket(p, false); err != nil {
		if s.takeAck(id) != nil {
			return 0, err
		}
		return id, nil // already resolved by the disconnection
	}
	return id, nil
}

// AwaitAck registers fn for the acknowledgement id of a packet about to be sent to this socket
// (for adapters implementing BroadcastWithAck). fn is called once: with the reply, or with
// ErrDisconnected. It returns false if the socket is not connected.
func (s *Socket) AwaitAck(id uint64, fn func(*Reply, error)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateConnected {
		return false
	}
	if s.acks == nil {
		s.acks = make(map[uint64]*pendingAck)
	}
	s.acks[id] = &pendingAck{fn: fn}
	return true
}

// CancelAck forgets the acknowledgement id registered with AwaitAck.
func (s *Socket) CancelAck(id uint64) { s.takeAck(id) }

func (s *Socket) takeAck(id uint64) *pendingAck {
	s.mu.Lock()
	defer s.mu.Unlock()
	pa := s.acks[id]
	if pa != nil {
		delete(s.acks, id)
		if pa.timer != nil {
			pa.timer.Stop()
		}
	}
	return pa
}

func (s *Socket) dropAck(id uint64) { s.takeAck(id) }

func (s *Socket) onAck(p *parser.Packet) {
	pa := s.takeAck(p.ID)
	if pa == nil {
		return
	}
	args, err := p.Args()
	if err != nil {
		pa.fn(nil, err)
		return
	}
	pa.fn(&Reply{Args: Args{raw: args, atts: p.Attachments}}, nil)
}

func (s *Socket) onEvent(p *parser.Packet) {
	raw, err := p.Args()
	if err != nil || len(raw) == 0 {
		return // Decode validated it already
	}
	ev := &Event{Name: p.EventName(), Args: Args{raw: raw[1:], atts: p.Attachments}}
	ev.Ack = &Ack{s: s, id: p.ID, wanted: p.HasID}
	s.mu.Lock()
	anys := s.anyHandlers
	h := s.handlers[ev.Name]
	connected := s.state == stateConnected
	s.mu.Unlock()
	if !connected {
		return
	}
	nsAny, nsH := s.nsp.handlersFor(ev.Name)
	if h == nil {
		h = nsH
	}
	for _, a := range nsAny {
		a(s, ev)
	}
	for _, a := range anys {
		a(s, ev)
	}
	if h != nil {
		h(s, ev)
	}
}

// Disconnect disconnects the socket from its namespace: the client receives DISCONNECT and
// the reason is "server namespace disconnect". With close, every socket of the engine
// connection is disconnected that way and the connection is closed.
func (s *Socket) Disconnect(close bool) {
	if close {
		s.client.disconnectAll()
		return
	}
	s.mu.Lock()
	connected := s.state == stateConnected
	s.mu.Unlock()
	if !connected {
		return
	}
	_ = s.sendPacket(&parser.Packet{Type: parser.Disconnect, Namespace: s.nsp.name}, false)
	s.onClose(ReasonServerNamespaceDisconnect)
}

// CloseConn closes the socket's whole engine connection after flushing what is queued, as
// Node's socket.conn.close(): every socket on it disconnects with reason "forced close",
// and with recovery enabled their sessions are kept.
func (s *Socket) CloseConn() { s.client.conn.Close(ReasonForcedClose) }

func (s *Socket) onClose(reason string) {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return
	}
	wasConnected := s.state == stateConnected
	s.state = stateClosed
	s.reason = reason
	acks := s.acks
	s.acks = nil
	handlers := s.onDisconnect
	data := s.data
	s.mu.Unlock()

	s.client.remove(s)
	if !wasConnected {
		return
	}
	s.nsp.remove(s)
	if s.nsp.RecoveryEnabled() && recoverable(reason) {
		s.nsp.adapter.PersistSession(&Session{
			SID: s.id, PID: s.pid, Rooms: s.nsp.adapter.SocketRooms(s.id), Data: data, Auth: s.auth,
		})
	}
	s.nsp.adapter.DelAll(s.id)
	for _, pa := range acks {
		if pa.timer != nil {
			pa.timer.Stop()
		}
		pa.fn(nil, ErrDisconnected)
	}
	for _, h := range handlers {
		h(s, reason)
	}
}

// Broadcast selects every socket of the namespace but this one.
func (s *Socket) Broadcast() BroadcastOperator {
	return BroadcastOperator{nsp: s.nsp, except: []string{s.id}}
}

// To selects the members of rooms, except this socket.
func (s *Socket) To(rooms ...string) BroadcastOperator { return s.Broadcast().To(rooms...) }

// In is To.
func (s *Socket) In(rooms ...string) BroadcastOperator { return s.Broadcast().To(rooms...) }

// Except selects every socket but the members of rooms and this socket.
func (s *Socket) Except(rooms ...string) BroadcastOperator { return s.Broadcast().Except(rooms...) }

// DecodeAuth decodes the CONNECT payload into dst.
func (s *Socket) DecodeAuth(dst any) error { return json.Unmarshal(s.auth, dst) }
