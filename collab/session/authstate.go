package session

import (
	"encoding/json"
	"time"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/sockets"
)

// Why a socket's access ended, the reason of auth:expired.
const (
	ReasonExpired = "expired"
	ReasonRevoked = "revoked"
)

// RefreshRequest is the auth:refresh payload.
type RefreshRequest struct {
	Token string
}

// UnmarshalJSON decodes and validates a {token} payload.
func (r *RefreshRequest) UnmarshalJSON(b []byte) error {
	if !isObject(b) {
		return errorf(contract.CodeBadRequest, "payload must be an object")
	}
	var f struct {
		Token json.RawMessage `json:"token"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return errorf(contract.CodeBadRequest, "payload: %v", err)
	}
	var err error
	r.Token, err = stringField(f.Token, "token")
	return err
}

// expiredEvent is the payload of auth:expired.
type expiredEvent struct {
	Reason  string   `json:"reason"`
	Message string   `json:"message"`
	Docs    []string `json:"docs"` // the memberships that ended
}

// refreshAck answers auth:refresh.
type refreshAck struct {
	OK      bool       `json:"ok"`
	Expires *time.Time `json:"exp,omitempty"`
	Left    []string   `json:"left"` // memberships the new token has no access to, ended
}

// identity returns the socket's identity, and the error of its ended access
// (nil while the token holds).
func (c *conn) identity() (Identity, *wireError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id, c.ended
}

// watch registers c for Revalidate and arms its expiry.
func (s *Service) watch(c *conn) {
	s.connMu.Lock()
	s.conns[c] = struct{}{}
	s.connMu.Unlock()
	c.mu.Lock()
	s.armLocked(c)
	check, gen := c.id.Check, c.authGen
	c.mu.Unlock()
	// A recovered session keeps its identity without a new CONNECT check.
	if check != nil {
		if err := check(); err != nil {
			s.endAccess(c, gen, ReasonRevoked, "token revoked: "+err.Error())
		}
	}
}

// unwatch forgets c (disconnected).
func (s *Service) unwatch(c *conn) {
	s.connMu.Lock()
	delete(s.conns, c)
	s.connMu.Unlock()
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.authGen++
	c.mu.Unlock()
}

// armLocked starts the expiry timer of c's identity. c.mu must be held.
func (s *Service) armLocked(c *conn) {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.authGen++
	if c.id.Expires.IsZero() {
		return
	}
	gen := c.authGen
	c.timer = time.AfterFunc(time.Until(c.id.Expires), func() {
		s.endAccess(c, gen, ReasonExpired, "token expired: send auth:refresh with a new token")
	})
}

// endAccess ends the access of c's identity number gen (any when gen is
// 0): its memberships end (the other members see it leave), every later
// request but doc:leave and auth:refresh gets forbidden, and the socket
// gets auth:expired. The connection stays open for a refresh.
func (s *Service) endAccess(c *conn, gen uint64, reason, msg string) {
	c.mu.Lock()
	if c.closed || c.ended != nil || (gen != 0 && gen != c.authGen) {
		c.mu.Unlock()
		return
	}
	c.ended = errorf(contract.CodeForbidden, "%s", msg)
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	ms := make([]*member, 0, len(c.docs))
	for _, m := range c.docs {
		ms = append(ms, m)
	}
	user := c.id.User
	c.mu.Unlock()
	docs := make([]string, 0, len(ms))
	for _, m := range ms {
		if s.removeMember(m, true) {
			docs = append(docs, m.d.id)
		}
	}
	if enc, err := encodeEvent("auth:expired", expiredEvent{Reason: reason, Message: msg, Docs: docs}); err == nil {
		_ = c.sock.SendEncoded(enc, false)
	}
	s.log.Info().Str("sid", c.sock.ID()).Str("user", user).Str("reason", reason).Strs("docs", docs).Msg("access ended")
}

// Revalidate runs every connected socket's Identity.Check and ends the
// access of those whose token no longer holds (auth:expired with reason
// "revoked"). Call it after the revocations change; it is quick and safe
// for concurrent use.
func (s *Service) Revalidate() {
	s.connMu.Lock()
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.connMu.Unlock()
	for _, c := range cs {
		c.mu.Lock()
		check, gen, ended := c.id.Check, c.authGen, c.ended
		c.mu.Unlock()
		if check == nil || ended != nil {
			continue
		}
		if err := check(); err != nil {
			s.endAccess(c, gen, ReasonRevoked, "token revoked: "+err.Error())
		}
	}
}

// onRefresh replaces the socket's token: the new one is verified like at
// CONNECT and must be for the same user. Memberships stay (ops in flight
// are acknowledged as usual) unless the new token has no view access to
// their document; their access level follows the new token. After an
// auth:expired the socket joins its documents again.
func (s *Service) onRefresh(sock *sockets.Socket, req RefreshRequest, ack *sockets.Ack) {
	defer s.recoverTo(sock, "auth:refresh", ack)
	c := s.connOf(sock)
	switch {
	case c == nil:
		s.fail(sock, "auth:refresh", ack, errorf(contract.CodeInternal, "socket not set up"))
		return
	case s.auth == nil:
		s.fail(sock, "auth:refresh", ack, errorf(contract.CodeBadRequest, "authentication is off"))
		return
	case !c.fanout.allow():
		s.fail(sock, "auth:refresh", ack, errorf(contract.CodeRateLimited, "too many joins, leaves, presence updates and refreshes (at most %d per second)", fanoutPerSecond))
		return
	}
	payload, _ := json.Marshal(map[string]string{"token": req.Token})
	id, err := s.auth(payload)
	if err != nil {
		s.fail(sock, "auth:refresh", ack, errorf(contract.CodeUnauthorized, "%s", err.Error()))
		return
	}
	var lost []*member
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if id.User != c.id.User {
		c.mu.Unlock()
		s.fail(sock, "auth:refresh", ack, errorf(contract.CodeForbidden, "the token is for another user"))
		return
	}
	c.id, c.ended = id, nil
	for doc, m := range c.docs {
		m.access = id.access(doc)
		if m.access == AccessNone {
			lost = append(lost, m)
		}
	}
	s.armLocked(c)
	c.mu.Unlock()
	out := refreshAck{OK: true, Left: []string{}}
	if !id.Expires.IsZero() {
		exp := id.Expires.UTC()
		out.Expires = &exp
	}
	for _, m := range lost {
		if s.removeMember(m, true) {
			out.Left = append(out.Left, m.d.id)
		}
	}
	// A token that is already over (an exp in the past, within the
	// verifier's leeway) ends at once: the timer armed above fires now.
	s.log.Info().Str("sid", sock.ID()).Str("user", id.User).Time("exp", id.Expires).Msg("token refreshed")
	_ = ack.Reply(out)
}
