package auth

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// MaxRevokedIDs bounds the token ids a Revocations holds.
const MaxRevokedIDs = 100_000

// ErrTooManyRevocations is returned by Revoke beyond MaxRevokedIDs.
var ErrTooManyRevocations = fmt.Errorf("auth: more than %d revoked token ids", MaxRevokedIDs)

// Revocations is a list of revoked tokens: token ids (jti), and per user a
// not-before time (the user's tokens issued before it are revoked). It is
// safe for concurrent use.
type Revocations struct {
	mu    sync.RWMutex         // guards ids and users
	ids   map[string]struct{}  // revoked jti
	users map[string]time.Time // user -> tokens issued before this are revoked
}

// RevocationList is the content of a Revocations (its JSON form too).
type RevocationList struct {
	IDs   []string             `json:"jti"`
	Users map[string]time.Time `json:"not_before"`
}

// NewRevocations returns an empty list.
func NewRevocations() *Revocations {
	return &Revocations{ids: map[string]struct{}{}, users: map[string]time.Time{}}
}

// Check returns an error wrapping ErrRevoked when c is revoked: its id is
// listed, or it was issued before its user's not-before time (a token
// without iat is then revoked too). A nil list revokes nothing.
func (r *Revocations) Check(c *Claims) error {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c.ID != "" {
		if _, ok := r.ids[c.ID]; ok {
			return fmt.Errorf("%w: token id %q", ErrRevoked, c.ID)
		}
	}
	if nb, ok := r.users[c.User]; ok && (c.IssuedAt.IsZero() || c.IssuedAt.Before(nb)) {
		return fmt.Errorf("%w: tokens of %q issued before %s", ErrRevoked, c.User, nb.UTC().Format(time.RFC3339))
	}
	return nil
}

// Revoke adds token ids and sets users' not-before times (a later time
// replaces an earlier one, never the reverse). Nothing changes when it
// fails.
func (r *Revocations) Revoke(ids []string, notBefore map[string]time.Time) error {
	for _, id := range ids {
		if id == "" || len(id) > MaxIDBytes {
			return fmt.Errorf("%w: a token id is 1 to %d bytes", ErrBadClaims, MaxIDBytes)
		}
	}
	for u := range notBefore {
		if u == "" {
			return fmt.Errorf("%w: empty user name", ErrBadClaims)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.ids)
	for _, id := range ids {
		if _, ok := r.ids[id]; !ok {
			n++
		}
	}
	if n > MaxRevokedIDs {
		return ErrTooManyRevocations
	}
	for _, id := range ids {
		r.ids[id] = struct{}{}
	}
	for u, t := range notBefore {
		if old, ok := r.users[u]; !ok || t.After(old) {
			r.users[u] = t.UTC()
		}
	}
	return nil
}

// List returns a copy of the content.
func (r *Revocations) List() RevocationList {
	r.mu.RLock()
	defer r.mu.RUnlock()
	l := RevocationList{IDs: make([]string, 0, len(r.ids)), Users: maps.Clone(r.users)}
	for id := range r.ids {
		l.IDs = append(l.IDs, id)
	}
	slices.Sort(l.IDs)
	return l
}
