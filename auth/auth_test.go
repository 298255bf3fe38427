package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	testNow    = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
)

func newTestAuthority(tb testing.TB) *Authority {
	tb.Helper()
	a, err := New(testSecret, WithClock(func() time.Time { return testNow }))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func mint(tb testing.TB, a *Authority, c Claims) string {
	tb.Helper()
	tok, err := a.Mint(c)
	if err != nil {
		tb.Fatalf("Mint(%+v): %v", c, err)
	}
	return tok
}

func TestNewRejectsWeakSecret(t *testing.T) {
	if _, err := New([]byte("short")); !errors.Is(err, ErrWeakSecret) {
		t.Fatalf("New(short) = %v, want ErrWeakSecret", err)
	}
}

func TestRoundTripAndLevels(t *testing.T) {
	a := newTestAuthority(t)
	tok := mint(t, a, Claims{User: "ada", Edit: []string{"team-*", "notes.2026"}, View: []string{"*"}})
	c, err := a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "ada" || !c.IssuedAt.Equal(testNow) || !c.Expires.IsZero() {
		t.Fatalf("claims = %+v", c)
	}
	for _, tc := range []struct {
		doc  string
		want Level
	}{
		{"team-a", Edit},
		{"team-", Edit},
		{"notes.2026", Edit},
		{"notes.2027", View},
		{"other", View},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			if got := c.Level(tc.doc); got != tc.want {
				t.Fatalf("Level(%q) = %v, want %v", tc.doc, got, tc.want)
			}
		})
	}
	viewer := &Claims{User: "v", View: []string{"pub-?"}}
	if got := viewer.Level("pub-1"); got != View {
		t.Fatalf("viewer Level(pub-1) = %v", got)
	}
	if got := viewer.Level("pub-12"); got != None {
		t.Fatalf("viewer Level(pub-12) = %v", got)
	}
}

func TestVerifyRejects(t *testing.T) {
	a := newTestAuthority(t)
	other, err := New([]byte("another secret of enough bytes!!"))
	if err != nil {
		t.Fatal(err)
	}
	good := mint(t, a, Claims{User: "ada", Edit: []string{"*"}})
	signWith := func(m jwt.SigningMethod, key any, claims jwt.Claims) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	wc := func(sub string, edit ...string) wireClaims {
		return wireClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(testNow)}, Edit: edit}
	}
	expired := wc("ada", "*")
	expired.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Minute))
	future := wc("ada", "*")
	future.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Hour))
	parts := strings.Split(good, ".")

	for _, tc := range []struct {
		name  string
		token string
		want  error
		text  string
	}{
		{"empty", "", ErrInvalidToken, "missing"},
		{"garbage", "not a token", ErrInvalidToken, "malformed"},
		{"too long", strings.Repeat("a", MaxTokenBytes+1), ErrInvalidToken, "longer"},
		{"other secret", mint(t, other, Claims{User: "ada", Edit: []string{"*"}}), ErrInvalidToken, "signature"},
		{"tampered payload", parts[0] + "." + parts[1] + "x." + parts[2], ErrInvalidToken, ""},
		{"tampered signature", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2] + "AA", ErrInvalidToken, "signature"},
		{"alg none", signWith(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, wc("ada", "*")), ErrInvalidToken, ""},
		{"HS384", signWith(jwt.SigningMethodHS384, testSecret, wc("ada", "*")), ErrInvalidToken, ""},
		{"expired", signWith(jwt.SigningMethodHS256, testSecret, expired), ErrExpired, "expired"},
		{"issued in the future", signWith(jwt.SigningMethodHS256, testSecret, future), ErrInvalidToken, "future"},
		{"no subject", signWith(jwt.SigningMethodHS256, testSecret, wc("", "*")), ErrInvalidToken, "user"},
		{"bad pattern", signWith(jwt.SigningMethodHS256, testSecret, wc("ada", "[")), ErrInvalidToken, "pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := a.Verify(tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %+v, %v; want %v", c, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error %q does not say %q", err, tc.text)
			}
		})
	}
}

func TestExpiryWithLeeway(t *testing.T) {
	now := testNow
	a, err := New(testSecret, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	tok := mint(t, a, Claims{User: "ada", View: []string{"*"}, Expires: testNow.Add(time.Hour)})
	for _, tc := range []struct {
		at   time.Duration
		want error
	}{
		{0, nil},
		{time.Hour, nil},
		{time.Hour + Leeway - time.Second, nil},
		{time.Hour + Leeway + time.Second, ErrExpired},
	} {
		now = testNow.Add(tc.at)
		if _, err := a.Verify(tok); !errors.Is(err, tc.want) {
			t.Fatalf("at +%v: Verify = %v, want %v", tc.at, err, tc.want)
		}
	}
}

func TestMintRejectsBadClaims(t *testing.T) {
	a := newTestAuthority(t)
	many := make([]string, MaxPatterns+1)
	for i := range many {
		many[i] = "*"
	}
	for _, tc := range []struct {
		name string
		c    Claims
	}{
		{"no user", Claims{Edit: []string{"*"}}},
		{"long user", Claims{User: strings.Repeat("é", MaxUser+1)}},
		{"invalid utf8 user", Claims{User: "a\xff"}},
		{"bad pattern", Claims{User: "a", View: []string{"[a-"}}},
		{"empty pattern", Claims{User: "a", Edit: []string{""}}},
		{"too many patterns", Claims{User: "a", View: many}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := a.Mint(tc.c); !errors.Is(err, ErrBadClaims) {
				t.Fatalf("Mint = %v, want ErrBadClaims", err)
			}
		})
	}
	if _, err := a.Mint(Claims{User: strings.Repeat("é", MaxUser)}); err != nil {
		t.Fatalf("Mint of a %d code point user: %v", MaxUser, err)
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer  abc ", "abc", true},
		{"BEARER x.y.z", "x.y.z", true},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"", "", false},
		{"Bearerabc", "", false},
	} {
		t.Run(tc.header, func(t *testing.T) {
			tok, ok := BearerToken(tc.header)
			if tok != tc.token || ok != tc.ok {
				t.Fatalf("BearerToken(%q) = %q, %v; want %q, %v", tc.header, tok, ok, tc.token, tc.ok)
			}
		})
	}
}

func TestLevelString(t *testing.T) {
	if None.String() != "none" || View.String() != "view" || Edit.String() != "edit" {
		t.Fatal("Level.String")
	}
}

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, and a
// token it accepts must carry valid claims that mint again into a token
// granting the same access.
func FuzzVerify(f *testing.F) {
	a := newTestAuthority(f)
	f.Add(mint(f, a, Claims{User: "ada", Edit: []string{"team-*"}, View: []string{"*"}}))
	f.Add(mint(f, a, Claims{User: "bob", View: []string{"notes.2026"}, Expires: testNow.Add(time.Hour)}))
	f.Add(mint(f, a, Claims{User: "ünïcødé 👍", Edit: []string{"[a-c]*"}}))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := a.Verify(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrExpired) {
				t.Fatalf("Verify error %v wraps no sentinel", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted claims invalid: %v", err)
		}
		again, err := a.Verify(mint(t, a, *c))
		if err != nil {
			t.Fatalf("re-minted token refused: %v", err)
		}
		for _, doc := range []string{"a", "team-x", "notes.2026", "zzz"} {
			if again.Level(doc) != c.Level(doc) {
				t.Fatalf("Level(%q) changed after re-mint", doc)
			}
		}
	})
}

func TestRevocations(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	revs := NewRevocations()
	a, err := New([]byte("0123456789abcdef"), WithClock(func() time.Time { return now }), WithRevocations(revs))
	if err != nil {
		t.Fatal(err)
	}
	mint := func(user, id string, iat time.Time) string {
		tok, err := a.Mint(Claims{User: user, ID: id, IssuedAt: iat, Edit: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	t1 := mint("ann", "t1", now.Add(-time.Hour))
	t2 := mint("ann", "t2", now.Add(-time.Minute))
	t3 := mint("bob", "", now.Add(-time.Hour))
	c, err := a.Verify(t1)
	if err != nil || c.ID != "t1" {
		t.Fatalf("Verify: %+v %v", c, err)
	}
	if err := revs.Revoke([]string{"t1"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(t1); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked id: %v", err)
	}
	if _, err := a.Verify(t2); err != nil {
		t.Fatalf("other id: %v", err)
	}
	// Bob's tokens issued before 30 minutes ago are revoked; a later
	// (earlier) not-before does not move it back.
	if err := revs.Revoke(nil, map[string]time.Time{"bob": now.Add(-30 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := revs.Revoke(nil, map[string]time.Time{"bob": now.Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(t3); !errors.Is(err, ErrRevoked) {
		t.Fatalf("token before the user's not-before: %v", err)
	}
	if _, err := a.Verify(mint("bob", "", now)); err != nil {
		t.Fatalf("token after the user's not-before: %v", err)
	}
	l := revs.List()
	if len(l.IDs) != 1 || l.IDs[0] != "t1" || !l.Users["bob"].Equal(now.Add(-30*time.Minute)) {
		t.Fatalf("List %+v", l)
	}
	if err := revs.Revoke([]string{""}, nil); !errors.Is(err, ErrBadClaims) {
		t.Fatalf("empty id: %v", err)
	}
	var nilList *Revocations
	if err := nilList.Check(&Claims{User: "x"}); err != nil {
		t.Fatal(err)
	}
}
