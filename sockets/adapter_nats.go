package sockets

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/collabd/collabd/sockets/parser"
)

// Defaults for the zero values of NATSAdapterOptions.
const (
	DefaultNATSPrefix            = "collabd.sockets"
	DefaultNATSRequestTimeout    = 5 * time.Second
	DefaultNATSHeartbeatInterval = 5 * time.Second
)

// Errors of the NATS adapter.
var (
	// ErrNATSTimeout: some nodes did not answer a FetchSockets, SocketsJoin, SocketsLeave or
	// DisconnectSockets in time; what the others answered is kept.
	ErrNATSTimeout = errors.New("sockets: nats adapter: nodes did not answer in time")
	// ErrNATSClosed: the adapter was closed.
	ErrNATSClosed = errors.New("sockets: nats adapter closed")
)

// NATSAdapterOptions configure NewNATSAdapter. Every zero value means the documented default.
type NATSAdapterOptions struct {
	// Prefix starts every subject the adapter uses; nodes with the same prefix and namespace
	// share broadcasts. Zero means "collabd.sockets". It must be valid in a NATS subject
	// (tokens separated by dots, no spaces or wildcards).
	Prefix string
	// RequestTimeout bounds FetchSockets, SocketsJoin, SocketsLeave and DisconnectSockets
	// across nodes when their context has no deadline; zero means 5s.
	RequestTimeout time.Duration
	// HeartbeatInterval is how often a node tells the others it is alive; a node silent for
	// three intervals is no longer waited for. Zero means 5s.
	HeartbeatInterval time.Duration
}

// NewNATSAdapter returns an Adapter factory (for Config.Adapter) that shares broadcasts and
// remote socket operations with the other nodes over core NATS, through nc. Each node keeps
// its own sockets' rooms in memory (the in-memory adapter) and delivers to them only; a
// broadcast is delivered locally, then published once on the namespace's subject, and every
// other node delivers it to its own sockets that the rooms and exceptions select.
//
// The caller owns nc: the adapter never closes it, and nc may be shared by several adapters
// and servers. Reconnection is nc's business; while nc is disconnected, nats.go buffers the
// publications (Options.ReconnectBufSize) and re-subscribes after reconnecting.
//
// Across nodes: Emit and EmitWithAck on any operator (To, In, Except, Broadcast, a socket
// id's room), FetchSockets, SocketsJoin, SocketsLeave, DisconnectSockets and RemoteSocket's
// methods. Node-local: Local() operators and connection state recovery (a session recovers on
// the node it was connected to, with every broadcast that node delivered). See
// docs/sockets.md.
func NewNATSAdapter(nc *nats.Conn, opts NATSAdapterOptions) func(nsp *Namespace) Adapter {
	if opts.Prefix == "" {
		opts.Prefix = DefaultNATSPrefix
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultNATSRequestTimeout
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultNATSHeartbeatInterval
	}
	return func(nsp *Namespace) Adapter { return newNATSAdapter(nc, opts, nsp) }
}

// natsAdapter is the Adapter over core NATS. Subjects, for a namespace whose name encodes
// (base64url, unpadded) to T:
//
//	PREFIX.T       every node: broadcasts, requests, hello, heartbeats, goodbyes
//	PREFIX.T.NODE  one node: answers to its requests, heartbeats answering its hello
//
// One subject per namespace, not one per room: a node would otherwise (un)subscribe at every
// join and leave of its sockets (rooms are documents and socket ids in collabd, so churn is
// high), a broadcast to several rooms or to everyone but some rooms would take several
// publications and de-duplication, and exceptions must be filtered by the receiver anyway. A
// node reads the envelope's rooms before touching the packet, so an uninteresting broadcast
// costs a node little; the price is that every node receives every broadcast of the
// namespace, which suits the few nodes collabd runs on.
type natsAdapter struct {
	*memoryAdapter // this node's rooms, delivery and recovery state

	nc    *nats.Conn
	opts  NATSAdapterOptions
	log   *slog.Logger
	node  string // this node's id, random
	subj  string // PREFIX.T
	reply string // PREFIX.T.NODE

	// pubMu orders this node's broadcasts: held from local delivery to publication, so that
	// every node sees them in the order the local sockets did.
	pubMu sync.Mutex

	mu      sync.Mutex // guards every field below
	subs    []*nats.Subscription
	subErr  error                // why subscribing failed, if it did
	peers   map[string]time.Time // other nodes -> when last heard of
	reqs    map[uint64]*natsPending
	acks    map[uint64]*natsAckReq       // this node's BroadcastWithAck across nodes, by request id
	served  map[natsAckKey]*natsAckServe // other nodes' BroadcastWithAck on this node's sockets
	nextReq uint64
	closed  bool

	stop chan struct{}  // closed by Close: stops the heartbeat goroutine
	wg   sync.WaitGroup // the heartbeat goroutine
	buf  sync.Pool      // *[]byte envelope buffers
}

// natsPending is a request waiting for the answers of the nodes in waiting.
type natsPending struct {
	waiting map[string]struct{}
	resps   []natsResponse
	done    chan struct{} // closed when waiting becomes empty, or by Close while it is not
}

// Envelope kinds.
const (
	natsKindBroadcast byte = 'b'
	natsKindRequest   byte = 'q'
	natsKindResponse  byte = 'r'
	natsKindHello     byte = 'h'
	natsKindHeartbeat byte = 'a'
	natsKindBye       byte = 'x'
	natsKindAckBcast  byte = 'k' // a broadcast with acknowledgements, to every node
	natsKindAckCount  byte = 'c' // to the requester: the number of sockets a node sent it to
	natsKindAckReply  byte = 'y' // to the requester: one socket's acknowledgement
	natsKindAckCancel byte = 'z' // to every node: forget the acknowledgements still awaited
)

const natsVersion byte = 1

// Broadcast flags.
const (
	natsFlagVolatile byte = 1 << iota
	natsFlagHasID
)

var errNATSEnvelope = errors.New("sockets: nats adapter: malformed envelope")

func newNATSAdapter(nc *nats.Conn, opts NATSAdapterOptions, nsp *Namespace) *natsAdapter {
	a := &natsAdapter{
		memoryAdapter: NewMemoryAdapter(nsp).(*memoryAdapter),
		nc:            nc,
		opts:          opts,
		log:           nsp.srv.cfg.Logger,
		node:          newID(),
		peers:         make(map[string]time.Time),
		reqs:          make(map[uint64]*natsPending),
		acks:          make(map[uint64]*natsAckReq),
		served:        make(map[natsAckKey]*natsAckServe),
		stop:          make(chan struct{}),
	}
	a.subj = opts.Prefix + "." + base64.RawURLEncoding.EncodeToString([]byte(nsp.name))
	a.reply = a.subj + "." + a.node
	for _, s := range []struct {
		subj string
		fn   nats.MsgHandler
	}{{a.subj, a.onAll}, {a.reply, a.onReply}} {
		sub, err := nc.Subscribe(s.subj, s.fn)
		if err != nil {
			a.subErr = fmt.Errorf("sockets: nats adapter: subscribe %s: %w", s.subj, err)
			a.log.Error("sockets: nats adapter", "err", a.subErr)
			break
		}
		a.subs = append(a.subs, sub)
	}
	if a.subErr == nil {
		// The server handles one connection's messages in order: the subscriptions are in
		// place before anyone answers the hello. No flush: Of must not wait for NATS.
		_ = a.publish(a.subj, a.control(natsKindHello, nil))
	}
	a.wg.Add(1)
	go a.heartbeats()
	return a
}

// heartbeats tells the other nodes this one is alive and forgets the silent ones.
func (a *natsAdapter) heartbeats() {
	defer a.wg.Done()
	t := time.NewTicker(a.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case now := <-t.C:
			a.publish(a.subj, a.control(natsKindHeartbeat, nil))
			a.mu.Lock()
			for node, seen := range a.peers {
				if now.Sub(seen) > 3*a.opts.HeartbeatInterval {
					a.forgetLocked(node)
				}
			}
			a.mu.Unlock()
		}
	}
}

// forgetLocked drops node from the peers and stops waiting for its answers. a.mu must be held.
func (a *natsAdapter) forgetLocked(node string) {
	delete(a.peers, node)
	for _, p := range a.reqs {
		p.answered(node, nil)
	}
	for _, q := range a.acks {
		q.countedBy(node, 0)
	}
}

// answered records node's answer (nil when it left without answering). a.mu must be held.
func (p *natsPending) answered(node string, r *natsResponse) {
	if _, ok := p.waiting[node]; !ok {
		return
	}
	delete(p.waiting, node)
	if r != nil {
		p.resps = append(p.resps, *r)
	}
	if len(p.waiting) == 0 {
		close(p.done)
	}
}

// peerCount returns the number of other nodes known (for tests).
func (a *natsAdapter) peerCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.peers)
}

func (a *natsAdapter) publish(subj string, data []byte) error {
	if err := a.nc.Publish(subj, data); err != nil {
		a.log.Warn("sockets: nats adapter: publish", "subject", subj, "err", err)
		return fmt.Errorf("sockets: nats adapter: publish: %w", err)
	}
	return nil
}

// header appends the envelope header: version, kind, origin node, namespace.
func (a *natsAdapter) header(b []byte, kind byte) []byte {
	b = append(b, natsVersion, kind)
	b = appendString(b, a.node)
	return appendString(b, a.nsp.name)
}

// control returns a control envelope with a JSON body (nil: none).
func (a *natsAdapter) control(kind byte, body any) []byte {
	b := a.header(nil, kind)
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			a.log.Error("sockets: nats adapter: encode", "err", err)
			return b
		}
		b = append(b, j...)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// wireReader reads an envelope; the first error sticks and makes every later read empty.
type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errNATSEnvelope
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *wireReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errNATSEnvelope
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns the next length-prefixed bytes, aliasing the envelope with their capacity
// capped, so that appending to them copies.
func (r *wireReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errNATSEnvelope
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *wireReader) string() string { return string(r.bytes()) }

func (r *wireReader) strings() []string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) { // every string takes at least a byte
		r.err = errNATSEnvelope
		return nil
	}
	var ss []string
	if n > 0 {
		ss = make([]string, n)
	}
	for i := range ss {
		ss[i] = r.string()
	}
	return ss
}

// encodeBroadcast appends the broadcast envelope of p to b: the header, then the body (see
// appendBroadcast).
func (a *natsAdapter) encodeBroadcast(b []byte, p *parser.Packet, opts BroadcastOptions) []byte {
	return appendBroadcast(a.header(b, natsKindBroadcast), p, opts)
}

// appendBroadcast appends the body of a broadcast envelope: flags, the packet's type, ack id,
// rooms, exceptions, JSON payload and attachments. The payload is the one the sender encoded
// (the arguments are marshaled once, by the sender); a receiver only frames it.
func appendBroadcast(b []byte, p *parser.Packet, opts BroadcastOptions) []byte {
	var flags byte
	if opts.Volatile {
		flags |= natsFlagVolatile
	}
	if p.HasID {
		flags |= natsFlagHasID
	}
	b = append(b, flags, byte(p.Type))
	if p.HasID {
		b = binary.AppendUvarint(b, p.ID)
	}
	b = appendStrings(b, opts.Rooms)
	b = appendStrings(b, opts.Except)
	b = appendBytes(b, p.Data)
	b = binary.AppendUvarint(b, uint64(len(p.Attachments)))
	for _, att := range p.Attachments {
		b = appendBytes(b, att)
	}
	return b
}

// decodeBroadcast reads the rest of a broadcast envelope (after the header) into a packet of
// namespace nsp and the options it was sent with (Local unset).
func decodeBroadcast(r *wireReader, nsp string) (*parser.Packet, BroadcastOptions) {
	var opts BroadcastOptions
	p := &parser.Packet{Namespace: nsp}
	flags := r.byte()
	p.Type = parser.Type(r.byte())
	if flags&natsFlagHasID != 0 {
		p.ID, p.HasID = r.uvarint(), true
	}
	opts.Volatile = flags&natsFlagVolatile != 0
	opts.Rooms = r.strings()
	opts.Except = r.strings()
	if data := r.bytes(); len(data) > 0 {
		p.Data = data
	}
	n := r.uvarint()
	if r.err == nil && n > parser.MaxAttachments {
		r.err = errNATSEnvelope
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		p.Attachments = append(p.Attachments, r.bytes())
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errNATSEnvelope
	}
	return p, opts
}

func (a *natsAdapter) getBuf() *[]byte {
	if b, ok := a.buf.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 1024)
	return &b
}

func (a *natsAdapter) putBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return // keep the pool's buffers small
	}
	*b = (*b)[:0]
	a.buf.Put(b)
}

// Broadcast delivers p to this node's selected sockets and, unless opts.Local, publishes it
// for the other nodes. Local delivery happens even when publishing fails (the error is
// returned).
func (a *natsAdapter) Broadcast(p *parser.Packet, opts BroadcastOptions) error {
	if opts.Local {
		return a.memoryAdapter.Broadcast(p, opts)
	}
	// Encode the envelope before local delivery: with recovery on, that appends this node's
	// offset to p.Data, and each node appends its own.
	bp := a.getBuf()
	defer a.putBuf(bp)
	*bp = a.encodeBroadcast(*bp, p, opts)
	a.pubMu.Lock()
	defer a.pubMu.Unlock()
	if err := a.memoryAdapter.Broadcast(p, opts); err != nil {
		return err
	}
	if err := a.subscribed(); err != nil {
		return err
	}
	// nc.Publish copies the envelope into its write buffer: *bp can be reused afterwards.
	return a.publish(a.subj, *bp)
}

// subscribed returns why the adapter is not subscribed, if it is not.
func (a *natsAdapter) subscribed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrNATSClosed
	}
	return a.subErr
}

// onAll handles the messages every node receives.
func (a *natsAdapter) onAll(m *nats.Msg) {
	r := &wireReader{b: m.Data}
	kind, origin, ok := a.readHeader(r)
	if !ok || origin == a.node {
		return // malformed, or this node's own message
	}
	switch kind {
	case natsKindBroadcast:
		p, opts := decodeBroadcast(r, a.nsp.name)
		if r.err != nil {
			a.log.Warn("sockets: nats adapter: bad broadcast", "from", origin, "err", r.err)
			return
		}
		a.seen(origin)
		if err := a.memoryAdapter.Broadcast(p, opts); err != nil {
			a.log.Warn("sockets: nats adapter: deliver", "from", origin, "err", err)
		}
	case natsKindHello:
		a.seen(origin)
		_ = a.publish(a.subj+"."+origin, a.control(natsKindHeartbeat, nil))
	case natsKindHeartbeat:
		a.seen(origin)
	case natsKindBye:
		a.mu.Lock()
		a.forgetLocked(origin)
		a.mu.Unlock()
	case natsKindAckBcast:
		a.seen(origin)
		id := r.uvarint()
		p, opts := decodeBroadcast(r, a.nsp.name)
		if r.err != nil {
			a.log.Warn("sockets: nats adapter: bad broadcast", "from", origin, "err", r.err)
			return
		}
		a.serveAcks(origin, id, p, opts)
	case natsKindAckCancel:
		id := r.uvarint()
		if r.err == nil {
			a.forgetServed(natsAckKey{origin, id})
		}
	case natsKindRequest:
		a.seen(origin)
		var req natsRequestBody
		if err := json.Unmarshal(r.b, &req); err != nil {
			a.log.Warn("sockets: nats adapter: bad request", "from", origin, "err", err)
			return
		}
		a.serve(origin, &req)
	}
}

// onReply handles the messages addressed to this node.
func (a *natsAdapter) onReply(m *nats.Msg) {
	r := &wireReader{b: m.Data}
	kind, origin, ok := a.readHeader(r)
	if !ok {
		return
	}
	switch kind {
	case natsKindHeartbeat:
		a.seen(origin)
	case natsKindAckCount:
		id, n := r.uvarint(), r.uvarint()
		if r.err != nil {
			return
		}
		a.mu.Lock()
		if q := a.acks[id]; q != nil {
			q.countedBy(origin, int(n))
		}
		a.mu.Unlock()
	case natsKindAckReply:
		id := r.uvarint()
		ans := decodeAckReply(r)
		if r.err != nil {
			a.log.Warn("sockets: nats adapter: bad acknowledgement", "from", origin, "err", r.err)
			return
		}
		a.mu.Lock()
		if q := a.acks[id]; q != nil {
			q.queue = append(q.queue, ans)
			q.signal()
		}
		a.mu.Unlock()
	case natsKindResponse:
		var resp natsResponse
		if err := json.Unmarshal(r.b, &resp); err != nil {
			a.log.Warn("sockets: nats adapter: bad response", "from", origin, "err", err)
			return
		}
		a.mu.Lock()
		if !a.closed {
			a.peers[origin] = time.Now()
		}
		if p := a.reqs[resp.ID]; p != nil {
			p.answered(origin, &resp)
		}
		a.mu.Unlock()
	}
}

// readHeader reads the envelope header; ok is false for another version or namespace, or an
// origin that is not a node id (it becomes a subject token in answers).
func (a *natsAdapter) readHeader(r *wireReader) (kind byte, origin string, ok bool) {
	v := r.byte()
	kind = r.byte()
	origin = r.string()
	nsp := r.string()
	if r.err != nil || v != natsVersion || nsp != a.nsp.name || !validNodeID(origin) {
		a.log.Debug("sockets: nats adapter: envelope dropped", "version", v, "namespace", nsp, "origin", origin, "err", r.err)
		return 0, "", false
	}
	return kind, origin, true
}

// validNodeID reports whether id could be a node id: 1 to 64 characters of base64url, so
// that it is a safe subject token.
func validNodeID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// seen records that node is alive.
func (a *natsAdapter) seen(node string) {
	a.mu.Lock()
	if !a.closed {
		a.peers[node] = time.Now()
	}
	a.mu.Unlock()
}

// Remote operations.
const (
	natsOpFetch      = "fetch"
	natsOpJoin       = "join"
	natsOpLeave      = "leave"
	natsOpDisconnect = "disconnect"
)

type natsRequestBody struct {
	ID     uint64   `json:"id"`
	Op     string   `json:"op"`
	Rooms  []string `json:"rooms,omitempty"`  // selection
	Except []string `json:"except,omitempty"` // selection
	Target []string `json:"target,omitempty"` // rooms to join or leave
	Close  bool     `json:"close,omitempty"`
}

type natsResponse struct {
	ID      uint64       `json:"id"`
	Sockets []natsSocket `json:"sockets,omitempty"`
}

type natsSocket struct {
	ID    string          `json:"id"`
	Rooms []string        `json:"rooms"`
	Data  json.RawMessage `json:"data,omitempty"`
	Auth  json.RawMessage `json:"auth,omitempty"`
}

// serve performs a request of node from on this node's sockets and answers it.
func (a *natsAdapter) serve(from string, req *natsRequestBody) {
	opts := BroadcastOptions{Rooms: req.Rooms, Except: req.Except}
	ctx := context.Background()
	resp := natsResponse{ID: req.ID}
	switch req.Op {
	case natsOpFetch:
		rs, _ := a.memoryAdapter.FetchSockets(ctx, opts)
		for _, rs := range rs {
			ns := natsSocket{ID: rs.ID, Rooms: rs.Rooms, Auth: rs.Auth}
			if rs.Data != nil {
				d, err := json.Marshal(rs.Data)
				if err != nil {
					a.log.Debug("sockets: nats adapter: socket data", "id", rs.ID, "err", err)
				} else {
					ns.Data = d
				}
			}
			resp.Sockets = append(resp.Sockets, ns)
		}
	case natsOpJoin:
		_ = a.memoryAdapter.AddSockets(ctx, opts, req.Target)
	case natsOpLeave:
		_ = a.memoryAdapter.DelSockets(ctx, opts, req.Target)
	case natsOpDisconnect:
		_ = a.memoryAdapter.DisconnectSockets(ctx, opts, req.Close)
	default:
		a.log.Warn("sockets: nats adapter: unknown request", "from", from, "op", req.Op)
	}
	_ = a.publish(a.subj+"."+from, a.control(natsKindResponse, resp))
}

// request sends req to every other node known and waits for their answers until ctx is done
// (or RequestTimeout, when ctx has no deadline). It returns the answers received, with
// ErrNATSTimeout if some are missing.
func (a *natsAdapter) request(ctx context.Context, req natsRequestBody) ([]natsResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.opts.RequestTimeout)
		defer cancel()
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, ErrNATSClosed
	}
	if a.subErr != nil {
		a.mu.Unlock()
		return nil, a.subErr
	}
	if len(a.peers) == 0 {
		a.mu.Unlock()
		return nil, nil
	}
	a.nextReq++
	req.ID = a.nextReq
	p := &natsPending{waiting: make(map[string]struct{}, len(a.peers)), done: make(chan struct{})}
	for node := range a.peers {
		p.waiting[node] = struct{}{}
	}
	total := len(p.waiting)
	a.reqs[req.ID] = p
	a.mu.Unlock()

	err := a.publish(a.subj, a.control(natsKindRequest, req))
	if err == nil {
		select {
		case <-p.done:
		case <-ctx.Done():
		}
	}
	a.mu.Lock()
	delete(a.reqs, req.ID)
	resps, missing := p.resps, len(p.waiting)
	closed := a.closed
	a.mu.Unlock()
	switch {
	case err != nil:
		return nil, err
	case closed && missing > 0:
		return resps, ErrNATSClosed
	case missing > 0:
		return resps, fmt.Errorf("%w: %d of %d nodes answered: %w", ErrNATSTimeout, total-missing, total, ctx.Err())
	}
	return resps, nil
}

// FetchSockets describes the selected sockets of every node; sockets of other nodes have
// their Data as a json.RawMessage (the JSON encoding of their Data on their node).
func (a *natsAdapter) FetchSockets(ctx context.Context, opts BroadcastOptions) ([]*RemoteSocket, error) {
	out, err := a.memoryAdapter.FetchSockets(ctx, opts)
	if err != nil || opts.Local {
		return out, err
	}
	resps, err := a.request(ctx, natsRequestBody{Op: natsOpFetch, Rooms: opts.Rooms, Except: opts.Except})
	for _, r := range resps {
		for _, s := range r.Sockets {
			var data any
			if s.Data != nil {
				data = s.Data
			}
			out = append(out, NewRemoteSocket(a.nsp, s.ID, s.Rooms, data, s.Auth))
		}
	}
	return out, err
}

// AddSockets makes the selected sockets of every node join rooms; it returns once every
// node has done it (or with ErrNATSTimeout).
func (a *natsAdapter) AddSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error {
	return a.remoteOp(ctx, opts, natsRequestBody{Op: natsOpJoin, Target: rooms},
		func() error { return a.memoryAdapter.AddSockets(ctx, opts, rooms) })
}

// DelSockets makes the selected sockets of every node leave rooms.
func (a *natsAdapter) DelSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error {
	return a.remoteOp(ctx, opts, natsRequestBody{Op: natsOpLeave, Target: rooms},
		func() error { return a.memoryAdapter.DelSockets(ctx, opts, rooms) })
}

// DisconnectSockets disconnects the selected sockets of every node.
func (a *natsAdapter) DisconnectSockets(ctx context.Context, opts BroadcastOptions, close bool) error {
	return a.remoteOp(ctx, opts, natsRequestBody{Op: natsOpDisconnect, Close: close},
		func() error { return a.memoryAdapter.DisconnectSockets(ctx, opts, close) })
}

func (a *natsAdapter) remoteOp(ctx context.Context, opts BroadcastOptions, req natsRequestBody, local func() error) error {
	if err := local(); err != nil || opts.Local {
		return err
	}
	req.Rooms, req.Except = opts.Rooms, opts.Except
	_, err := a.request(ctx, req)
	return err
}

// Close says goodbye to the other nodes, unsubscribes, stops the heartbeats and fails the
// requests still waiting (ErrNATSClosed). It does not close the NATS connection.
func (a *natsAdapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	subs := a.subs
	a.subs = nil
	for id, p := range a.reqs {
		if len(p.waiting) > 0 { // else done is closed already
			close(p.done)
		}
		delete(a.reqs, id)
	}
	for id, q := range a.acks {
		q.stop()
		delete(a.acks, id)
	}
	served := a.served
	a.served = make(map[natsAckKey]*natsAckServe)
	clear(a.peers)
	a.mu.Unlock()
	for _, sv := range served {
		sv.timer.Stop()
		sv.cancel()
	}

	var errs []error
	if len(subs) > 0 {
		// A goodbye lost on a closed connection is fine: the heartbeats expire.
		_ = a.nc.Publish(a.subj, a.control(natsKindBye, nil))
	}
	for _, s := range subs {
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, fmt.Errorf("sockets: nats adapter: unsubscribe: %w", err))
		}
	}
	close(a.stop)
	a.wg.Wait()
	errs = append(errs, a.memoryAdapter.Close())
	return errors.Join(errs...)
}

// natsAckReq is a BroadcastWithAck of this node awaiting the other nodes' acknowledgements.
// Its fields are guarded by natsAdapter.mu.
type natsAckReq struct {
	counting map[string]struct{} // nodes whose count is awaited
	counted  chan struct{}       // closed when counting is empty, or by stop
	n        int                 // sockets the other nodes sent the packet to
	queue    []natsAckAnswer     // acknowledgements not yet handed to onReply
	wake     chan struct{}       // capacity 1: queue grew, or stopped
	stopped  bool
}

type natsAckAnswer struct {
	r   *Reply
	err error
}

// countedBy records node's count (0 when it left). natsAdapter.mu must be held.
func (q *natsAckReq) countedBy(node string, n int) {
	if _, ok := q.counting[node]; !ok {
		return
	}
	delete(q.counting, node)
	q.n += n
	if len(q.counting) == 0 {
		close(q.counted)
	}
}

// signal wakes the goroutine handing acknowledgements to onReply. natsAdapter.mu must be held.
func (q *natsAckReq) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// stop ends the request. natsAdapter.mu must be held.
func (q *natsAckReq) stop() {
	if q.stopped {
		return
	}
	q.stopped = true
	if len(q.counting) > 0 {
		clear(q.counting)
		close(q.counted)
	}
	q.signal()
}

// natsAckKey names another node's BroadcastWithAck.
type natsAckKey struct {
	node string
	id   uint64
}

// natsAckServe is another node's BroadcastWithAck on this node's sockets.
type natsAckServe struct {
	// Guarded by natsAdapter.mu.
	cancel  func()      // forgets the acknowledgements still awaited
	timer   *time.Timer // calls forgetServed after the node's AckTimeout; nil until registered
	pending int         // acknowledgements still awaited
}

// BroadcastWithAck sends p to the selected sockets of every node and hands every
// acknowledgement to onReply. It waits (up to RequestTimeout) for each other node known to
// say how many sockets it sent the packet to, so that n counts them all; a node that does not
// say in time fails the call with ErrNATSTimeout. The other nodes forget the acknowledgements
// still awaited when cancel is called, or after their own Config.AckTimeout.
func (a *natsAdapter) BroadcastWithAck(p *parser.Packet, opts BroadcastOptions, onReply func(*Reply, error)) (int, func(), error) {
	if opts.Local {
		return a.memoryAdapter.BroadcastWithAck(p, opts, onReply)
	}
	a.mu.Lock()
	switch {
	case a.closed:
		a.mu.Unlock()
		return 0, nil, ErrNATSClosed
	case a.subErr != nil:
		a.mu.Unlock()
		return 0, nil, a.subErr
	case len(a.peers) == 0:
		a.mu.Unlock()
		return a.memoryAdapter.BroadcastWithAck(p, opts, onReply)
	}
	a.nextReq++
	id := a.nextReq
	q := &natsAckReq{counting: make(map[string]struct{}, len(a.peers)), counted: make(chan struct{}), wake: make(chan struct{}, 1)}
	for node := range a.peers {
		q.counting[node] = struct{}{}
	}
	total := len(q.counting)
	a.acks[id] = q
	a.mu.Unlock()

	// The other nodes first: this node's sockets are sent the packet once the count is known,
	// so that their readers never wait on onReply while the counts come.
	env := a.header(nil, natsKindAckBcast)
	env = binary.AppendUvarint(env, id)
	env = appendBroadcast(env, p, opts)
	if err := a.publish(a.subj, env); err != nil {
		a.endAck(id, false)
		return 0, nil, err
	}
	t := time.NewTimer(a.opts.RequestTimeout)
	select {
	case <-q.counted:
	case <-t.C:
	}
	t.Stop()
	a.mu.Lock()
	missing, nRemote, closed := len(q.counting), q.n, a.closed
	a.mu.Unlock()
	if missing > 0 || closed {
		a.endAck(id, true)
		if closed {
			return 0, nil, ErrNATSClosed
		}
		return 0, nil, fmt.Errorf("%w: %d of %d nodes counted their receivers", ErrNATSTimeout, total-missing, total)
	}
	nLocal, cancelLocal, err := a.memoryAdapter.BroadcastWithAck(p, opts, onReply)
	if err != nil {
		a.endAck(id, true)
		return 0, nil, err
	}
	a.mu.Lock()
	closed = a.closed
	if !closed {
		a.wg.Add(1) // under a.mu with closed unset: before Close's Wait
	}
	a.mu.Unlock()
	if closed {
		cancelLocal()
		a.endAck(id, false)
		return 0, nil, ErrNATSClosed
	}
	go a.handAcks(id, q, nRemote, onReply)
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			cancelLocal()
			a.endAck(id, true)
		})
	}
	return nLocal + nRemote, cancel, nil
}

// handAcks hands the other nodes' n acknowledgements of request id to onReply, on its own
// goroutine, so that the NATS subscription never waits for onReply.
func (a *natsAdapter) handAcks(id uint64, q *natsAckReq, n int, onReply func(*Reply, error)) {
	defer a.wg.Done()
	for n > 0 {
		a.mu.Lock()
		batch, stopped := q.queue, q.stopped
		q.queue = nil
		a.mu.Unlock()
		if stopped {
			return
		}
		for _, ans := range batch {
			if n == 0 {
				break
			}
			onReply(ans.r, ans.err)
			n--
		}
		if n == 0 {
			break
		}
		<-q.wake
	}
	a.endAck(id, false) // every acknowledgement arrived: nothing left to cancel remotely
}

// endAck forgets request id; with tell, the other nodes are asked to forget it too.
func (a *natsAdapter) endAck(id uint64, tell bool) {
	a.mu.Lock()
	q := a.acks[id]
	if q != nil {
		q.stop()
		delete(a.acks, id)
	}
	a.mu.Unlock()
	if q != nil && tell {
		b := a.header(nil, natsKindAckCancel)
		_ = a.publish(a.subj, binary.AppendUvarint(b, id))
	}
}

// serveAcks sends another node's broadcast p to this node's selected sockets, with an ack id
// of this namespace, and sends the requester the count and every acknowledgement (in any
// order: the requester sorts it out). a.mu is not held while sending: a full queue closes a
// connection on the sending goroutine, which calls the reply function at once.
func (a *natsAdapter) serveAcks(from string, id uint64, p *parser.Packet, opts BroadcastOptions) {
	key := natsAckKey{from, id}
	to := a.subj + "." + from
	p.ID, p.HasID = a.nsp.NextAckID(), true
	sv := &natsAckServe{}
	n, cancel, err := a.memoryAdapter.BroadcastWithAck(p, opts, func(r *Reply, err error) {
		b := a.header(nil, natsKindAckReply)
		b = binary.AppendUvarint(b, id)
		_ = a.publish(to, appendAckReply(b, r, err))
		a.mu.Lock()
		sv.pending--
		if sv.timer != nil && sv.pending <= 0 && a.served[key] == sv {
			delete(a.served, key)
			sv.timer.Stop()
		}
		a.mu.Unlock()
	})
	if err != nil {
		a.log.Warn("sockets: nats adapter: broadcast with acknowledgements", "from", from, "err", err)
		n = 0
	}
	a.mu.Lock()
	sv.pending += n // the replies already sent have counted themselves down
	register := n > 0 && sv.pending > 0 && !a.closed
	if register {
		sv.cancel = cancel
		sv.timer = time.AfterFunc(a.nsp.srv.cfg.AckTimeout, func() { a.forgetServed(key) })
		a.served[key] = sv
	}
	a.mu.Unlock()
	if n > 0 && !register {
		cancel()
	}
	b := a.header(nil, natsKindAckCount)
	b = binary.AppendUvarint(b, id)
	_ = a.publish(to, binary.AppendUvarint(b, uint64(n)))
}

// forgetServed forgets the acknowledgements another node's request still awaits here.
func (a *natsAdapter) forgetServed(key natsAckKey) {
	a.mu.Lock()
	sv := a.served[key]
	delete(a.served, key)
	a.mu.Unlock()
	if sv != nil {
		sv.timer.Stop()
		sv.cancel()
	}
}

// Acknowledgement outcomes on the wire.
const (
	natsAckOK byte = iota
	natsAckDisconnected
	natsAckError
)

// appendAckReply appends an acknowledgement: its outcome, then the arguments and attachments
// of the reply, or the error's text.
func appendAckReply(b []byte, r *Reply, err error) []byte {
	switch {
	case errors.Is(err, ErrDisconnected):
		return append(b, natsAckDisconnected)
	case err != nil:
		return appendString(append(b, natsAckError), err.Error())
	}
	b = append(b, natsAckOK)
	b = binary.AppendUvarint(b, uint64(len(r.raw)))
	for _, arg := range r.raw {
		b = appendBytes(b, arg)
	}
	b = binary.AppendUvarint(b, uint64(len(r.atts)))
	for _, att := range r.atts {
		b = appendBytes(b, att)
	}
	return b
}

func decodeAckReply(r *wireReader) natsAckAnswer {
	switch r.byte() {
	case natsAckDisconnected:
		return natsAckAnswer{err: ErrDisconnected}
	case natsAckError:
		return natsAckAnswer{err: errors.New(r.string())}
	case natsAckOK:
	default:
		r.err = errNATSEnvelope
		return natsAckAnswer{}
	}
	var rep Reply
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errNATSEnvelope
		return natsAckAnswer{}
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		rep.raw = append(rep.raw, json.RawMessage(r.bytes()))
	}
	n = r.uvarint()
	if r.err == nil && n > parser.MaxAttachments {
		r.err = errNATSEnvelope
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		rep.atts = append(rep.atts, r.bytes())
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errNATSEnvelope
	}
	return natsAckAnswer{r: &rep}
}
