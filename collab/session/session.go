package session

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/sockets"
)

// Access is what a socket may do with a document.
type Access int

// Access levels, each including the ones before it.
const (
	AccessNone Access = iota // the document is invisible
	AccessView               // join, presence, history, revision, diff
	AccessEdit               // also doc:op and doc:restore
)

// Identity is decided at CONNECT and replaced by an auth:refresh.
type Identity struct {
	User   string                  // display name from the token; "" when auth is off
	Access func(doc string) Access // nil means AccessEdit for every document
	// Expires is when the token ends (zero: never): the socket's access
	// ends then (auth:expired) unless an auth:refresh replaced it.
	Expires time.Time
	// Check, when non-nil, says whether the token still holds (a
	// revocation): Service.Revalidate ends the access of every socket
	// whose Check returns an error. It must be quick and must not block.
	Check func() error
}

func (id Identity) access(doc string) Access {
	if id.Access == nil {
		return AccessEdit
	}
	return id.Access(doc)
}

// Limits bound what one socket may do. Zero fields take the defaults.
type Limits struct {
	OpsPerSecond  float64 // per socket, sustained; default 50 (doc:op and doc:restore)
	OpsBurst      int     // default 100
	DocsPerSocket int     // default 32
	MembersPerDoc int     // default 256
	MaxTextBytes  int     // largest string payload accepted in an event (texts, ops), default 1 MiB
}

// Defaults of Limits.
const (
	DefaultOpsPerSecond  = 50
	DefaultOpsBurst      = 100
	DefaultDocsPerSocket = 32
	DefaultMembersPerDoc = 256
	DefaultMaxTextBytes  = 1 << 20
)

func (l Limits) withDefaults() Limits {
	if l.OpsPerSecond <= 0 {
		l.OpsPerSecond = DefaultOpsPerSecond
	}
	if l.OpsBurst <= 0 {
		l.OpsBurst = DefaultOpsBurst
	}
	if l.DocsPerSocket <= 0 {
		l.DocsPerSocket = DefaultDocsPerSocket
	}
	if l.MembersPerDoc <= 0 {
		l.MembersPerDoc = DefaultMembersPerDoc
	}
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = DefaultMaxTextBytes
	}
	return l
}

// Config configures Attach.
type Config struct {
	Hub    *collab.Hub // required; the glue never closes it
	Limits Limits      // zero fields take the defaults
	// Authenticate, when non-nil, runs in a middleware of namespace "/" with the
	// raw CONNECT auth payload (nil when absent). An error rejects the connection
	// with CONNECT_ERROR {message:"unauthorized", data:{code:"unauthorized", reason: err.Error()}}.
	Authenticate func(auth json.RawMessage) (Identity, error)
	Logger       zerolog.Logger // one line per connection, join, leave, error; nothing per op at info level
	// Peers, when non-nil, carries presence and membership to the other
	// nodes of a cluster (NewNATSPeers); nil is a single node. The glue
	// never closes it: close it after sockets.Server.Shutdown.
	Peers Peers
}

// Stats are the Service's counters.
type Stats struct {
	Sockets     int    // connected sockets on "/"
	Members     int    // (socket, document) memberships
	Documents   int    // documents with at least one member
	Ops         uint64 // doc:op acked ok (resubmissions included)
	Errors      uint64 // error acks sent
	RateLimited uint64 // rate_limited errors
}

// Sentinel errors of Attach.
var (
	ErrNoHub    = errors.New("session: Config.Hub is required")
	ErrNoServer = errors.New("session: a sockets.Server is required")
)

// Service is the session glue attached to one sockets.Server. See the package
// documentation for its concurrency contract.
type Service struct {
	hub   *collab.Hub
	nsp   *sockets.Namespace
	lim   Limits
	auth  func(json.RawMessage) (Identity, error)
	log   zerolog.Logger
	peers Peers // nil on a single node

	mu   sync.Mutex // guards docs
	docs map[string]*docState

	connMu sync.Mutex // guards conns; taken alone, never with another lock
	conns  map[*conn]struct{}

	sockets     atomic.Int64
	members     atomic.Int64
	ops         atomic.Uint64
	errs        atomic.Uint64
	rateLimited atomic.Uint64
	restoreSeq  atomic.Uint64

	wg sync.WaitGroup // goroutines answering slow requests

	handleOpGeneral sockets.Handler // doc:op through encoding/json (see handleOp)
}

// Attach registers the event handlers on srv's namespace "/".
func Attach(srv *sockets.Server, cfg Config) (*Service, error) {
	if srv == nil {
		return nil, ErrNoServer
	}
	if cfg.Hub == nil {
		return nil, ErrNoHub
	}
	svc := &Service{
		hub:   cfg.Hub,
		nsp:   srv.Of("/"),
		lim:   cfg.Limits.withDefaults(),
		auth:  cfg.Authenticate,
		log:   cfg.Logger,
		peers: cfg.Peers,
		docs:  make(map[string]*docState),
	}
	svc.conns = make(map[*conn]struct{})
	if svc.auth != nil {
		svc.nsp.Use(svc.authenticate)
	}
	svc.nsp.OnConnection(svc.onConnection)
	svc.nsp.OnAny(svc.onAny)
	svc.nsp.On("doc:join", sockets.Handle(svc.onJoin, svc.decodeError))
	svc.handleOpGeneral = sockets.Handle(svc.onOp, svc.decodeError)
	svc.nsp.On("doc:op", svc.handleOp)
	svc.nsp.On("doc:presence", sockets.Handle(svc.onPresence, svc.decodeError))
	svc.nsp.On("doc:leave", sockets.Handle(svc.onLeave, svc.decodeError))
	svc.nsp.On("doc:history", sockets.Handle(svc.onHistory, svc.decodeError))
	svc.nsp.On("doc:revision", sockets.Handle(svc.onRevision, svc.decodeError))
	svc.nsp.On("doc:diff", sockets.Handle(svc.onDiff, svc.decodeError))
	svc.nsp.On("doc:restore", sockets.Handle(svc.onRestore, svc.decodeError))
	svc.nsp.On("auth:refresh", sockets.Handle(svc.onRefresh, svc.decodeError))
	svc.nsp.On("doc:versions", sockets.Handle(svc.onVersions, svc.decodeError))
	svc.nsp.On("doc:version", sockets.Handle(svc.onVersion, svc.decodeError))
	svc.nsp.On("doc:version:create", sockets.Handle(svc.onVersionCreate, svc.decodeError))
	svc.nsp.On("doc:version:rename", sockets.Handle(svc.onVersionRename, svc.decodeError))
	svc.nsp.On("doc:version:delete", sockets.Handle(svc.onVersionDelete, svc.decodeError))
	return svc, nil
}

// Stats returns the current counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	docs := len(s.docs)
	s.mu.Unlock()
	return Stats{
		Sockets:     int(s.sockets.Load()),
		Members:     int(s.members.Load()),
		Documents:   docs,
		Ops:         s.ops.Load(),
		Errors:      s.errs.Load(),
		RateLimited: s.rateLimited.Load(),
	}
}

// Wait waits for the goroutines answering slow requests (ops, restores,
// history queries) to return. They end once the hub answers them, so call it
// after sockets.Server.Shutdown and collab.Hub.Close, or with the hub still
// running to drain them.
func (s *Service) Wait() { s.wg.Wait() }

// knownEvents are the client events of the contract.
var knownEvents = map[string]bool{
	"doc:join": true, "doc:op": true, "doc:presence": true, "doc:leave": true,
	"doc:history": true, "doc:revision": true, "doc:diff": true, "doc:restore": true,
	"auth:refresh": true,
	"doc:versions": true, "doc:version": true, "doc:version:create": true, "doc:version:rename": true,
	"doc:version:delete": true,
}

// conn is the state of one connected socket.
type conn struct {
	sock    *sockets.Socket
	limiter *bucket       // doc:op and doc:restore
	fanout  *bucket       // doc:join, doc:presence, doc:leave and auth:refresh: each is sent to every member
	queries chan struct{} // semaphore of concurrent read queries

	mu     sync.Mutex // guards docs, closed, id, ended, authGen and timer, and every member's access
	docs   map[string]*member
	closed bool
	id     Identity   // replaced by auth:refresh
	ended  *wireError // non-nil once the token expired or was revoked (until a refresh)
	// authGen counts identities: an expiry timer of an older one does nothing.
	authGen uint64
	timer   *time.Timer // fires at id.Expires; nil when it never expires
}

// Rate of the events that fan out to every member of a document (doc:join,
// doc:presence, doc:leave), per socket: a flood of them would fill the other
// members' send queues.
const (
	fanoutPerSecond = 30
	fanoutBurst     = 60
)

// maxQueries bounds the history, revision and diff requests one socket may
// have running at once; more are refused with rate_limited.
const maxQueries = 4

func (c *conn) member(doc string) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.docs[doc]
}

// authIdentity carries the middleware's verdict to onConnection.
type authIdentity struct{ id Identity }

func (s *Service) authenticate(sock *sockets.Socket) error {
	raw := sock.Auth()
	if len(raw) == 0 || string(raw) == "{}" || string(raw) == "null" {
		raw = nil
	}
	id, err := s.auth(raw)
	if err != nil {
		s.log.Info().Str("remote", remote(sock)).Str("reason", err.Error()).Msg("connection refused: unauthorized")
		return &sockets.ConnectError{
			Message: string(contract.CodeUnauthorized),
			Data:    map[string]string{"code": string(contract.CodeUnauthorized), "reason": err.Error()},
		}
	}
	sock.SetData(&authIdentity{id: id})
	return nil
}

func remote(sock *sockets.Socket) string {
	if r := sock.Request(); r != nil {
		return r.RemoteAddr
	}
	return ""
}

func (s *Service) onConnection(sock *sockets.Socket) {
	var id Identity
	switch v := sock.Data().(type) {
	case *authIdentity:
		id = v.id
	case *conn: // a recovered session keeps its identity
		id = v.id
	}
	c := &conn{
		sock:    sock,
		id:      id,
		limiter: newBucket(s.lim.OpsPerSecond, s.lim.OpsBurst),
		fanout:  newBucket(fanoutPerSecond, fanoutBurst),
		queries: make(chan struct{}, maxQueries),
		docs:    make(map[string]*member),
	}
	sock.SetData(c)
	if sock.Recovered() {
		// Memberships ended with the old connection: the client joins again.
		for _, room := range sock.Rooms() {
			if strings.HasPrefix(room, "doc:") {
				sock.Leave(room)
			}
		}
	}
	s.sockets.Add(1)
	s.watch(c)
	sock.OnDisconnect(s.onDisconnect)
	s.log.Info().Str("sid", sock.ID()).Str("remote", remote(sock)).Str("user", id.User).
		Str("transport", sock.Transport()).Bool("recovered", sock.Recovered()).Msg("connected")
}

func (s *Service) onDisconnect(sock *sockets.Socket, reason string) {
	s.sockets.Add(-1)
	c, _ := sock.Data().(*conn)
	if c == nil {
		return
	}
	s.unwatch(c)
	c.mu.Lock()
	c.closed = true
	ms := make([]*member, 0, len(c.docs))
	for _, m := range c.docs {
		ms = append(ms, m)
	}
	c.mu.Unlock()
	for _, m := range ms {
		if s.removeMember(m, true) {
			s.log.Info().Str("sid", sock.ID()).Str("doc", m.d.id).Str("client", m.client).Msg("left (disconnected)")
		}
	}
	s.log.Info().Str("sid", sock.ID()).Str("reason", reason).Msg("disconnected")
}

func (s *Service) connOf(sock *sockets.Socket) *conn {
	c, _ := sock.Data().(*conn)
	return c
}

func (s *Service) onAny(sock *sockets.Socket, ev *sockets.Event) {
	if knownEvents[ev.Name] {
		return
	}
	s.log.Debug().Str("sid", sock.ID()).Str("event", ev.Name).Msg("unknown event")
	if ev.Ack.Wanted() {
		s.errs.Add(1)
		_ = ev.Ack.Reply(errAck{Error: errorf(contract.CodeBadRequest, "unknown event %q", ev.Name)})
	}
}

// decodeError answers an event whose payload did not decode.
func (s *Service) decodeError(sock *sockets.Socket, ev *sockets.Event, err error) {
	var we *wireError
	switch {
	case errors.As(err, &we):
	case errors.Is(err, sockets.ErrMissingArg):
		we = errorf(contract.CodeBadRequest, "missing payload")
	default:
		we = errorf(contract.CodeBadRequest, "payload: %v", err)
	}
	s.fail(sock, ev.Name, ev.Ack, we)
}

// fail logs err and answers it when the client asked for an ack.
func (s *Service) fail(sock *sockets.Socket, event string, ack *sockets.Ack, err *wireError) {
	lvl := zerolog.InfoLevel
	if err.Code == contract.CodeInternal {
		lvl = zerolog.ErrorLevel
	}
	s.log.WithLevel(lvl).Str("sid", sock.ID()).Str("event", event).Str("code", string(err.Code)).Str("message", err.Message).Msg("request failed")
	if err.Code == contract.CodeRateLimited {
		s.rateLimited.Add(1)
	}
	if ack.Wanted() {
		s.errs.Add(1)
		_ = ack.Reply(errAck{Error: err})
	}
}

// hubError turns an error of the hub into a wire error.
func hubError(err error) *wireError {
	var he *collab.Error
	if errors.As(err, &he) {
		return &wireError{Code: he.Code, Message: he.Message, Earliest: he.Earliest}
	}
	return &wireError{Code: contract.CodeInternal, Message: "internal error"}
}

// recoverTo answers internal when a handler panics (a last resort: every
// payload is validated first).
func (s *Service) recoverTo(sock *sockets.Socket, event string, ack *sockets.Ack) {
	if r := recover(); r != nil {
		s.log.Error().Str("sid", sock.ID()).Str("event", event).Interface("panic", r).Msg("handler panicked")
		if ack.Wanted() {
			_ = ack.Reply(errAck{Error: errorf(contract.CodeInternal, "internal error")})
		}
	}
}

// userFor fills a member's user object: the token's name when auth is on,
// else the client's, with defaults.
func userFor(id Identity, client string, u *User) User {
	var out User
	if u != nil {
		out = *u
	}
	if id.User != "" {
		out.Name = id.User
	}
	if out.Name == "" {
		out.Name = "anonymous"
	}
	if out.Color == "" {
		out.Color = defaultColor(client)
	}
	return out
}

var palette = [...]string{
	"#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4",
	"#f032e6", "#469990", "#9a6324", "#800000", "#808000", "#000075",
}

func defaultColor(client string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(client))
	return palette[h.Sum32()%uint32(len(palette))]
}

// encodeEvent encodes an event once, to be sent to many sockets.
func encodeEvent(name string, v any) (*sockets.Encoded, error) {
	return sockets.EncodeEvent("/", name, v)
}

// Delete deletes doc through the hub (collab.Hub.Delete) and ends every
// membership of it: the members' engine connections are closed (reason
// "forced close"), so that their clients reconnect and join again, and find
// the new, empty document (a resume with a revision beyond the head gets the
// text form). Use it instead of Hub.Delete while the glue is attached.
func (s *Service) Delete(ctx context.Context, doc string) error {
	if err := s.hub.Delete(ctx, doc); err != nil {
		return err
	}
	s.mu.Lock()
	d := s.docs[doc]
	s.mu.Unlock()
	if d == nil {
		return nil
	}
	d.mu.Lock()
	ms := make([]*member, 0, len(d.members))
	for _, m := range d.members {
		ms = append(ms, m)
	}
	d.mu.Unlock()
	for _, m := range ms {
		if s.removeMember(m, false) {
			s.log.Info().Str("sid", m.conn.sock.ID()).Str("doc", doc).Str("client", m.client).Msg("left (document deleted)")
		}
		m.conn.sock.CloseConn()
	}
	return nil
}
