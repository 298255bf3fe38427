package ot

import "math"

// cursor walks the components of an op, taking them whole or in pieces.
// Past the last component it yields an endless retain: every op retains
// the rest of the text implicitly.
type cursor struct {
	c    []comp
	i    int // current component
	off  int // code points of c[i] already taken
	boff int // bytes of c[i].s already taken (inserts)
}

func (it *cursor) done() bool { return it.i >= len(it.c) }

// kind returns the kind of the current component (retain past the end).
func (it *cursor) kind() kind {
	if it.done() {
		return retain
	}
	return it.c[it.i].k
}

// left returns the code points left in the current component (MaxInt past
// the end).
func (it *cursor) left() int {
	if it.done() {
		return math.MaxInt
	}
	return it.c[it.i].n - it.off
}

// skip consumes n code points (n <= left()) of a retain or delete.
func (it *cursor) skip(n int) {
	if it.done() {
		return
	}
	it.off += n
	if it.off == it.c[it.i].n {
		it.i, it.off, it.boff = it.i+1, 0, 0
	}
}

// text consumes n code points (n <= left()) of an insert and returns them.
func (it *cursor) text(n int) string {
	c := it.c[it.i]
	if n == c.n-it.off {
		s := c.s[it.boff:]
		it.i, it.off, it.boff = it.i+1, 0, 0
		return s
	}
	start := it.boff
	it.boff += advance(c.s[start:], n)
	it.off += n
	return c.s[start:it.boff]
}

// Compose returns the single op equivalent to applying a and then b: for
// every text S that a applies to and whose result b applies to,
// Compose(a, b).Apply(S) equals b.Apply(a.Apply(S)).
//
// Both ops retain the rest of the text implicitly, so their spans need not
// match: a shorter op is read as if extended by a retain to any length.
// Compose therefore never fails on well-formed ops; the error result is
// kept for future limits.
func Compose(a, b Op) (Op, error) {
	out := Builder{c: make([]comp, 0, len(a.c)+len(b.c))}
	ia, ib := cursor{c: a.c}, cursor{c: b.c}
	for !ia.done() || !ib.done() {
		if ib.kind() == insert {
			n := ib.left()
			out.insert(ib.text(n), n)
			continue
		}
		if ia.kind() == del {
			n := ia.left()
			ia.skip(n)
			out.Delete(n)
			continue
		}
		// a retains or inserts; b retains or deletes.
		n := min(ia.left(), ib.left())
		switch {
		case ia.kind() == retain && ib.kind() == retain:
			ia.skip(n)
			ib.skip(n)
			out.Retain(n)
		case ia.kind() == retain: // b deletes what a kept
			ia.skip(n)
			ib.skip(n)
			out.Delete(n)
		case ib.kind() == retain: // b keeps what a inserted
			out.insert(ia.text(n), n)
			ib.skip(n)
		default: // b deletes what a inserted
			ia.text(n)
			ib.skip(n)
		}
	}
	return out.Build(), nil
}

// Transform takes two ops a and b made concurrently on the same text, a
// sequenced first, and returns a1 and b1 such that applying a then b1 gives
// the same text as applying b then a1:
//
//	b1.Apply(a.Apply(S)) == a1.Apply(b.Apply(S))
//
// Tie-break: when both insert at the same position, a's insert ends up
// before b's, whatever either op deletes there.
//
// Both ops retain the rest of the text implicitly, so their spans need not
// match; the shorter is read as if extended by a retain to the longer's
// span. Transform therefore never fails on well-formed ops; the error
// result is kept for future limits.
func Transform(a, b Op) (a1, b1 Op, err error) {
	n := len(a.c) + len(b.c)
	oa, ob := Builder{c: make([]comp, 0, n)}, Builder{c: make([]comp, 0, n)}
	ia, ib := cursor{c: a.c}, cursor{c: b.c}
	for !ia.done() || !ib.done() {
		if ia.kind() == insert { // a goes first at a shared position
			n := ia.left()
			oa.insert(ia.text(n), n)
			ob.Retain(n)
			continue
		}
		if ib.kind() == insert {
			n := ib.left()
			ob.insert(ib.text(n), n)
			oa.Retain(n)
			continue
		}
		n := min(ia.left(), ib.left())
		ka, kb := ia.kind(), ib.kind()
		ia.skip(n)
		ib.skip(n)
		switch {
		case ka == retain && kb == retain:
			oa.Retain(n)
			ob.Retain(n)
		case ka == del && kb == retain:
			oa.Delete(n)
		case ka == retain && kb == del:
			ob.Delete(n)
			// both delete: nothing left to do for either
		}
	}
	return oa.Build(), ob.Build(), nil
}

// TransformIndex maps a position (a cursor or selection end, in code
// points) in the text before o to the matching position after o. A
// position inside deleted text moves to the start of the deletion. An
// insert exactly at the position pushes it right, unless stickLeft is set,
// in which case the position stays before the inserted text.
func (o Op) TransformIndex(pos int, stickLeft bool) int {
	out, at := pos, 0 // at: position in the old text
	for _, c := range o.c {
		if at > pos {
			break
		}
		switch c.k {
		case retain:
			at += c.n
		case del:
			out -= min(c.n, pos-at)
			at += c.n
		case insert:
			if at < pos || (at == pos && !stickLeft) {
				out += c.n
			}
		}
	}
	return out
}
