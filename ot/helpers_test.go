package ot

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// pieces are the building blocks of random texts: ASCII, JSON-special
// characters, CJK, emoji (single and multi-code-point sequences), combining
// marks, line separators.
var pieces = []string{
	"a", "b", "c", "x", " ", " ", "\n", "\t", `"`, `\`, "/", "<", "\x00", "\x1f",
	"é", "e\u0301", "\u0301", "ñ", "ß",
	"中", "文", "字", "日本語",
	"😀", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "\u2028", "\u2029", "\ufeff", "\U0010ffff",
}

// randText returns a random text of n code points.
func randText(r *rand.Rand, n int) string {
	var b strings.Builder
	for i := 0; i < n; {
		p := pieces[r.IntN(len(pieces))]
		rs := []rune(p)
		if i+len(rs) > n {
			rs = rs[:n-i]
		}
		b.WriteString(string(rs))
		i += len(rs)
	}
	return b.String()
}

// rawComp is a test-side component: n > 0 retain, n < 0 delete, else insert s.
type rawComp struct {
	n int
	s string
}

// randRaw returns random components for a text of docLen code points. They
// are not normalized (adjacent kinds repeat, deletes precede inserts) and
// often stop before the end of the text.
func randRaw(r *rand.Rand, docLen int) []rawComp {
	var cs []rawComp
	pos := 0
	for {
		if r.IntN(8) == 0 {
			return cs
		}
		switch k := r.IntN(3); {
		case k == 0 && pos < docLen:
			n := 1 + r.IntN(min(docLen-pos, 1+r.IntN(8)))
			cs = append(cs, rawComp{n: n})
			pos += n
		case k == 1 && pos < docLen:
			n := 1 + r.IntN(min(docLen-pos, 1+r.IntN(5)))
			cs = append(cs, rawComp{n: -n})
			pos += n
		case k == 2:
			cs = append(cs, rawComp{s: randText(r, 1+r.IntN(4))})
		default:
			if pos >= docLen {
				return cs
			}
		}
	}
}

func buildRaw(cs []rawComp) Op {
	b := NewBuilder()
	for _, c := range cs {
		switch {
		case c.n > 0:
			b.Retain(c.n)
		case c.n < 0:
			b.Delete(-c.n)
		default:
			b.Insert(c.s)
		}
	}
	return b.Build()
}

// applyRef is the reference semantics on a slice of code points.
func applyRef(cs []rawComp, doc []rune) ([]rune, error) {
	out := []rune{}
	pos := 0
	for _, c := range cs {
		switch {
		case c.n > 0:
			if pos+c.n > len(doc) {
				return nil, fmt.Errorf("retain past end")
			}
			out = append(out, doc[pos:pos+c.n]...)
			pos += c.n
		case c.n < 0:
			if pos-c.n > len(doc) {
				return nil, fmt.Errorf("delete past end")
			}
			pos -= c.n
		default:
			out = append(out, []rune(c.s)...)
		}
	}
	return append(out, doc[pos:]...), nil
}

// randOp returns a random normalized op applicable to a text of docLen.
func randOp(r *rand.Rand, docLen int) Op { return buildRaw(randRaw(r, docLen)) }

// checkNormal fails t unless o is in normal form with correct cached stats.
func checkNormal(t testing.TB, o Op) {
	t.Helper()
	span, ins, dl := 0, 0, 0
	for i, c := range o.c {
		switch c.k {
		case retain, del:
			if c.n <= 0 || c.s != "" {
				t.Fatalf("op %v: component %d: bad count %d", o, i, c.n)
			}
			span += c.n
			if c.k == del {
				dl += c.n
			}
		case insert:
			if c.s == "" || c.n != utf8.RuneCountInString(c.s) || !utf8.ValidString(c.s) {
				t.Fatalf("op %v: component %d: bad insert %q n=%d", o, i, c.s, c.n)
			}
			ins += c.n
		default:
			t.Fatalf("op %v: component %d: bad kind %d", o, i, c.k)
		}
		if i > 0 {
			p := o.c[i-1].k
			if p == c.k {
				t.Fatalf("op %v: adjacent components %d and %d of one kind", o, i-1, i)
			}
			if p == del && c.k == insert {
				t.Fatalf("op %v: delete before insert at %d", o, i)
			}
		}
	}
	if n := len(o.c); n > 0 && o.c[n-1].k == retain {
		t.Fatalf("op %v: trailing retain", o)
	}
	if o.span != span || o.ins != ins || o.del != dl {
		t.Fatalf("op %v: cached span/ins/del %d/%d/%d, want %d/%d/%d", o, o.span, o.ins, o.del, span, ins, dl)
	}
}

// checkRope fails t unless the rope of x is a valid AVL tree with correct
// cached counts and leaves of valid, non-empty UTF-8 within maxLeaf.
func checkRope(t testing.TB, x Text) {
	t.Helper()
	if x.root == nil {
		return
	}
	var walk func(n *node) (bytes, runes, h int)
	walk = func(n *node) (int, int, int) {
		if n.leaf() {
			if n.right != nil || n.s == "" || len(n.s) > maxLeaf || !utf8.ValidString(n.s) {
				t.Fatalf("bad leaf %q (%d bytes)", n.s, len(n.s))
			}
			if n.bytes != len(n.s) || n.runes != utf8.RuneCountInString(n.s) || n.height != 0 {
				t.Fatalf("leaf %q: cached counts %d/%d/%d", n.s, n.bytes, n.runes, n.height)
			}
			return n.bytes, n.runes, 0
		}
		if n.right == nil || n.s != "" {
			t.Fatalf("malformed inner node")
		}
		lb, lr, lh := walk(n.left)
		rb, rr, rh := walk(n.right)
		if d := lh - rh; d > 1 || d < -1 {
			t.Fatalf("unbalanced node: child heights %d and %d", lh, rh)
		}
		h := max(lh, rh) + 1
		if n.bytes != lb+rb || n.runes != lr+rr || n.height != h {
			t.Fatalf("inner node: cached %d/%d/%d, want %d/%d/%d", n.bytes, n.runes, n.height, lb+rb, lr+rr, h)
		}
		return n.bytes, n.runes, h
	}
	walk(x.root)
}

func mustParse(t testing.TB, s string) Op {
	t.Helper()
	o, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%s): %v", s, err)
	}
	return o
}

func mustApply(t testing.TB, o Op, s string) string {
	t.Helper()
	out, err := o.ApplyString(s)
	if err != nil {
		t.Fatalf("%v.Apply(%q): %v", o, s, err)
	}
	return out
}
