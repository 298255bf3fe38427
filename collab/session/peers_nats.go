package session

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/storage"
)

// Defaults of NATSPeersConfig.
const (
	DefaultPeersPrefix    = "collabd.presence"
	DefaultPeersHeartbeat = 2 * time.Second
	DefaultPeersQueue     = 8192
)

// maxPeerMessageBytes bounds a message of the presence bus: a presence of
// contract.MaxSelections ranges and the longest names take about 6 KB.
const maxPeerMessageBytes = 64 << 10

// Errors of NATSPeers.
var (
	ErrPeersClosed = errors.New("session: the presence bus is closed")
	ErrBadNodeID   = errors.New("session: a node id must be 1 to 55 bytes of A-Za-z0-9_-")
)

// NATSPeersConfig configures NewNATSPeers. Zero fields take the defaults.
type NATSPeersConfig struct {
	// Prefix of the subjects; "" means "collabd.presence". Documents use
	// PREFIX.doc.<escaped id>, heartbeats PREFIX.nodes.
	Prefix string
	// Heartbeat is how often the node says it is alive; 0 means 2 s.
	Heartbeat time.Duration
	// Expiry is how long a silent node keeps its members; 0 means three
	// heartbeats and a half (7 s by default).
	Expiry time.Duration
	// Queue is how many events wait to be published; 0 means 8192. An
	// event published while it is full is dropped (and logged).
	Queue  int
	Logger zerolog.Logger
}

// NATSPeers is the presence bus over core NATS (not JetStream: presence is
// not persisted). Each watched document is a subscription to its subject;
// every node publishes a heartbeat, and forgets the members of a node it
// has not heard from for Expiry. Every method is safe for concurrent use.
type NATSPeers struct {
	nc        *nats.Conn
	node      string
	cfg       NATSPeersConfig
	log       zerolog.Logger
	docPrefix string // PREFIX.doc.
	nodesSubj string // PREFIX.nodes

	out     chan peerOut // events to publish, in order
	closing atomic.Bool
	dropped atomic.Uint64

	mu       sync.Mutex // guards watches, nodes, expired, departed and closed
	watches  map[*natsWatch]struct{}
	nodes    map[string]time.Time // other live nodes: when each was last heard from
	expired  map[string]time.Time // nodes that went silent, and when
	departed map[string]time.Time // nodes that said goodbye, and when
	closed   bool

	hbSub     *nats.Subscription
	stopc     chan struct{}
	wg        sync.WaitGroup // the sender and the heartbeat loop
	closeOnce sync.Once
}

type peerOut struct {
	subject string
	data    []byte
}

// natsWatch is one Watch of a document.
type natsWatch struct {
	p   *NATSPeers
	doc string
	sub *nats.Subscription

	mu      sync.Mutex // guards stopped; held while fn runs
	fn      func(PeerEvent)
	stopped bool
}

// NewNATSPeers starts the presence bus of node on nc. The node id is 1 to 55
// bytes of A-Za-z0-9_- (a host name, say), unique in the cluster; the bus
// appends a random "-xxxxxxxx" per start, so that a restarted node is a new
// one to the others (Node returns the result). Close stops it; it never
// closes nc.
func NewNATSPeers(nc *nats.Conn, node string, cfg NATSPeersConfig) (*NATSPeers, error) {
	if nc == nil {
		return nil, errors.New("session: NewNATSPeers needs a NATS connection")
	}
	if len(node) > MaxNodeIDBytes-len(incarnationSuffix) || !ValidNodeID(node) {
		return nil, ErrBadNodeID
	}
	var inc [4]byte
	if _, err := rand.Read(inc[:]); err != nil {
		return nil, fmt.Errorf("session: a node incarnation: %w", err)
	}
	// A restarted node is a new node to the others (they may still
	// remember the old one's goodbye), whatever id it is given.
	node += "-" + hex.EncodeToString(inc[:])
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPeersPrefix
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultPeersHeartbeat
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = cfg.Heartbeat*3 + cfg.Heartbeat/2
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultPeersQueue
	}
	p := &NATSPeers{
		nc:        nc,
		node:      node,
		cfg:       cfg,
		log:       cfg.Logger.With().Str("node", node).Logger(),
		docPrefix: cfg.Prefix + ".doc.",
		nodesSubj: cfg.Prefix + ".nodes",
		out:       make(chan peerOut, cfg.Queue),
		watches:   make(map[*natsWatch]struct{}),
		nodes:     make(map[string]time.Time),
		expired:   make(map[string]time.Time),
		departed:  make(map[string]time.Time),
		stopc:     make(chan struct{}),
	}
	sub, err := nc.Subscribe(p.nodesSubj, p.onNodeMsg)
	if err != nil {
		return nil, fmt.Errorf("session: subscribing to %s: %w", p.nodesSubj, err)
	}
	p.hbSub = sub
	p.wg.Add(2)
	go p.sender()
	go p.heartbeats()
	return p, nil
}

// incarnationSuffix is the shape of what NewNATSPeers appends to a node id.
const incarnationSuffix = "-xxxxxxxx"

// Node returns the node id on the bus: the given id and its incarnation.
func (p *NATSPeers) Node() string { return p.node }

// docSubject is the subject of doc's events. Ids are A-Za-z0-9._~-; a '.'
// would split the subject into tokens, so '.' and '~' are written as '='
// and two hex digits, as the JetStream store writes them ('=' is not in
// the id alphabet: the escape is injective).
func (p *NATSPeers) docSubject(doc string) string {
	if !strings.ContainsAny(doc, ".~") {
		return p.docPrefix + doc
	}
	var b strings.Builder
	b.Grow(len(p.docPrefix) + len(doc) + 8)
	b.WriteString(p.docPrefix)
	for i := 0; i < len(doc); i++ {
		if c := doc[i]; c == '.' || c == '~' {
			fmt.Fprintf(&b, "=%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Watch implements Peers. fn is never called after stop returns.
func (p *NATSPeers) Watch(doc string, fn func(PeerEvent)) (func(), error) {
	if !contract.ValidDocID(doc) {
		return nil, fmt.Errorf("session: watching %q: not a document id", doc)
	}
	if p.closing.Load() {
		return nil, ErrPeersClosed
	}
	w := &natsWatch{p: p, doc: doc, fn: fn}
	sub, err := p.nc.Subscribe(p.docSubject(doc), w.onMsg)
	if err != nil {
		return nil, fmt.Errorf("session: watching %q: %w", doc, err)
	}
	w.sub = sub
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		w.stop()
		return nil, ErrPeersClosed
	}
	p.watches[w] = struct{}{}
	p.mu.Unlock()
	// After the SUB on the same connection: the answers reach this watch.
	p.enqueue(p.docSubject(doc), peerMsg{Kind: "sync", Node: p.node, Doc: doc})
	return w.stop, nil
}

func (w *natsWatch) stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	if err := w.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		w.p.log.Warn().Err(err).Str("doc", w.doc).Msg("unsubscribing from a document's presence")
	}
	w.p.mu.Lock()
	delete(w.p.watches, w)
	w.p.mu.Unlock()
}

// deliver hands ev to the watch's fn unless the watch stopped.
func (w *natsWatch) deliver(ev PeerEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.fn(ev)
	}
}

// onMsg runs on the subscription's goroutine, in the order of the messages.
func (w *natsWatch) onMsg(msg *nats.Msg) {
	ev, err := decodePeerMsg(msg.Data)
	switch {
	case err != nil:
		w.p.log.Warn().Err(err).Str("subject", msg.Subject).Int("bytes", len(msg.Data)).Msg("peer message dropped")
		return
	case ev.Node == w.p.node:
		return // our own, echoed by the server
	case ev.Kind == PeerNodeGone || ev.Doc != w.doc:
		w.p.log.Warn().Str("subject", msg.Subject).Str("from", ev.Node).Str("kind", ev.Kind.String()).Str("doc", ev.Doc).Msg("peer message dropped: not of this document")
		return
	}
	if !w.p.heard(ev.Node) {
		return // a node that said goodbye: a late message
	}
	w.deliver(ev)
}

// heard records a message of node and reports whether to use it. A node
// that had gone silent and speaks again is asked for its members of every
// watched document (its members were forgotten).
func (p *NATSPeers) heard(node string) bool {
	p.mu.Lock()
	if _, gone := p.departed[node]; gone {
		p.mu.Unlock()
		return false
	}
	_, revived := p.expired[node]
	delete(p.expired, node)
	p.nodes[node] = time.Now()
	var docs []string
	if revived {
		for w := range p.watches {
			docs = append(docs, w.doc)
		}
	}
	p.mu.Unlock()
	if revived {
		p.log.Info().Str("peer", node).Int("docs", len(docs)).Msg("peer node heard from again; asking for its members")
		for _, doc := range docs {
			p.enqueue(p.docSubject(doc), peerMsg{Kind: "sync", Node: p.node, Doc: doc})
		}
	}
	return true
}

// onNodeMsg handles heartbeats and goodbyes.
func (p *NATSPeers) onNodeMsg(msg *nats.Msg) {
	ev, err := decodePeerMsg(msg.Data)
	switch {
	case err != nil:
		p.log.Warn().Err(err).Str("subject", msg.Subject).Int("bytes", len(msg.Data)).Msg("peer message dropped")
		return
	case ev.Node == p.node:
		return
	case ev.Doc != "" || ev.Kind != PeerNodeGone && ev.Kind != peerBeat:
		p.log.Warn().Str("subject", msg.Subject).Str("from", ev.Node).Msg("peer message dropped: not a heartbeat")
		return
	}
	if ev.Kind == peerBeat {
		p.heard(ev.Node)
		return
	}
	p.mu.Lock()
	if _, gone := p.departed[ev.Node]; gone {
		p.mu.Unlock()
		return
	}
	p.departed[ev.Node] = time.Now()
	delete(p.nodes, ev.Node)
	delete(p.expired, ev.Node)
	p.mu.Unlock()
	p.log.Info().Str("peer", ev.Node).Msg("peer node left")
	p.nodeGone(ev.Node)
}

// nodeGone tells every watch that node's members are gone.
func (p *NATSPeers) nodeGone(node string) {
	p.mu.Lock()
	ws := make([]*natsWatch, 0, len(p.watches))
	for w := range p.watches {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	for _, w := range ws {
		w.deliver(PeerEvent{Kind: PeerNodeGone, Node: node})
	}
}

// Publish implements Peers: it queues ev and never blocks.
func (p *NATSPeers) Publish(ev PeerEvent) {
	if p.closing.Load() || !contract.ValidDocID(ev.Doc) {
		return
	}
	m := peerMsg{Node: p.node, Doc: ev.Doc, Client: ev.Client}
	switch ev.Kind {
	case PeerJoined:
		m.Kind = "join"
	case PeerLeft:
		m.Kind = "leave"
	case PeerPresence:
		m.Kind = "presence"
		if ev.Presence == nil {
			return
		}
	case PeerVersions:
		if err := checkVersionChange(ev.Change); err != nil {
			p.log.Error().Err(err).Str("doc", ev.Doc).Msg("a version change not published")
			return
		}
		m.Kind, m.Client = "versions", ""
		m.Action, m.Name, m.Version = ev.Change.Action, ev.Change.Name, ev.Change.Version
		p.enqueue(p.docSubject(ev.Doc), m)
		return
	default:
		return
	}
	if ev.Kind != PeerLeft {
		u := ev.User
		m.User = &u
		if ev.Presence != nil {
			rev := ev.Presence.Rev
			m.Rev, m.Sel = &rev, ev.Presence.Sel
			if m.Sel == nil {
				m.Sel = []Selection{}
			}
		}
	}
	p.enqueue(p.docSubject(ev.Doc), m)
}

func (p *NATSPeers) enqueue(subject string, m peerMsg) {
	m.V = 1
	data, err := json.Marshal(m)
	if err != nil {
		p.log.Error().Err(err).Msg("encoding a peer message")
		return
	}
	select {
	case p.out <- peerOut{subject, data}:
	default:
		if n := p.dropped.Add(1); n&(n-1) == 0 { // log the 1st, 2nd, 4th, ...
			p.log.Warn().Uint64("dropped", n).Msg("presence bus queue full; peer event dropped")
		}
	}
}

// Dropped returns how many events were dropped because the queue was full.
func (p *NATSPeers) Dropped() uint64 { return p.dropped.Load() }

// sender publishes the queued events in order.
func (p *NATSPeers) sender() {
	defer p.wg.Done()
	for {
		select {
		case o := <-p.out:
			p.send(o)
		case <-p.stopc:
			return
		}
	}
}

func (p *NATSPeers) send(o peerOut) {
	if err := p.nc.Publish(o.subject, o.data); err != nil {
		p.log.Warn().Err(err).Str("subject", o.subject).Msg("publishing a peer message")
	}
}

// heartbeats publishes this node's heartbeat and expires silent nodes.
func (p *NATSPeers) heartbeats() {
	defer p.wg.Done()
	beat, _ := json.Marshal(peerMsg{V: 1, Kind: "beat", Node: p.node})
	t := time.NewTicker(p.cfg.Heartbeat)
	defer t.Stop()
	for {
		if err := p.nc.Publish(p.nodesSubj, beat); err != nil {
			p.log.Warn().Err(err).Msg("publishing a heartbeat")
		}
		select {
		case <-t.C:
		case <-p.stopc:
			return
		}
		now := time.Now()
		var gone []string
		p.mu.Lock()
		for node, seen := range p.nodes {
			if now.Sub(seen) > p.cfg.Expiry {
				delete(p.nodes, node)
				p.expired[node] = now
				gone = append(gone, node)
			}
		}
		// Remember silent and departed nodes for a while only.
		for node, at := range p.expired {
			if now.Sub(at) > forgetNodesAfter {
				delete(p.expired, node)
			}
		}
		for node, at := range p.departed {
			if now.Sub(at) > forgetNodesAfter {
				delete(p.departed, node)
			}
		}
		p.mu.Unlock()
		for _, node := range gone {
			p.log.Warn().Str("peer", node).Dur("silent_for", p.cfg.Expiry).Msg("peer node silent; its members are gone")
			p.nodeGone(node)
		}
	}
}

// forgetNodesAfter is how long a node that went silent or said goodbye is
// remembered (to ask a silent one again, to drop a departed one's late
// messages).
const forgetNodesAfter = 10 * time.Minute

// Close stops the bus: the watches end, the queued events are sent, and a
// goodbye tells the other nodes that this node's members are gone. It is
// idempotent; it does not close the NATS connection.
func (p *NATSPeers) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.closing.Store(true)
		p.mu.Lock()
		p.closed = true
		ws := make([]*natsWatch, 0, len(p.watches))
		for w := range p.watches {
			ws = append(ws, w)
		}
		p.mu.Unlock()
		for _, w := range ws {
			w.stop()
		}
		if e := p.hbSub.Unsubscribe(); e != nil && !errors.Is(e, nats.ErrConnectionClosed) {
			p.log.Warn().Err(e).Msg("unsubscribing from heartbeats")
		}
		close(p.stopc)
		p.wg.Wait()
		for drained := false; !drained; {
			select {
			case o := <-p.out:
				p.send(o)
			default:
				drained = true
			}
		}
		bye, _ := json.Marshal(peerMsg{V: 1, Kind: "bye", Node: p.node})
		if err = p.nc.Publish(p.nodesSubj, bye); err == nil {
			err = p.nc.FlushTimeout(5 * time.Second)
		}
		if err != nil {
			err = fmt.Errorf("session: presence bus goodbye: %w", err)
		}
	})
	return err
}

// peerBeat is the kind of a heartbeat, known only to the NATS bus.
const peerBeat PeerEventKind = 100

// peerMsg is a message of the presence bus, JSON:
// {"v":1,"k":KIND,"node":..,"doc":..,"client":..,"user":{name,color},"rev":..,"sel":[..]}
// KIND is join, leave, presence, sync, versions (on a document's subject),
// beat or bye (on the nodes subject). rev and sel are a presence: required
// in presence, optional in join. A versions message carries instead
// "action", "name" and, but after a delete, "version": {name,rev,user,time}
// (the fields of doc:versions:changed).
type peerMsg struct {
	V       int              `json:"v"`
	Kind    string           `json:"k"`
	Node    string           `json:"node"`
	Doc     string           `json:"doc,omitempty"`
	Client  string           `json:"client,omitempty"`
	User    *User            `json:"user,omitempty"`
	Rev     *uint64          `json:"rev,omitempty"`
	Sel     []Selection      `json:"sel,omitempty"`
	Action  string           `json:"action,omitempty"`
	Name    string           `json:"name,omitempty"`
	Version *storage.Version `json:"version,omitempty"`
}

// decodePeerMsg decodes and validates a message of the presence bus with
// the parsers of client payloads; every field is checked.
func decodePeerMsg(data []byte) (PeerEvent, error) {
	var ev PeerEvent
	if len(data) > maxPeerMessageBytes {
		return ev, fmt.Errorf("message of %d bytes, at most %d", len(data), maxPeerMessageBytes)
	}
	if !isObject(data) {
		return ev, errors.New("not a JSON object")
	}
	var f struct {
		V      json.RawMessage `json:"v"`
		Kind   json.RawMessage `json:"k"`
		Node   json.RawMessage `json:"node"`
		Doc    json.RawMessage `json:"doc"`
		Client json.RawMessage `json:"client"`
		User   json.RawMessage `json:"user"`
		Rev    json.RawMessage `json:"rev"`
		Sel    json.RawMessage `json:"sel"`
		// versions
		Action  json.RawMessage `json:"action"`
		Name    json.RawMessage `json:"name"`
		Version json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return ev, fmt.Errorf("not a JSON object: %w", err)
	}
	if string(f.V) != "1" {
		return ev, errors.New(`"v" must be 1`)
	}
	kind, err := stringField(f.Kind, "k")
	if err != nil {
		return ev, err
	}
	if ev.Node, err = stringField(f.Node, "node"); err != nil {
		return ev, err
	}
	if !ValidNodeID(ev.Node) {
		return ev, ErrBadNodeID
	}
	onDoc := true
	switch kind {
	case "join":
		ev.Kind = PeerJoined
	case "leave":
		ev.Kind = PeerLeft
	case "presence":
		ev.Kind = PeerPresence
	case "sync":
		ev.Kind = PeerSync
	case "versions":
		ev.Kind = PeerVersions
	case "beat":
		ev.Kind, onDoc = peerBeat, false
	case "bye":
		ev.Kind, onDoc = PeerNodeGone, false
	default:
		return ev, fmt.Errorf("unknown kind %q", kind)
	}
	versionFields := !absent(f.Action) || !absent(f.Name) || !absent(f.Version)
	if !onDoc {
		if !absent(f.Doc) || !absent(f.Client) || !absent(f.User) || !absent(f.Rev) || !absent(f.Sel) || versionFields {
			return ev, fmt.Errorf("%s carries document fields", kind)
		}
		return ev, nil
	}
	if ev.Doc, err = docField(f.Doc); err != nil {
		return ev, err
	}
	if ev.Kind == PeerVersions {
		if !absent(f.Client) || !absent(f.User) || !absent(f.Rev) || !absent(f.Sel) {
			return ev, errors.New("versions carries member fields")
		}
		if ev.Change, err = decodeVersionChange(f.Action, f.Name, f.Version); err != nil {
			return ev, err
		}
		return ev, nil
	}
	if versionFields {
		return ev, fmt.Errorf("%s carries version fields", kind)
	}
	if ev.Kind == PeerSync {
		if !absent(f.Client) || !absent(f.User) || !absent(f.Rev) || !absent(f.Sel) {
			return ev, errors.New("sync carries member fields")
		}
		return ev, nil
	}
	if ev.Client, err = clientField(f.Client); err != nil {
		return ev, err
	}
	if ev.Kind == PeerLeft {
		if !absent(f.User) || !absent(f.Rev) || !absent(f.Sel) {
			return ev, errors.New("leave carries presence fields")
		}
		return ev, nil
	}
	var uf struct {
		Name  json.RawMessage `json:"name"`
		Color json.RawMessage `json:"color"`
	}
	if !isObject(f.User) || json.Unmarshal(f.User, &uf) != nil {
		return ev, errors.New(`"user" must be an object {name, color}`)
	}
	if ev.User.Name, err = stringField(uf.Name, "user.name"); err != nil {
		return ev, err
	}
	if ev.User.Color, err = stringField(uf.Color, "user.color"); err != nil {
		return ev, err
	}
	if err := checkPeerUser(ev.User); err != nil {
		return ev, err
	}
	switch {
	case absent(f.Rev) && absent(f.Sel) && ev.Kind == PeerJoined:
	case absent(f.Rev):
		return ev, errors.New(`"rev" is required with a presence`)
	default:
		pr := &Presence{}
		if pr.Rev, err = intField(f.Rev, "rev", 0); err != nil {
			return ev, err
		}
		if pr.Sel, err = selField(f.Sel); err != nil {
			return ev, err
		}
		ev.Presence = pr
	}
	return ev, nil
}

// decodeVersionChange decodes and validates the fields of a versions
// message: "action", "name" and "version" {name, rev, user, time}, the
// time in RFC 3339 (kept in UTC).
func decodeVersionChange(action, name, version json.RawMessage) (*VersionChange, error) {
	c := &VersionChange{}
	var err error
	if c.Action, err = stringField(action, "action"); err != nil {
		return nil, err
	}
	if c.Name, err = versionNameField(name, "name"); err != nil {
		return nil, err
	}
	if !absent(version) {
		var vf struct {
			Name json.RawMessage `json:"name"`
			Rev  json.RawMessage `json:"rev"`
			User json.RawMessage `json:"user"`
			Time json.RawMessage `json:"time"`
		}
		if !isObject(version) || json.Unmarshal(version, &vf) != nil {
			return nil, errors.New(`"version" must be an object {name, rev, user, time}`)
		}
		v := &storage.Version{}
		if v.Name, err = versionNameField(vf.Name, "version.name"); err != nil {
			return nil, err
		}
		if v.Rev, err = intField(vf.Rev, "version.rev", 1); err != nil {
			return nil, err
		}
		if !absent(vf.User) {
			if v.User, err = stringField(vf.User, "version.user"); err != nil {
				return nil, err
			}
		}
		if _, err := stringField(vf.Time, "version.time"); err != nil {
			return nil, err
		}
		// Strict RFC 3339, as encoding/json writes a time.
		if err := v.Created.UnmarshalJSON(vf.Time); err != nil {
			return nil, fmt.Errorf(`"version.time" must be an RFC 3339 time: %w`, err)
		}
		v.Created = v.Created.UTC()
		c.Version = v
	}
	if err := checkVersionChange(c); err != nil {
		return nil, err
	}
	return c, nil
}
