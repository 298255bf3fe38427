package ot

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// iterations scales the property tests; -short runs fewer.
func iterations(n int) int {
	if testing.Short() {
		return n / 10
	}
	return n
}

// TestBuilderMatchesReference checks that normalizing random, unnormalized
// components keeps their meaning (Apply equals the reference semantics) and
// yields the normal form.
func TestBuilderMatchesReference(t *testing.T) {
	forBothPaths(t, testBuilderMatchesReference)
}

func testBuilderMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for i := range iterations(5000) {
		doc := randText(r, r.IntN(40))
		raw := randRaw(r, len([]rune(doc)))
		o := buildRaw(raw)
		checkNormal(t, o)
		want, err := applyRef(raw, []rune(doc))
		if err != nil {
			t.Fatalf("case %d: bad generator: %v", i, err)
		}
		if got := mustApply(t, o, doc); got != string(want) {
			t.Fatalf("case %d: %v on %q = %q, want %q", i, o, doc, got, string(want))
		}
		ins, dl := o.Stats()
		if n := len([]rune(doc)); o.TargetLen(n) != len(want) || n-dl+ins != len(want) {
			t.Fatalf("case %d: TargetLen %d, Stats %d/%d, want length %d", i, o.TargetLen(n), ins, dl, len(want))
		}
		if o.IsNoop() != (o.NumComponents() == 0) || (o.IsNoop() && string(want) != doc) {
			t.Fatalf("case %d: IsNoop %v for %v", i, o.IsNoop(), o)
		}
	}
}

// TestNormalizationIdempotent: Parse(Marshal(op)) == op, and building an op
// again from its own components changes nothing.
func TestNormalizationIdempotent(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for i := range iterations(5000) {
		o := randOp(r, r.IntN(60))
		data, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(data)
		if err != nil {
			t.Fatalf("case %d: Parse(%s): %v", i, data, err)
		}
		if !p.Equal(o) {
			t.Fatalf("case %d: Parse(Marshal(%v)) = %v", i, o, p)
		}
		again, _ := p.MarshalJSON()
		if string(again) != string(data) {
			t.Fatalf("case %d: Marshal not stable: %s then %s", i, data, again)
		}
		b := NewBuilder()
		for _, c := range o.c {
			switch c.k {
			case retain:
				b.Retain(c.n)
			case del:
				b.Delete(c.n)
			case insert:
				b.Insert(c.s)
			}
		}
		if rebuilt := b.Build(); !rebuilt.Equal(o) {
			t.Fatalf("case %d: rebuilding %v gives %v", i, o, rebuilt)
		}
	}
}

// TestTransformConvergence is TP1: b1(a(S)) == a1(b(S)) for random
// documents and random concurrent ops, of any spans.
func TestTransformConvergence(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for i := range iterations(20000) {
		doc := randText(r, r.IntN(30))
		n := len([]rune(doc))
		a, b := randOp(r, n), randOp(r, n)
		a1, b1, err := Transform(a, b)
		if err != nil {
			t.Fatal(err)
		}
		checkNormal(t, a1)
		checkNormal(t, b1)
		left := mustApply(t, b1, mustApply(t, a, doc))
		right := mustApply(t, a1, mustApply(t, b, doc))
		if left != right {
			t.Fatalf("case %d: TP1 fails on %q\na=%v b=%v\na1=%v b1=%v\nb1(a(S))=%q\na1(b(S))=%q", i, doc, a, b, a1, b1, left, right)
		}
		// Inserts survive transformation untouched; deletes can only shrink.
		ai, ad := a.Stats()
		bi, bd := b.Stats()
		a1i, a1d := a1.Stats()
		b1i, b1d := b1.Stats()
		if a1i != ai || b1i != bi || a1d > ad || b1d > bd {
			t.Fatalf("case %d: stats changed: a %d/%d -> %d/%d, b %d/%d -> %d/%d", i, ai, ad, a1i, a1d, bi, bd, b1i, b1d)
		}
	}
}

// TestTransformTieBreak: when both ops insert at one position, the insert
// of the op sequenced first (a) ends up first, whatever else they do there.
func TestTransformTieBreak(t *testing.T) {
	for _, tc := range []struct {
		name, doc, a, b, want string
	}{
		{"both insert at 0", "xyz", `["A"]`, `["B"]`, "ABxyz"},
		{"both insert in the middle", "xyz", `[1,"A"]`, `[1,"B"]`, "xAByz"},
		{"both insert at the end", "xyz", `[3,"A"]`, `[3,"B"]`, "xyzAB"},
		{"a also deletes after", "xyz", `[1,"A",-1]`, `[1,"B"]`, "xABz"},
		{"b also deletes after", "xyz", `[1,"A"]`, `[1,"B",-1]`, "xABz"},
		{"both delete after", "xyz", `[1,"A",-2]`, `[1,"B",-1]`, "xAB"},
		{"a deleted before b's position", "xyz", `[-1,"A"]`, `[1,"B"]`, "AByz"},
		{"multi code point", "中文", `[1,"👍🏽"]`, `[1,"e\u0301"]`, "中👍🏽e\u0301文"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := mustParse(t, tc.a), mustParse(t, tc.b)
			a1, b1, err := Transform(a, b)
			if err != nil {
				t.Fatal(err)
			}
			left := mustApply(t, b1, mustApply(t, a, tc.doc))
			right := mustApply(t, a1, mustApply(t, b, tc.doc))
			if left != tc.want || right != tc.want {
				t.Fatalf("b1(a(S)) = %q, a1(b(S)) = %q, want %q", left, right, tc.want)
			}
		})
	}
}

// TestTransformTieBreakRandom checks the rule on random texts and positions:
// a's insert stands immediately before b's.
func TestTransformTieBreakRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for i := range iterations(5000) {
		doc := randText(r, r.IntN(20))
		n := len([]rune(doc))
		p := r.IntN(n + 1)
		x, y := "«"+randText(r, 1+r.IntN(3))+"»", "‹"+randText(r, 1+r.IntN(3))+"›"
		ab, bb := NewBuilder(), NewBuilder()
		ab.Retain(p)
		ab.Insert(x)
		ab.Delete(r.IntN(n - p + 1))
		bb.Retain(p)
		bb.Insert(y)
		bb.Delete(r.IntN(n - p + 1))
		a, b := ab.Build(), bb.Build()
		a1, b1, _ := Transform(a, b)
		left := mustApply(t, b1, mustApply(t, a, doc))
		right := mustApply(t, a1, mustApply(t, b, doc))
		want := string([]rune(doc)[:p]) + x + y
		if left != right || !strings.HasPrefix(left, want) {
			t.Fatalf("case %d: a=%v b=%v on %q: %q / %q, want prefix %q", i, a, b, doc, left, right, want)
		}
	}
}

// TestComposeMatchesApply: Compose(a, b)(S) == b(a(S)), with b of any span
// up to the length of a(S).
func TestComposeMatchesApply(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for i := range iterations(20000) {
		doc := randText(r, r.IntN(30))
		a := randOp(r, len([]rune(doc)))
		mid := mustApply(t, a, doc)
		b := randOp(r, len([]rune(mid)))
		c, err := Compose(a, b)
		if err != nil {
			t.Fatal(err)
		}
		checkNormal(t, c)
		want := mustApply(t, b, mid)
		if got := mustApply(t, c, doc); got != want {
			t.Fatalf("case %d: on %q a=%v b=%v: Compose=%v gives %q, want %q", i, doc, a, b, c, got, want)
		}
	}
}

// TestComposeAssociative: (a∘b)∘c and a∘(b∘c) are the same normalized op.
func TestComposeAssociative(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	for i := range iterations(5000) {
		doc := randText(r, r.IntN(30))
		a := randOp(r, len([]rune(doc)))
		s1 := mustApply(t, a, doc)
		b := randOp(r, len([]rune(s1)))
		s2 := mustApply(t, b, s1)
		c := randOp(r, len([]rune(s2)))
		ab, _ := Compose(a, b)
		bc, _ := Compose(b, c)
		left, _ := Compose(ab, c)
		right, _ := Compose(a, bc)
		if mustApply(t, left, doc) != mustApply(t, right, doc) {
			t.Fatalf("case %d: (a∘b)∘c and a∘(b∘c) differ on %q", i, doc)
		}
	}
}

// TestTransformOverLogVersusComposition documents a limit: transforming
// over a log step by step and over the log's composition may order an
// insert differently around deleted text (both results converge, but they
// differ). So the server and clients must transform over each op in turn,
// as TestProtocolSimulation does.
func TestTransformOverLogVersusComposition(t *testing.T) {
	doc := "日"
	x := mustParse(t, `["X"]`)                                 // stale op: insert before 日
	log := []Op{mustParse(t, `[1,"<"]`), mustParse(t, `[-1]`)} // insert after 日, delete 日
	y := x
	for _, o := range log {
		_, y, _ = Transform(o, y)
	}
	all, _ := Compose(log[0], log[1])
	_, z, _ := Transform(all, x)
	s := mustApply(t, log[1], mustApply(t, log[0], doc))
	if got := mustApply(t, y, s); got != "X<" {
		t.Errorf("step-wise: %q, want %q", got, "X<")
	}
	if got := mustApply(t, z, s); got != "<X" {
		t.Errorf("over the composition: %q, want %q", got, "<X")
	}
}

// TestProtocolSimulation runs the server and client state machines of a
// collabd session (server: transform a stale op over each logged op, log op
// first; client: one op in flight, later local edits composed into a
// buffer, incoming ops transformed over both) with random edits and random
// message interleavings, and checks that every client converges to the
// server's text.
func TestProtocolSimulation(t *testing.T) {
	type submit struct {
		rev int
		op  Op
	}
	type client struct {
		text        string
		rev         int
		outstanding *Op
		buffer      *Op
		up          []submit // FIFO to the server
		down        []int    // FIFO of log indexes from the server
	}
	for seed := range uint64(iterations(300)) {
		r := rand.New(rand.NewPCG(seed, 10))
		doc := randText(r, r.IntN(20))
		serverText := doc
		var log []Op
		var authors []int
		clients := make([]*client, 2+r.IntN(3))
		for i := range clients {
			clients[i] = &client{text: doc}
		}
		edits := 0
		for step := 0; ; step++ {
			c := clients[r.IntN(len(clients))]
			ci := 0
			for i := range clients {
				if clients[i] == c {
					ci = i
				}
			}
			switch act := r.IntN(4); {
			case act == 0 && edits < 60: // local edit
				edits++
				o := randOp(r, len([]rune(c.text)))
				c.text = mustApply(t, o, c.text)
				switch {
				case c.outstanding == nil:
					c.outstanding = &o
					c.up = append(c.up, submit{c.rev, o})
				case c.buffer == nil:
					c.buffer = &o
				default:
					b, err := Compose(*c.buffer, o)
					if err != nil {
						t.Fatal(err)
					}
					c.buffer = &b
				}
			case act == 1 && len(c.up) > 0: // the server receives one op
				m := c.up[0]
				c.up = c.up[1:]
				o := m.op
				for _, l := range log[m.rev:] {
					_, o, _ = Transform(l, o)
				}
				var err error
				if serverText, err = o.ApplyString(serverText); err != nil {
					t.Fatalf("seed %d: server: %v", seed, err)
				}
				log = append(log, o)
				authors = append(authors, ci)
				for _, d := range clients {
					d.down = append(d.down, len(log)-1)
				}
			case act >= 2 && len(c.down) > 0: // the client receives one message
				idx := c.down[0]
				c.down = c.down[1:]
				c.rev = idx + 1
				if authors[idx] == ci { // ack
					c.outstanding, c.buffer = c.buffer, nil
					if c.outstanding != nil {
						c.up = append(c.up, submit{c.rev, *c.outstanding})
					}
					continue
				}
				s := log[idx]
				if c.outstanding != nil {
					var o Op
					s, o, _ = Transform(s, *c.outstanding)
					c.outstanding = &o
				}
				if c.buffer != nil {
					var b Op
					s, b, _ = Transform(s, *c.buffer)
					c.buffer = &b
				}
				c.text = mustApply(t, s, c.text)
			}
			if edits >= 60 {
				idle := true
				for _, d := range clients {
					if len(d.up) > 0 || len(d.down) > 0 || d.outstanding != nil {
						idle = false
					}
				}
				if idle {
					break
				}
			}
			if step > 100000 {
				t.Fatalf("seed %d: simulation did not settle", seed)
			}
		}
		for i, c := range clients {
			if c.text != serverText {
				t.Fatalf("seed %d: client %d has %q, server %q", seed, i, c.text, serverText)
			}
		}
	}
}

// TestInvertRoundTrip: o.Invert(S) applied to o(S) gives S back, and the
// inverse of the inverse is o.
func TestInvertRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for i := range iterations(10000) {
		doc := randText(r, r.IntN(40))
		s := NewText(doc)
		o := randOp(r, s.Len())
		after, err := o.Apply(s)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := o.Invert(s)
		if err != nil {
			t.Fatal(err)
		}
		checkNormal(t, inv)
		back, err := inv.Apply(after)
		if err != nil || back.String() != doc {
			t.Fatalf("case %d: %v inverted %v on %q gives %q, %v", i, o, inv, doc, back.String(), err)
		}
		invinv, err := inv.Invert(after)
		if err != nil || !invinv.Equal(o) {
			t.Fatalf("case %d: inverse of inverse %v, want %v", i, invinv, o)
		}
	}
}

func TestApplyOutOfRange(t *testing.T) {
	for _, tc := range []struct{ op, doc string }{
		{`[4,"x"]`, "abc"},
		{`[-4]`, "abc"},
		{`[2,-2]`, "abc"},
		{`[1,"😀",-1]`, ""},
		{`[3,"x"]`, "a😀"}, // 2 code points, 5 bytes
	} {
		o := mustParse(t, tc.op)
		x := NewText(tc.doc)
		got, err := o.Apply(x)
		if !errors.Is(err, ErrOutOfRange) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s on %q: error %v, want ErrOutOfRange", tc.op, tc.doc, err)
		}
		if got.String() != tc.doc {
			t.Errorf("%s on %q: failed Apply returned %q", tc.op, tc.doc, got.String())
		}
		if _, err := o.Invert(x); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("%s: Invert on %q: error %v, want ErrOutOfRange", tc.op, tc.doc, err)
		}
	}
	// A span equal to the length is fine; a retain-only op is a no-op
	// that applies to any text.
	if got := mustApply(t, mustParse(t, `[3,"x"]`), "a😀b"); got != "a😀bx" {
		t.Fatalf("got %q", got)
	}
	if got := mustApply(t, mustParse(t, `[100]`), "ab"); got != "ab" {
		t.Fatalf("got %q", got)
	}
}

func TestCodePointUnits(t *testing.T) {
	// 😀 is one code point (two UTF-16 units); e + U+0301 is two; 👍🏽 is two.
	doc := "😀e\u0301👍🏽中"
	for _, tc := range []struct{ op, want string }{
		{`[1,"|"]`, "😀|e\u0301👍🏽中"},
		{`[2,"|"]`, "😀e|\u0301👍🏽中"},
		{`[3,-2]`, "😀e\u0301中"},
		{`[-1]`, "e\u0301👍🏽中"},
		{`[5,"|"]`, "😀e\u0301👍🏽|中"},
		{`[6,"|"]`, doc + "|"},
	} {
		if got := mustApply(t, mustParse(t, tc.op), doc); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.op, got, tc.want)
		}
	}
}

func TestTransformIndex(t *testing.T) {
	for _, tc := range []struct {
		op        string
		pos       int
		stickLeft bool
		want      int
	}{
		{`[2,"ab"]`, 1, false, 1},
		{`[2,"ab"]`, 2, false, 4},
		{`[2,"ab"]`, 2, true, 2},
		{`[2,"ab"]`, 3, false, 5},
		{`[1,-2]`, 0, false, 0},
		{`[1,-2]`, 1, false, 1},
		{`[1,-2]`, 2, false, 1},
		{`[1,-2]`, 3, false, 1},
		{`[1,-2]`, 5, false, 3},
		{`["😀",-1,2,"x"]`, 4, false, 5},
		{`["😀",-1,2,"x"]`, 3, false, 4},
		{`["😀",-1,2,"x"]`, 3, true, 3},
	} {
		if got := mustParse(t, tc.op).TransformIndex(tc.pos, tc.stickLeft); got != tc.want {
			t.Errorf("%s.TransformIndex(%d, %v) = %d, want %d", tc.op, tc.pos, tc.stickLeft, got, tc.want)
		}
	}
}

// TestTransformIndexFollowsText marks a position with a unique character
// that no op touches and checks TransformIndex finds it after the op.
func TestTransformIndexFollowsText(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for i := range iterations(5000) {
		doc := []rune(randText(r, r.IntN(30)))
		p := r.IntN(len(doc) + 1)
		marked := string(doc[:p]) + "\U000F0000" + string(doc[p:])
		// An op on the marked text that keeps the mark: build on doc, then
		// insert a retain of the mark at p.
		o := randOp(r, len(doc))
		b := NewBuilder()
		it := cursor{c: o.c}
		at := 0
		for !it.done() {
			if at == p && it.kind() != insert {
				break
			}
			switch it.kind() {
			case insert:
				n := it.left()
				b.Insert(it.text(n))
			case retain:
				n := min(it.left(), p-at)
				b.Retain(n)
				it.skip(n)
				at += n
			case del:
				n := min(it.left(), p-at)
				b.Delete(n)
				it.skip(n)
				at += n
			}
		}
		if at < p {
			b.Retain(p - at)
		}
		b.Retain(1) // the mark
		for !it.done() {
			switch it.kind() {
			case insert:
				b.Insert(it.text(it.left()))
			case retain:
				n := it.left()
				b.Retain(n)
				it.skip(n)
			case del:
				n := it.left()
				b.Delete(n)
				it.skip(n)
			}
		}
		om := b.Build()
		out := []rune(mustApply(t, om, marked))
		want := -1
		for j, c := range out {
			if c == '\U000F0000' {
				want = j
			}
		}
		// Inserts at p went before the mark: the position is pushed right.
		if got := o.TransformIndex(p, false); got != want {
			t.Fatalf("case %d: %v.TransformIndex(%d) = %d, want %d (marked op %v)", i, o, p, got, want, om)
		}
	}
}
