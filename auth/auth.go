package auth

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/internal/contract"
	"github.com/golang-jwt/jwt/v5"
)

// Limits of a token's content.
const (
	// MaxTokenBytes is the longest token Verify looks at.
	MaxTokenBytes = 8 << 10
	// MaxUser is the longest user name, in code points (the wire
	// contract's limit).
	MaxUser = contract.MaxUserNameRunes
	// MaxPatterns is the most patterns a token may carry (edit and view together).
	MaxPatterns = 64
	// MaxPatternBytes is the longest pattern.
	MaxPatternBytes = 256
	// MaxIDBytes is the longest token id (jti).
	MaxIDBytes = 256
	// MinSecretBytes is the shortest secret New accepts.
	MinSecretBytes = 16
	// Leeway is the clock skew tolerated on exp and iat.
	Leeway = 30 * time.Second
)

// Sentinel errors. Verify wraps ErrInvalidToken (or ErrExpired) with the
// reason, which is safe to show to the client.
var (
	ErrInvalidToken = errors.New("auth: invalid token")
	ErrExpired      = errors.New("auth: token expired")
	ErrBadClaims    = errors.New("auth: bad claims")
	ErrRevoked      = errors.New("auth: token revoked")
	ErrWeakSecret   = fmt.Errorf("auth: secret shorter than %d bytes", MinSecretBytes)
)

// Level is what a token allows on one document.
type Level int

// Access levels, ordered: each one includes the ones before it.
const (
	None Level = iota
	View
	Edit
)

// String returns "none", "view" or "edit".
func (l Level) String() string {
	switch l {
	case View:
		return "view"
	case Edit:
		return "edit"
	default:
		return "none"
	}
}

// Claims are the content of a token.
type Claims struct {
	User     string    // sub
	ID       string    // jti, the token's id (optional): what a revocation names
	IssuedAt time.Time // iat; zero in Mint means now
	Expires  time.Time // exp; zero means the token never expires
	Edit     []string  // patterns of the documents the user may edit
	View     []string  // patterns of the documents the user may view
}

// Level returns what c allows on document doc: Edit if an edit pattern
// matches, else View if a view pattern matches, else None.
func (c *Claims) Level(doc string) Level {
	for _, p := range c.Edit {
		if ok, _ := path.Match(p, doc); ok {
			return Edit
		}
	}
	for _, p := range c.View {
		if ok, _ := path.Match(p, doc); ok {
			return View
		}
	}
	return None
}

// Validate checks the user name and the patterns.
func (c *Claims) Validate() error {
	if c.User == "" || utf8.RuneCountInString(c.User) > MaxUser || !utf8.ValidString(c.User) {
		return fmt.Errorf("%w: user must be 1 to %d code points of UTF-8", ErrBadClaims, MaxUser)
	}
	if len(c.ID) > MaxIDBytes || !utf8.ValidString(c.ID) {
		return fmt.Errorf("%w: jti must be up to %d bytes of UTF-8", ErrBadClaims, MaxIDBytes)
	}
	if n := len(c.Edit) + len(c.View); n > MaxPatterns {
		return fmt.Errorf("%w: %d patterns, at most %d", ErrBadClaims, n, MaxPatterns)
	}
	for _, list := range [][]string{c.Edit, c.View} {
		for _, p := range list {
			if err := ValidPattern(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// ValidPattern reports whether p is a usable document id pattern
// (path.Match syntax, 1 to MaxPatternBytes bytes).
func ValidPattern(p string) error {
	if p == "" || len(p) > MaxPatternBytes {
		return fmt.Errorf("%w: pattern must be 1 to %d bytes", ErrBadClaims, MaxPatternBytes)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%w: pattern %q: %v", ErrBadClaims, p, err)
	}
	return nil
}

// wireClaims is the JSON form of Claims.
type wireClaims struct {
	jwt.RegisteredClaims
	Edit []string `json:"edit,omitempty"`
	View []string `json:"view,omitempty"`
}

// Authority mints and verifies tokens with one secret.
type Authority struct {
	secret  []byte
	now     func() time.Time
	revoked *Revocations // nil: no revocations
}

// Option configures New.
type Option func(*Authority)

// WithClock makes the authority read the time from now (tests).
func WithClock(now func() time.Time) Option {
	return func(a *Authority) { a.now = now }
}

// WithRevocations makes Verify refuse the tokens r revokes (ErrRevoked).
func WithRevocations(r *Revocations) Option {
	return func(a *Authority) { a.revoked = r }
}

// Revocations returns the list given WithRevocations, nil without one.
func (a *Authority) Revocations() *Revocations { return a.revoked }

// Now is the authority's clock.
func (a *Authority) Now() time.Time { return a.now() }

// New returns an Authority for secret, which must be at least MinSecretBytes
// long. The secret is copied.
func New(secret []byte, opts ...Option) (*Authority, error) {
	if len(secret) < MinSecretBytes {
		return nil, ErrWeakSecret
	}
	a := &Authority{secret: append([]byte(nil), secret...), now: time.Now}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// Mint signs c. A zero IssuedAt is set to the current time.
func (a *Authority) Mint(c Claims) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	iat := c.IssuedAt
	if iat.IsZero() {
		iat = a.now()
	}
	w := wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:  c.User,
			ID:       c.ID,
			IssuedAt: jwt.NewNumericDate(iat),
		},
		Edit: c.Edit,
		View: c.View,
	}
	if !c.Expires.IsZero() {
		w.ExpiresAt = jwt.NewNumericDate(c.Expires)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, w).SignedString(a.secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}

// Verify checks token's signature (HS256 only), expiry and claims, and
// returns the claims. Errors wrap ErrInvalidToken or ErrExpired; their text
// says why and is safe to show to the client.
func (a *Authority) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: missing token", ErrInvalidToken)
	}
	if len(token) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, MaxTokenBytes)
	}
	var w wireClaims
	_, err := jwt.ParseWithClaims(token, &w, func(*jwt.Token) (any, error) { return a.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithTimeFunc(a.now),
		jwt.WithLeeway(Leeway),
		jwt.WithIssuedAt(),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, fmt.Errorf("%w", ErrExpired)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, fmt.Errorf("%w: bad signature", ErrInvalidToken)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, fmt.Errorf("%w: issued in the future", ErrInvalidToken)
	case err != nil:
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, reason(err))
	}
	c := &Claims{User: w.Subject, ID: w.ID, Edit: w.Edit, View: w.View}
	if w.IssuedAt != nil {
		c.IssuedAt = w.IssuedAt.Time
	}
	if w.ExpiresAt != nil {
		c.Expires = w.ExpiresAt.Time
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, strings.TrimPrefix(err.Error(), ErrBadClaims.Error()+": "))
	}
	if err := a.revoked.Check(c); err != nil {
		return nil, err
	}
	return c, nil
}

// reason shortens a jwt error to its last part, without the library's prefix.
func reason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// BearerToken extracts the token of an "Authorization: Bearer <token>"
// header value; ok is false when the header has another form.
func BearerToken(header string) (token string, ok bool) {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	token = strings.TrimSpace(header[len(prefix):])
	return token, token != ""
}
