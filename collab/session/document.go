package session

import (
	"context"
	"sync"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/sockets"
	"github.com/collabd/collabd/storage"
)

// maxEarly bounds the records a joining member buffers while its join ack is
// being prepared; a join that falls further behind fails with internal.
const maxEarly = 10000

// docState is a document with at least one member: its members, its pending
// acks and its hub subscription.
type docState struct {
	id  string
	svc *Service

	mu      sync.Mutex         // guards members, pending, closed, remote and every member's d.mu fields
	members map[string]*member // by client id
	pending map[pendingKey]*pendingAck
	closed  bool // no members left; removed from Service.docs
	// remote are the members on other nodes (Config.Peers), by client id;
	// nil on a single node. They die with the docState.
	remote map[string]*remoteMember

	subMu    sync.Mutex // serializes Subscribe and Cancel; guards sub and peerStop
	sub      *collab.Subscription
	peerStop func() // ends the watch of the presence bus; nil when not watching
}

type pendingKey struct {
	client string
	seq    uint64
}

// pendingAck is the ack of a doc:op waiting for its record.
type pendingAck struct {
	conn *conn
	ack  *sockets.Ack
	done bool // guarded by docState.mu: answered by the callback
}

// member is one (socket, document) membership.
type member struct {
	d      *docState
	conn   *conn
	client string
	user   User
	access Access // guarded by conn.mu: a refresh may change it

	// Guarded by d.mu.
	gone     bool             // removed (left, disconnected or replaced)
	live     bool             // join ack sent: records go to the socket
	lastSent uint64           // newest revision the member has (sent or acked)
	early    []storage.Record // records committed while joining
	overflow bool             // early outgrew maxEarly
	presence *presenceEvent   // last presence, nil if none
}

func (s *Service) room(doc string) string { return "doc:" + doc }

// onRecord is the hub subscription callback: it runs on the committer
// goroutine, in revision order. It takes only d.mu and never blocks.
func (d *docState) onRecord(rec storage.Record) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var author *conn
	key := pendingKey{rec.Client, rec.Seq}
	if p := d.pending[key]; p != nil {
		delete(d.pending, key)
		p.done = true
		author = p.conn
		d.svc.ops.Add(1)
		_ = replyRev(p.ack, rec.Rev)
	}
	var enc *sockets.Encoded
	for _, m := range d.members {
		if !m.live {
			if len(m.early) < maxEarly {
				m.early = append(m.early, rec)
			} else {
				m.overflow = true
			}
			continue
		}
		if rec.Rev <= m.lastSent {
			continue
		}
		m.lastSent = rec.Rev
		if m.conn == author && m.client == rec.Client {
			continue // the ack counts as this revision
		}
		if enc == nil {
			var err error
			enc, err = encodeOpEvent(d.id, &rec)
			if err != nil {
				d.svc.log.Error().Err(err).Str("doc", d.id).Msg("encoding a record")
				return
			}
		}
		_ = m.conn.sock.SendEncoded(enc, false)
	}
}

// sendOthers sends enc to every member but skip. d.mu must be held.
func (d *docState) sendOthers(skip *member, enc *sockets.Encoded) {
	for _, m := range d.members {
		if m != skip {
			_ = m.conn.sock.SendEncoded(enc, false)
		}
	}
}

// subscribe makes sure the document has its hub subscription. fresh reports
// whether this call created it (its Rev and Text are then the state right
// after the joiner became a member).
func (d *docState) subscribe(ctx context.Context) (sub *collab.Subscription, fresh bool, err error) {
	d.subMu.Lock()
	defer d.subMu.Unlock()
	if d.sub != nil {
		return d.sub, false, nil
	}
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, false, errorf(contract.CodeConflict, "membership ended while joining")
	}
	s, err := d.svc.hub.Subscribe(ctx, d.id, d.onRecord)
	if err != nil {
		return nil, false, err
	}
	d.sub = &s
	d.watchPeers()
	return d.sub, true, nil
}

// cancel ends the subscription and the watch of the presence bus; called
// once the document has no members.
func (d *docState) cancel() {
	d.subMu.Lock()
	defer d.subMu.Unlock()
	d.unwatchPeers()
	if d.sub != nil {
		d.sub.Cancel()
		d.sub = nil
	}
}

// addMember makes c a member of doc (not live yet: records are buffered until
// its join ack is sent). It replaces a membership of the same client id, and
// this socket's previous membership of doc.
func (s *Service) addMember(c *conn, doc, client string, user User, acc Access) (*member, *wireError) {
	var replaced, switched *member
	m := &member{conn: c, client: client, user: user, access: acc}

	s.mu.Lock()
	d := s.docs[doc]
	if d == nil {
		d = &docState{id: doc, svc: s, members: make(map[string]*member), pending: make(map[pendingKey]*pendingAck)}
		s.docs[doc] = d
	}
	d.mu.Lock()
	c.mu.Lock()
	werr := func() *wireError {
		if c.closed {
			return errorf(contract.CodeConflict, "socket disconnected")
		}
		if c.ended != nil {
			return c.ended
		}
		prev := c.docs[doc]
		if prev == nil && len(c.docs) >= s.lim.DocsPerSocket {
			return errorf(contract.CodeTooLarge, "too many documents on this connection (at most %d)", s.lim.DocsPerSocket)
		}
		old := d.members[client]
		n := len(d.members)
		if old != nil {
			n--
		}
		if prev != nil && prev != old {
			n--
		}
		if n >= s.lim.MembersPerDoc {
			return errorf(contract.CodeTooLarge, "too many members in document %q (at most %d)", doc, s.lim.MembersPerDoc)
		}
		if prev != nil && prev != old {
			// This socket switches to another client id in doc.
			delete(d.members, prev.client)
			if prev.live {
				d.publish(PeerLeft, prev, nil)
			}
			prev.gone = true
			switched = prev
			s.members.Add(-1)
		}
		if old != nil {
			delete(d.members, client)
			if old.live {
				d.publish(PeerLeft, old, nil)
			}
			old.gone = true
			if old.conn != c {
				replaced = old
			}
			s.members.Add(-1)
		}
		m.d = d
		d.members[client] = m
		c.docs[doc] = m
		s.members.Add(1)
		return nil
	}()
	c.mu.Unlock()
	if werr == nil && switched != nil {
		if enc, err := encodeEvent("doc:member", memberEvent{Doc: doc, Client: switched.client, User: switched.user, Joined: false}); err == nil {
			d.sendOthers(m, enc)
		}
	}
	empty := len(d.members) == 0
	if empty {
		d.closed = true
		delete(s.docs, doc)
	}
	d.mu.Unlock()
	s.mu.Unlock()
	if empty {
		d.cancel()
	}
	if werr != nil {
		return nil, werr
	}
	if replaced != nil {
		rc := replaced.conn
		rc.mu.Lock()
		if rc.docs[doc] == replaced {
			delete(rc.docs, doc)
		}
		rc.mu.Unlock()
		rc.sock.Leave(s.room(doc))
		s.log.Info().Str("sid", rc.sock.ID()).Str("doc", doc).Str("client", client).Msg("left (replaced by a new socket)")
	}
	c.sock.Join(s.room(doc))
	return m, nil
}

// removeMember ends m's membership; with announce, the other members get
// doc:member joined:false. It reports whether m was still a member.
func (s *Service) removeMember(m *member, announce bool) bool {
	d := m.d
	s.mu.Lock()
	d.mu.Lock()
	if m.gone {
		d.mu.Unlock()
		s.mu.Unlock()
		return false
	}
	m.gone = true
	if d.members[m.client] == m {
		delete(d.members, m.client)
	}
	if m.live {
		d.publish(PeerLeft, m, nil)
	}
	m.conn.mu.Lock()
	if m.conn.docs[d.id] == m {
		delete(m.conn.docs, d.id)
	}
	m.conn.mu.Unlock()
	s.members.Add(-1)
	if announce {
		if enc, err := encodeEvent("doc:member", memberEvent{Doc: d.id, Client: m.client, User: m.user, Joined: false}); err == nil {
			d.sendOthers(m, enc)
		}
	}
	if r := d.remote[m.client]; r != nil && m.live {
		// The same client id on another node, shadowed until now.
		d.unshadow(r)
	}
	empty := len(d.members) == 0
	if empty {
		d.closed = true
		if s.docs[d.id] == d {
			delete(s.docs, d.id)
		}
	}
	d.mu.Unlock()
	s.mu.Unlock()
	if empty {
		d.cancel()
	}
	m.conn.sock.Leave(s.room(d.id))
	return true
}
