package session_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/session"
)

// tokens is a test authenticator: a token is "user/ttl", ttl a Go duration
// from the moment it is first verified ("0" never expires); revoked tokens
// fail Check and are refused.
type tokens struct {
	mu      sync.Mutex // guards exp and revoked
	exp     map[string]time.Time
	revoked map[string]bool
}

func newTokens() *tokens {
	return &tokens{exp: map[string]time.Time{}, revoked: map[string]bool{}}
}

func (k *tokens) revoke(tok string) {
	k.mu.Lock()
	k.revoked[tok] = true
	k.mu.Unlock()
}

func (k *tokens) authenticate(raw json.RawMessage) (session.Identity, error) {
	var p struct{ Token string }
	if err := json.Unmarshal(raw, &p); err != nil {
		return session.Identity{}, err
	}
	user, ttl, ok := strings.Cut(p.Token, "/")
	d, err := time.ParseDuration(ttl)
	if !ok || err != nil {
		return session.Identity{}, errors.New("malformed token")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.revoked[p.Token] {
		return session.Identity{}, errors.New("token revoked")
	}
	exp, seen := k.exp[p.Token]
	if !seen && d > 0 {
		exp = time.Now().Add(d)
		k.exp[p.Token] = exp
	}
	if !exp.IsZero() && time.Now().After(exp) {
		return session.Identity{}, errors.New("token expired")
	}
	tok := p.Token
	return session.Identity{
		User:    user,
		Expires: exp,
		Check: func() error {
			k.mu.Lock()
			defer k.mu.Unlock()
			if k.revoked[tok] {
				return errors.New("revoked")
			}
			return nil
		},
	}, nil
}

func (tc *tclient) expired(t *testing.T) (reason string, docs []string) {
	t.Helper()
	var ev struct {
		Reason  string
		Message string
		Docs    []string
	}
	if err := json.Unmarshal(tc.next("auth:expired"), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Message == "" {
		t.Fatal("auth:expired without a message")
	}
	return ev.Reason, ev.Docs
}

// TestTokenExpiryEndsAccess: at its token's exp a socket gets auth:expired,
// leaves its documents (the others see it go), receives nothing more and
// gets forbidden on edits, joins and queries; a refresh and a rejoin with
// its revision bring it back, and its unacknowledged op, resent with the
// same seq, is applied once.
func TestTokenExpiryEndsAccess(t *testing.T) {
	k := newTokens()
	e := newEnv(t, envOpts{auth: k.authenticate})
	ann, err := e.dial(obj("token", "ann/1200ms"))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := e.dial(obj("token", "bob/0"))
	if err != nil {
		t.Fatal(err)
	}
	ann.mustOK("doc:join", obj("doc", "d", "client", "ann-1"))
	bob.mustOK("doc:join", obj("doc", "d", "client", "bob-1"))
	ann.mustOK("doc:op", obj("doc", "d", "client", "ann-1", "seq", 1, "rev", 0, "op", raw(`["a"]`)))

	start := time.Now()
	reason, docs := ann.expired(t)
	if reason != session.ReasonExpired || len(docs) != 1 || docs[0] != "d" {
		t.Fatalf("auth:expired %q %v", reason, docs)
	}
	if el := time.Since(start); el > 2500*time.Millisecond {
		t.Fatalf("expired %v after the first op, token lived 1.2s", el)
	}
	var left struct {
		Client string
		Joined bool
	}
	for {
		if err := json.Unmarshal(bob.next("doc:member"), &left); err != nil {
			t.Fatal(err)
		}
		if left.Client == "ann-1" && !left.Joined {
			break
		}
	}
	// Not left editing, joining or reading.
	for _, c := range []struct {
		event string
		arg   map[string]any
	}{
		{"doc:op", obj("doc", "d", "client", "ann-1", "seq", 2, "rev", 1, "op", raw(`[1,"b"]`))},
		{"doc:join", obj("doc", "d", "client", "ann-1")},
		{"doc:history", obj("doc", "d")},
		{"doc:revision", obj("doc", "d", "rev", 1)},
		{"doc:presence", obj("doc", "d", "rev", 1, "sel", []any{})},
	} {
		if a := ann.call(c.event, c.arg); a.code() != "forbidden" || !strings.Contains(a.Error.Message, "expired") {
			t.Fatalf("%s after expiry: %s", c.event, a.raw)
		}
	}
	bob.mustOK("doc:op", obj("doc", "d", "client", "bob-1", "seq", 1, "rev", 1, "op", raw(`[1,"B"]`)))
	ann.quiet("doc:op", 200*time.Millisecond)

	// A refresh with an expired or malformed token fails; a fresh one
	// restores access.
	if a := ann.call("auth:refresh", obj("token", "ann/1200ms")); a.code() != "unauthorized" {
		t.Fatalf("refresh with the expired token: %s", a.raw)
	}
	if a := ann.call("auth:refresh", obj("token", "nonsense")); a.code() != "unauthorized" {
		t.Fatalf("refresh with a bad token: %s", a.raw)
	}
	if a := ann.call("auth:refresh", obj("token", "bob/1h")); a.code() != "forbidden" {
		t.Fatalf("refresh as another user: %s", a.raw)
	}
	if a := ann.call("auth:refresh", obj("tok", "x")); a.code() != "bad_request" {
		t.Fatalf("refresh without token: %s", a.raw)
	}
	a := ann.mustOK("auth:refresh", obj("token", "ann/1h"))
	if !strings.Contains(string(a.raw), `"exp":"`) {
		t.Fatalf("refresh ack without exp: %s", a.raw)
	}
	j := ann.mustOK("doc:join", obj("doc", "d", "client", "ann-1", "rev", 1))
	if j.Rev != 2 || len(j.Ops) != 1 {
		t.Fatalf("resume after refresh: %s", j.raw)
	}
	// The op refused while expired, resent with its seq: applied once.
	for range 2 {
		if a := ann.mustOK("doc:op", obj("doc", "d", "client", "ann-1", "seq", 2, "rev", 1, "op", raw(`[1,"b"]`))); a.Rev != 3 {
			t.Fatalf("resent op: %s", a.raw)
		}
	}
	if rev, text := e.text("d"); rev != 3 || strings.Count(text, "b") != 1 {
		t.Fatalf("text %d %q", rev, text)
	}
}

// TestRefreshKeepsPendingOp: a refresh sent right behind an op does not
// lose it (its ack comes, it is applied once), the memberships go on, and
// the old token's expiry no longer ends anything.
func TestRefreshKeepsPendingOp(t *testing.T) {
	k := newTokens()
	e := newEnv(t, envOpts{auth: k.authenticate})
	ann, err := e.dial(obj("token", "ann/900ms"))
	if err != nil {
		t.Fatal(err)
	}
	ann.mustOK("doc:join", obj("doc", "p", "client", "ann-1"))
	acks := make(chan []byte, 1)
	if err := ann.c.EmitAck(func(args []byte) { acks <- append([]byte(nil), args...) }, "doc:op",
		obj("doc", "p", "client", "ann-1", "seq", 1, "rev", 0, "op", raw(`["pending"]`))); err != nil {
		t.Fatal(err)
	}
	ann.mustOK("auth:refresh", obj("token", "ann/1h"))
	select {
	case a := <-acks:
		if !strings.Contains(string(a), `"ok":true`) || !strings.Contains(string(a), `"rev":1`) {
			t.Fatalf("pending op ack %s", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ack for the op sent before the refresh")
	}
	ann.quiet("auth:expired", 1500*time.Millisecond) // past the first token's exp
	ann.mustOK("doc:op", obj("doc", "p", "client", "ann-1", "seq", 2, "rev", 1, "op", raw(`[7,"!"]`)))
	if rev, text := e.text("p"); rev != 2 || text != "pending!" {
		t.Fatalf("text %d %q", rev, text)
	}
}

// TestRevocationEndsAccess: Revalidate ends the access of the sockets whose
// token was revoked, and only theirs; the revoked token cannot be used to
// refresh.
func TestRevocationEndsAccess(t *testing.T) {
	k := newTokens()
	e := newEnv(t, envOpts{auth: k.authenticate})
	ann, err := e.dial(obj("token", "ann/0"))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := e.dial(obj("token", "bob/0"))
	if err != nil {
		t.Fatal(err)
	}
	ann.mustOK("doc:join", obj("doc", "r", "client", "ann-1"))
	bob.mustOK("doc:join", obj("doc", "r", "client", "bob-1"))
	e.svc.Revalidate()
	ann.quiet("auth:expired", 100*time.Millisecond)
	k.revoke("ann/0")
	e.svc.Revalidate()
	if reason, docs := ann.expired(t); reason != session.ReasonRevoked || len(docs) != 1 {
		t.Fatalf("auth:expired %q %v", reason, docs)
	}
	if a := ann.call("doc:op", obj("doc", "r", "client", "ann-1", "seq", 1, "rev", 0, "op", raw(`["x"]`))); a.code() != "forbidden" {
		t.Fatalf("op after revocation: %s", a.raw)
	}
	if a := ann.call("auth:refresh", obj("token", "ann/0")); a.code() != "unauthorized" {
		t.Fatalf("refresh with the revoked token: %s", a.raw)
	}
	bob.quiet("auth:expired", 100*time.Millisecond)
	bob.mustOK("doc:op", obj("doc", "r", "client", "bob-1", "seq", 1, "rev", 0, "op", raw(`["y"]`)))
	ann.mustOK("auth:refresh", obj("token", "ann/1h"))
	ann.mustOK("doc:join", obj("doc", "r", "client", "ann-1"))
}

func TestRefreshWithoutAuth(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client()
	if a := c.call("auth:refresh", obj("token", "x")); a.code() != "bad_request" {
		t.Fatalf("refresh with auth off: %s", a.raw)
	}
}
