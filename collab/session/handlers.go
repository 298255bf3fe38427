package session

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/sockets"
	"github.com/collabd/collabd/storage"
)

// Timeouts of the hub calls made for one request.
const (
	readTimeout   = 10 * time.Second
	submitTimeout = 30 * time.Second
)

func errJoinFirst() *wireError { return errorf(contract.CodeForbidden, "join the document first") }

// editorOf returns sock's connection and its membership of doc, or the error
// for an edit (doc:op, doc:restore) the socket may not make.
func (s *Service) editorOf(sock *sockets.Socket, doc string) (*conn, *member, *wireError) {
	c := s.connOf(sock)
	if c == nil {
		return nil, nil, errorf(contract.CodeInternal, "socket not set up")
	}
	c.mu.Lock()
	m, ended := c.docs[doc], c.ended
	var acc Access
	if m != nil {
		acc = m.access
	}
	c.mu.Unlock()
	switch {
	case ended != nil:
		return nil, nil, ended
	case m == nil:
		return nil, nil, errJoinFirst()
	case acc < AccessEdit:
		return nil, nil, errorf(contract.CodeForbidden, "read-only access to document %q", doc)
	}
	return c, m, nil
}

func (s *Service) onJoin(sock *sockets.Socket, req JoinRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:join", ack)
	c := s.connOf(sock)
	if c == nil {
		s.fail(sock, "doc:join", ack, errorf(contract.CodeInternal, "socket not set up"))
		return
	}
	if !c.fanout.allow() {
		s.fail(sock, "doc:join", ack, errorf(contract.CodeRateLimited, "too many joins, leaves and presence updates (at most %d per second)", fanoutPerSecond))
		return
	}
	id, ended := c.identity()
	if ended != nil {
		s.fail(sock, "doc:join", ack, ended)
		return
	}
	acc := id.access(req.Doc)
	if acc == AccessNone {
		s.fail(sock, "doc:join", ack, errorf(contract.CodeForbidden, "no access to document %q", req.Doc))
		return
	}
	user := userFor(id, req.Client, req.User)
	m, werr := s.addMember(c, req.Doc, req.Client, user, acc)
	if werr != nil {
		s.fail(sock, "doc:join", ack, werr)
		return
	}
	live := false
	defer func() {
		if !live { // failed, or panicked: no half-joined member stays behind
			s.removeMember(m, false)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	head, body, werr := s.joinState(ctx, m, req.Rev)
	if werr != nil {
		s.fail(sock, "doc:join", ack, werr)
		return
	}
	d := m.d

	// Phase 1: the members as of now, then the ack, which must reach the
	// socket before any record newer than head (records keep buffering in
	// m.early meanwhile).
	d.mu.Lock()
	if m.gone {
		d.mu.Unlock()
		s.fail(sock, "doc:join", ack, errorf(contract.CodeConflict, "membership ended while joining"))
		return
	}
	others := make([]memberInfo, 0, len(d.members)-1)
	for _, o := range d.members {
		if o == m {
			continue
		}
		mi := memberInfo{Client: o.client, User: o.user}
		if o.presence != nil {
			rev := o.presence.Rev
			mi.Sel, mi.Rev = o.presence.Sel, &rev
		}
		others = append(others, mi)
	}
	others, listedRemote := d.remoteInfo(m.client, others)
	d.mu.Unlock()
	mj, err := json.Marshal(others)
	if err != nil {
		s.fail(sock, "doc:join", ack, errorf(contract.CodeInternal, "internal error"))
		return
	}
	payload := make([]byte, 0, len(body)+len(mj)+16)
	payload = append(payload, body...)
	payload = append(payload, `,"members":`...)
	payload = append(payload, mj...)
	payload = append(payload, '}')
	_ = ack.ReplyRaw(payload)

	// Phase 2: go live, after sending what arrived meanwhile.
	d.mu.Lock()
	if m.gone {
		d.mu.Unlock()
		return
	}
	if m.overflow {
		d.mu.Unlock()
		s.removeMember(m, false)
		live = true // removed already
		s.log.Error().Str("sid", sock.ID()).Str("doc", req.Doc).Msg("join fell too far behind; membership dropped")
		sock.Disconnect(false)
		return
	}
	m.lastSent = head
	for _, rec := range m.early {
		if rec.Rev <= m.lastSent {
			continue
		}
		m.lastSent = rec.Rev
		if enc, err := encodeEvent("doc:op", opEvent{Doc: d.id, Rev: rec.Rev, Op: rec.Op, Client: rec.Client, Seq: rec.Seq, User: rec.User, Time: rec.Time.UTC()}); err == nil {
			_ = sock.SendEncoded(enc, false)
		}
	}
	m.early = nil
	m.live = true
	live = true
	if enc, err := encodeEvent("doc:member", memberEvent{Doc: d.id, Client: m.client, User: m.user, Joined: true}); err == nil {
		d.sendOthers(m, enc)
	}
	if d.svc.peers != nil {
		d.catchUpRemote(m, listedRemote)
		d.publish(PeerJoined, m, m.presence)
	}
	d.mu.Unlock()
	s.log.Info().Str("sid", sock.ID()).Str("doc", req.Doc).Str("client", req.Client).Uint64("rev", head).Msg("joined")
}

// joinState reads the state a joining member starts from: the head revision
// and the ack without its members and closing brace: `{"ok":true,"rev":N,
// "text":...` or `{"ok":true,"rev":N,"ops":[...]`. m is already a member, so
// every record after head reaches m.early.
func (s *Service) joinState(ctx context.Context, m *member, resume *uint64) (uint64, []byte, *wireError) {
	d := m.d
	sub, fresh, err := d.subscribe(ctx)
	if err != nil {
		if we, ok := err.(*wireError); ok {
			return 0, nil, we
		}
		return 0, nil, hubError(err)
	}
	if resume != nil {
		recs, err := s.hub.Records(ctx, d.id, *resume, contract.MaxResumeRecords+1)
		switch {
		case err == nil && len(recs) <= contract.MaxResumeRecords:
			head := *resume
			ops := make([]recordJSON, len(recs))
			for i, r := range recs {
				ops[i] = wireRecord(r)
				head = r.Rev
			}
			js, err := json.Marshal(ops)
			if err != nil {
				return 0, nil, errorf(contract.CodeInternal, "internal error")
			}
			var b bytes.Buffer
			b.Grow(len(js) + 48)
			b.WriteString(`{"ok":true,"rev":`)
			b.WriteString(strconv.FormatUint(head, 10))
			b.WriteString(`,"ops":`)
			b.Write(js)
			return head, b.Bytes(), nil
		case err != nil && collab.CodeOf(err) != contract.CodeNotFound && collab.CodeOf(err) != contract.CodeGone:
			return 0, nil, hubError(err)
		}
		// Too far behind, ahead of the head (a deleted document) or
		// behind the fold horizon: the text.
	}
	var (
		rev  uint64
		text string
	)
	if fresh && resume == nil {
		rev, text = sub.Rev, sub.Text.String()
	} else {
		r, t, err := s.hub.Text(ctx, d.id)
		if err != nil {
			return 0, nil, hubError(err)
		}
		rev, text = r, t.String()
	}
	tj, err := json.Marshal(text)
	if err != nil {
		return 0, nil, errorf(contract.CodeInternal, "internal error")
	}
	b := make([]byte, 0, len(tj)+48)
	b = append(b, `{"ok":true,"rev":`...)
	b = strconv.AppendUint(b, rev, 10)
	b = append(b, `,"text":`...)
	b = append(b, tj...)
	return rev, b, nil
}

func (s *Service) onOp(sock *sockets.Socket, req OpRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:op", ack)
	c, m, werr := s.editorOf(sock, req.Doc)
	switch {
	case werr != nil:
		s.fail(sock, "doc:op", ack, werr)
		return
	case m.client != req.Client:
		s.fail(sock, "doc:op", ack, errorf(contract.CodeBadRequest, `"client" is not the client id this socket joined %q with`, req.Doc))
		return
	case len(req.Op) > s.lim.MaxTextBytes:
		s.fail(sock, "doc:op", ack, errorf(contract.CodeTooLarge, "op of %d bytes, at most %d allowed", len(req.Op), s.lim.MaxTextBytes))
		return
	case !c.limiter.allow():
		s.fail(sock, "doc:op", ack, errorf(contract.CodeRateLimited, "too many ops (at most %g per second)", s.lim.OpsPerSecond))
		return
	}
	d := m.d
	key := pendingKey{req.Client, req.Seq}
	p := &pendingAck{conn: c, ack: ack}
	d.mu.Lock()
	if m.gone {
		d.mu.Unlock()
		s.fail(sock, "doc:op", ack, errJoinFirst())
		return
	}
	d.pending[key] = p
	d.mu.Unlock()
	// m.client (equal to req.Client) is shared by every record of this
	// member that the hub keeps in memory, instead of a copy per op.
	sub := collab.Submission{Doc: req.Doc, Client: m.client, Seq: req.Seq, BaseRev: req.Rev, Op: req.Op, User: m.user.Name}
	// Sequenced here, on the reader goroutine (it waits for the store only
	// for an op older than the hub's in-memory log); the outcome comes back
	// on the hub's committer goroutine, after onRecord, so no goroutine
	// waits for the commit.
	s.wg.Add(1)
	s.hub.SubmitAsync(context.Background(), sub, func(rev uint64, err error) {
		defer s.wg.Done()
		defer s.recoverTo(sock, "doc:op", ack)
		d.mu.Lock()
		done := p.done
		if !done && d.pending[key] == p {
			delete(d.pending, key)
		}
		d.mu.Unlock()
		switch {
		case done: // answered in order by the subscription callback
		case err != nil:
			// Off the committer: failing logs a line, which may block.
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.fail(sock, "doc:op", ack, hubError(err))
			}()
		default:
			// A resubmission already applied (no new record), or a record
			// committed after this document's subscription changed.
			s.ops.Add(1)
			_ = replyRev(ack, rev)
		}
		if e := s.log.Debug(); e != nil {
			e.Str("sid", sock.ID()).Str("doc", sub.Doc).Str("client", sub.Client).Uint64("seq", sub.Seq).Uint64("rev", rev).Msg("op")
		}
	})
}

func (s *Service) onPresence(sock *sockets.Socket, req PresenceRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:presence", ack)
	c := s.connOf(sock)
	if c == nil {
		s.fail(sock, "doc:presence", ack, errorf(contract.CodeInternal, "socket not set up"))
		return
	}
	m := c.member(req.Doc)
	if m == nil {
		werr := errJoinFirst()
		if _, ended := c.identity(); ended != nil {
			werr = ended
		}
		s.fail(sock, "doc:presence", ack, werr)
		return
	}
	if !c.fanout.allow() {
		s.fail(sock, "doc:presence", ack, errorf(contract.CodeRateLimited, "too many joins, leaves and presence updates (at most %d per second)", fanoutPerSecond))
		return
	}
	ev := &presenceEvent{Doc: req.Doc, Client: m.client, User: m.user, Rev: req.Rev, Sel: req.Sel}
	enc, err := encodeEvent("doc:presence", ev)
	if err != nil {
		s.fail(sock, "doc:presence", ack, errorf(contract.CodeInternal, "internal error"))
		return
	}
	d := m.d
	d.mu.Lock()
	if m.gone {
		d.mu.Unlock()
		s.fail(sock, "doc:presence", ack, errJoinFirst())
		return
	}
	m.presence = ev
	d.sendOthers(m, enc)
	if m.live {
		d.publish(PeerPresence, m, ev)
	}
	d.mu.Unlock()
	_ = ack.ReplyRaw(okAckJSON)
}

func (s *Service) onLeave(sock *sockets.Socket, req DocRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:leave", ack)
	c := s.connOf(sock)
	if c == nil {
		s.fail(sock, "doc:leave", ack, errorf(contract.CodeInternal, "socket not set up"))
		return
	}
	m := c.member(req.Doc)
	if m != nil && !c.fanout.allow() {
		s.fail(sock, "doc:leave", ack, errorf(contract.CodeRateLimited, "too many joins, leaves and presence updates (at most %d per second)", fanoutPerSecond))
		return
	}
	if m != nil && s.removeMember(m, true) {
		s.log.Info().Str("sid", sock.ID()).Str("doc", req.Doc).Str("client", m.client).Msg("left")
	}
	_ = ack.ReplyRaw(okAckJSON)
}

// canView checks view access for the read-only queries, which do not need a
// membership.
func (s *Service) canView(c *conn, doc string) bool {
	id, ended := c.identity()
	if ended != nil {
		return false
	}
	if m := c.member(doc); m != nil {
		return true
	}
	return id.access(doc) >= AccessView
}

// query runs fn on a goroutine (it reads the store) after the access check,
// and answers its result.
func (s *Service) query(sock *sockets.Socket, event, doc string, ack *sockets.Ack, fn func(ctx context.Context) (any, error)) {
	c := s.connOf(sock)
	if c == nil {
		s.fail(sock, event, ack, errorf(contract.CodeInternal, "socket not set up"))
		return
	}
	if _, ended := c.identity(); ended != nil {
		s.fail(sock, event, ack, ended)
		return
	}
	if !s.canView(c, doc) {
		s.fail(sock, event, ack, errorf(contract.CodeForbidden, "no access to document %q", doc))
		return
	}
	select {
	case c.queries <- struct{}{}:
	default:
		s.fail(sock, event, ack, errorf(contract.CodeRateLimited, "too many queries in flight (at most %d)", maxQueries))
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-c.queries }()
		defer s.recoverTo(sock, event, ack)
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		defer cancel()
		v, err := fn(ctx)
		if err != nil {
			s.fail(sock, event, ack, hubError(err))
			return
		}
		s.log.Debug().Str("sid", sock.ID()).Str("event", event).Str("doc", doc).Msg("query")
		_ = ack.Reply(v)
	}()
}

func (s *Service) onHistory(sock *sockets.Socket, req HistoryRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:history", ack)
	s.query(sock, "doc:history", req.Doc, ack, func(ctx context.Context) (any, error) {
		revs, err := s.hub.History(ctx, req.Doc, req.Before, req.Limit)
		if err != nil {
			return nil, err
		}
		if revs == nil {
			revs = []storage.Revision{}
		}
		for i := range revs {
			revs[i].Time = revs[i].Time.UTC()
		}
		return historyAck{OK: true, Revs: revs}, nil
	})
}

func (s *Service) onRevision(sock *sockets.Socket, req RevRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:revision", ack)
	s.query(sock, "doc:revision", req.Doc, ack, func(ctx context.Context) (any, error) {
		text, err := s.hub.TextAt(ctx, req.Doc, req.Rev)
		if err != nil {
			return nil, err
		}
		return revisionAck{OK: true, Rev: req.Rev, Text: text}, nil
	})
}

func (s *Service) onDiff(sock *sockets.Socket, req DiffRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:diff", ack)
	s.query(sock, "doc:diff", req.Doc, ack, func(ctx context.Context) (any, error) {
		diffs, err := s.hub.Diff(ctx, req.Doc, req.From, req.To)
		if err != nil {
			return nil, err
		}
		if diffs == nil {
			diffs = []ot.Diff{}
		}
		return diffAck{OK: true, Diffs: diffs}, nil
	})
}

func (s *Service) onRestore(sock *sockets.Socket, req RevRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "doc:restore", ack)
	c, m, werr := s.editorOf(sock, req.Doc)
	switch {
	case werr != nil:
		s.fail(sock, "doc:restore", ack, werr)
		return
	case !c.limiter.allow():
		s.fail(sock, "doc:restore", ack, errorf(contract.CodeRateLimited, "too many ops (at most %g per second)", s.lim.OpsPerSecond))
		return
	}
	// The restore is nobody's OT op: a client id of its own, so that every
	// member, the requester included, receives it as a broadcast.
	sub := collab.Submission{Doc: req.Doc, Client: "~restore." + sock.ID(), Seq: s.restoreSeq.Add(1), User: m.user.Name}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.recoverTo(sock, "doc:restore", ack)
		ctx, cancel := context.WithTimeout(context.Background(), submitTimeout)
		defer cancel()
		rev, err := s.hub.Restore(ctx, req.Rev, sub)
		if err != nil {
			s.fail(sock, "doc:restore", ack, hubError(err))
			return
		}
		s.log.Debug().Str("sid", sock.ID()).Str("doc", req.Doc).Uint64("from", req.Rev).Uint64("rev", rev).Msg("restored")
		_ = replyRev(ack, rev)
	}()
}
