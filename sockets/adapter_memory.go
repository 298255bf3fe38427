package sockets

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/collabd/collabd/sockets/parser"
)

// memoryAdapter is the single-server Adapter: rooms in maps, packets for recovery in a
// time-bounded FIFO.
type memoryAdapter struct {
	nsp    *Namespace
	window time.Duration

	// bmu serializes broadcasts, so that every receiver gets them in one order and stored
	// sequence numbers follow that order. Held while sending (sending never blocks).
	bmu sync.Mutex

	// A socket's own id room is implicit (socks), not stored in rooms or sids: it saves two
	// maps per connection.
	mu    sync.RWMutex                   // guards rooms, sids and socks
	rooms map[string]map[string]*Socket  // room -> members, id rooms excluded
	sids  map[string]map[string]struct{} // socket id -> its rooms but its id; nil until it joins one
	socks map[string]*Socket             // every socket (and so every id room)

	pmu       sync.Mutex // guards seq, packets, sessions and sessOrder
	seq       uint64
	packets   []storedPacket // increasing Seq, oldest first
	sessions  map[string]storedSession
	sessOrder []sessionRef // persist order, oldest first

	pool sync.Pool // *[]*Socket target lists
}

type storedPacket struct {
	e    *Encoded
	opts BroadcastOptions
	at   time.Time
}

type storedSession struct {
	s  *Session
	at time.Time
}

type sessionRef struct {
	pid string
	at  time.Time
}

// NewMemoryAdapter returns the in-memory adapter of nsp, the default.
func NewMemoryAdapter(nsp *Namespace) Adapter {
	return &memoryAdapter{
		nsp:      nsp,
		window:   nsp.srv.cfg.Recovery.Window,
		rooms:    make(map[string]map[string]*Socket),
		sids:     make(map[string]map[string]struct{}),
		socks:    make(map[string]*Socket),
		sessions: make(map[string]storedSession),
	}
}

func (a *memoryAdapter) AddAll(id string, rooms []string) {
	s := a.nsp.LocalSocket(id)
	if s == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.socks[id] = s
	for _, r := range rooms {
		if r == id {
			continue
		}
		mine := a.sids[id]
		if mine == nil {
			mine = make(map[string]struct{}, 1)
			a.sids[id] = mine
		}
		mine[r] = struct{}{}
		m := a.rooms[r]
		if m == nil {
			m = make(map[string]*Socket, 1)
			a.rooms[r] = m
		}
		m[id] = s
	}
}

// delLocked removes id from room r. a.mu must be held.
func (a *memoryAdapter) delLocked(id, r string) {
	if m := a.rooms[r]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(a.rooms, r)
		}
	}
	if mine := a.sids[id]; mine != nil {
		delete(mine, r)
		if len(mine) == 0 {
			delete(a.sids, id)
		}
	}
}

func (a *memoryAdapter) Del(id, room string) {
	a.mu.Lock()
	a.delLocked(id, room)
	a.mu.Unlock()
}

func (a *memoryAdapter) DelAll(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for r := range a.sids[id] {
		a.delLocked(id, r)
	}
	delete(a.sids, id)
	delete(a.socks, id)
}

func (a *memoryAdapter) SocketRooms(id string) []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if _, ok := a.socks[id]; !ok {
		return nil
	}
	mine := a.sids[id]
	out := make([]string, 0, 1+len(mine))
	out = append(out, id)
	for r := range mine {
		out = append(out, r)
	}
	return out
}

// inRoomLocked reports whether socket id is a member of room r. a.mu must be held.
func (a *memoryAdapter) inRoomLocked(id, r string) bool {
	if r == id {
		return true
	}
	_, ok := a.rooms[r][id]
	return ok
}

// membersLocked calls fn for every member of room r. a.mu must be held.
func (a *memoryAdapter) membersLocked(r string, fn func(id string, s *Socket)) {
	m := a.rooms[r]
	for id, s := range m {
		fn(id, s)
	}
	if s, ok := a.socks[r]; ok {
		if _, dup := m[r]; !dup {
			fn(r, s)
		}
	}
}

// collect appends the sockets opts selects to dst.
func (a *memoryAdapter) collect(opts BroadcastOptions, dst []*Socket) []*Socket {
	a.mu.RLock()
	defer a.mu.RUnlock()
	excluded := func(id string) bool {
		for _, r := range opts.Except {
			if a.inRoomLocked(id, r) {
				return true
			}
		}
		return false
	}
	switch len(opts.Rooms) {
	case 0:
		for id, s := range a.socks {
			if !excluded(id) {
				dst = append(dst, s)
			}
		}
	case 1:
		a.membersLocked(opts.Rooms[0], func(id string, s *Socket) {
			if !excluded(id) {
				dst = append(dst, s)
			}
		})
	default:
		seen := make(map[string]struct{})
		for _, r := range opts.Rooms {
			a.membersLocked(r, func(id string, s *Socket) {
				if _, dup := seen[id]; dup || excluded(id) {
					return
				}
				seen[id] = struct{}{}
				dst = append(dst, s)
			})
		}
	}
	return dst
}

func (a *memoryAdapter) getList() *[]*Socket {
	if l, ok := a.pool.Get().(*[]*Socket); ok {
		return l
	}
	l := make([]*Socket, 0, 64)
	return &l
}

func (a *memoryAdapter) putList(l *[]*Socket) {
	clear(*l)
	*l = (*l)[:0]
	a.pool.Put(l)
}

func offsetString(seq uint64) string { return strconv.FormatUint(seq, 36) }

func (a *memoryAdapter) Broadcast(p *parser.Packet, opts BroadcastOptions) error {
	a.bmu.Lock()
	defer a.bmu.Unlock()
	store := a.nsp.RecoveryEnabled() && p.Type == parser.Event && !p.HasID && !opts.Volatile
	var seq uint64
	if store {
		a.pmu.Lock()
		a.seq++
		seq = a.seq
		a.pmu.Unlock()
		p.Data = parser.AppendArg(p.Data, strconv.AppendQuote(nil, offsetString(seq)))
	}
	e, err := Encode(p)
	if err != nil {
		return err
	}
	e.Seq = seq
	if store {
		now := time.Now()
		a.pmu.Lock()
		a.pruneLocked(now)
		a.packets = append(a.packets, storedPacket{e: e, opts: cloneOpts(opts), at: now})
		a.pmu.Unlock()
	}
	l := a.getList()
	*l = a.collect(opts, *l)
	for _, s := range *l {
		_ = s.SendEncoded(e, opts.Volatile)
	}
	a.putList(l)
	return nil
}

func (a *memoryAdapter) BroadcastWithAck(p *parser.Packet, opts BroadcastOptions, onReply func(*Reply, error)) (int, func(), error) {
	e, err := Encode(p)
	if err != nil {
		return 0, nil, err
	}
	a.bmu.Lock()
	defer a.bmu.Unlock()
	var targets []*Socket
	targets = a.collect(opts, targets)
	sent := targets[:0]
	for _, s := range targets {
		if !s.AwaitAck(p.ID, onReply) {
			continue
		}
		if err := s.SendEncoded(e, opts.Volatile); err != nil {
			s.CancelAck(p.ID)
			continue
		}
		sent = append(sent, s)
	}
	cancel := func() {
		for _, s := range sent {
			s.CancelAck(p.ID)
		}
	}
	return len(sent), cancel, nil
}

func cloneOpts(o BroadcastOptions) BroadcastOptions {
	o.Rooms = slices.Clone(o.Rooms)
	o.Except = slices.Clone(o.Except)
	return o
}

// pruneLocked forgets packets and sessions older than the window. a.pmu must be held.
func (a *memoryAdapter) pruneLocked(now time.Time) {
	limit := now.Add(-a.window)
	i := 0
	for i < len(a.packets) && a.packets[i].at.Before(limit) {
		a.packets[i] = storedPacket{}
		i++
	}
	if i > 0 {
		a.packets = a.packets[i:]
	}
	j := 0
	for j < len(a.sessOrder) && a.sessOrder[j].at.Before(limit) {
		ref := a.sessOrder[j]
		if ss, ok := a.sessions[ref.pid]; ok && ss.at.Equal(ref.at) {
			delete(a.sessions, ref.pid)
		}
		j++
	}
	if j > 0 {
		a.sessOrder = a.sessOrder[j:]
	}
}

func (a *memoryAdapter) ops(ctx context.Context, opts BroadcastOptions, fn func(s *Socket)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l := a.getList()
	*l = a.collect(opts, *l)
	for _, s := range *l {
		fn(s)
	}
	a.putList(l)
	return nil
}

func (a *memoryAdapter) FetchSockets(ctx context.Context, opts BroadcastOptions) ([]*RemoteSocket, error) {
	var out []*RemoteSocket
	err := a.ops(ctx, opts, func(s *Socket) {
		out = append(out, NewRemoteSocket(a.nsp, s.id, a.SocketRooms(s.id), s.Data(), s.auth))
	})
	return out, err
}

func (a *memoryAdapter) AddSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error {
	return a.ops(ctx, opts, func(s *Socket) { s.Join(rooms...) })
}

func (a *memoryAdapter) DelSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error {
	return a.ops(ctx, opts, func(s *Socket) {
		for _, r := range rooms {
			s.Leave(r)
		}
	})
}

func (a *memoryAdapter) DisconnectSockets(ctx context.Context, opts BroadcastOptions, close bool) error {
	return a.ops(ctx, opts, func(s *Socket) { s.Disconnect(close) })
}

func (a *memoryAdapter) PersistSession(s *Session) {
	if s.PID == "" {
		return
	}
	now := time.Now()
	a.pmu.Lock()
	defer a.pmu.Unlock()
	a.pruneLocked(now)
	a.sessions[s.PID] = storedSession{s: s, at: now}
	a.sessOrder = append(a.sessOrder, sessionRef{pid: s.PID, at: now})
}

// indexLocked returns the index of the stored packet with sequence seq. a.pmu must be held.
func (a *memoryAdapter) indexLocked(seq uint64) (int, bool) {
	return slices.BinarySearchFunc(a.packets, seq, func(p storedPacket, seq uint64) int {
		switch {
		case p.e.Seq < seq:
			return -1
		case p.e.Seq > seq:
			return 1
		}
		return 0
	})
}

func (a *memoryAdapter) RestoreSession(pid, offset string) (*Session, error) {
	seq, err := strconv.ParseUint(offset, 36, 64)
	if err != nil {
		return nil, nil
	}
	a.pmu.Lock()
	defer a.pmu.Unlock()
	a.pruneLocked(time.Now())
	ss, ok := a.sessions[pid]
	if !ok {
		return nil, nil
	}
	if _, found := a.indexLocked(seq); !found {
		return nil, nil
	}
	delete(a.sessions, pid)
	s := *ss.s
	s.Rooms = slices.Clone(s.Rooms)
	s.Offset = offset
	return &s, nil
}

func (a *memoryAdapter) MissedPackets(sess *Session) ([]*Encoded, error) {
	seq, err := strconv.ParseUint(sess.Offset, 36, 64)
	if err != nil {
		return nil, nil
	}
	a.pmu.Lock()
	defer a.pmu.Unlock()
	i, found := a.indexLocked(seq)
	if found {
		i++
	}
	var out []*Encoded
	for _, p := range a.packets[i:] {
		if includes(sess.Rooms, p.opts) {
			out = append(out, p.e)
		}
	}
	return out, nil
}

// includes reports whether a socket in rooms is selected by opts.
func includes(rooms []string, opts BroadcastOptions) bool {
	in := len(opts.Rooms) == 0
	for _, r := range rooms {
		if slices.Contains(opts.Except, r) {
			return false
		}
		if !in && slices.Contains(opts.Rooms, r) {
			in = true
		}
	}
	return in
}

func (a *memoryAdapter) Close() error {
	a.pmu.Lock()
	a.packets = nil
	clear(a.sessions)
	a.sessOrder = nil
	a.pmu.Unlock()
	return nil
}
