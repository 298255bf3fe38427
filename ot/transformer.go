package ot

import "slices"

// Transformer transforms one op over a run of ops sequenced before it, one
// after the other, as a sequencer does with a late op and the log after
// its base revision. It gives exactly the b1 results of calling Transform
// on each logged op in turn, but keeps its intermediate ops in two scratch
// buffers it reuses, so a long run costs no allocation until Op builds the
// result; a Transformer reused for the next op keeps its buffers.
//
// The zero Transformer is ready to use. A Transformer must not be used by
// two goroutines at once. Its scratch buffers are not cleared between
// uses (clearing memory that holds pointers is costly while the garbage
// collector runs), so they may keep a few inserted strings alive until
// they are overwritten.
type Transformer struct {
	orig Op        // the op given to Reset
	cur  []comp    // the op transformed so far, normalized
	in   int       // where cur lives: -1 in orig, else in buf[in]
	buf  [2][]comp // scratch buffers, used in turn
	out  Builder   // writes into the scratch buffer cur is not in; its insert-merge buffer is reused
}

// Reset starts transforming b.
func (t *Transformer) Reset(b Op) {
	t.orig, t.cur, t.in = b, b.c, -1
}

// Over transforms the current op over a, sequenced before it (a first at a
// shared insert position, as in Transform). a must have been made on the
// same text as the current op.
func (t *Transformer) Over(a Op) {
	if len(a.c) == 0 || len(t.cur) == 0 {
		return // a no-op moves nothing; a no-op stays one
	}
	dst := 0
	if t.in == 0 {
		dst = 1
	}
	if l := len(a.c); l <= 2 && a.c[l-1].k == insert && (l == 1 || a.c[0].k == retain) {
		// A keystroke: a inserts at one position. Splice a retain over
		// its text into the current op there.
		at := 0
		if l == 2 {
			at = a.c[0].n
		}
		t.overInsert(dst, at, a.c[l-1].n)
		return
	}
	ob := &t.out
	ob.c, ob.open, ob.merged = t.buf[dst][:0], 0, false
	ia, ib := cursor{c: a.c}, cursor{c: t.cur}
	for !ib.done() {
		if ia.done() {
			// a retains the rest: the rest of b is unchanged.
			if ib.off > 0 {
				c := ib.c[ib.i]
				n := c.n - ib.off
				if c.k == insert {
					ob.insert(ib.text(n), n)
				} else {
					ib.skip(n)
					if c.k == retain {
						ob.Retain(n)
					} else {
						ob.Delete(n)
					}
				}
			}
			for _, c := range ib.c[ib.i:] {
				switch c.k {
				case retain:
					ob.Retain(c.n)
				case del:
					ob.Delete(c.n)
				case insert:
					ob.insert(c.s, c.n)
				}
			}
			break
		}
		if ia.kind() == insert { // a goes first at a shared position
			n := ia.left()
			ia.text(n)
			ob.Retain(n)
			continue
		}
		if ib.kind() == insert {
			n := ib.left()
			ob.insert(ib.text(n), n)
			continue
		}
		n := min(ia.left(), ib.left())
		ka, kb := ia.kind(), ib.kind()
		ia.skip(n)
		ib.skip(n)
		if ka == retain {
			if kb == retain {
				ob.Retain(n)
			} else {
				ob.Delete(n)
			}
		}
		// a deletes: what b retains or deletes there is gone already.
	}
	// Past b's end everything is retained: a's inserts there only add to
	// the trailing retain, which normalization drops.
	ob.flush()
	c := ob.c
	if l := len(c) - 1; l >= 0 && c[l].k == retain {
		c = c[:l]
	}
	t.buf[dst] = ob.c[:0] // keep the memory, grown or not
	t.cur, t.in = c, dst
	ob.c = nil
}

// overInsert is Over for an op that inserts n code points at position at
// and changes nothing else, writing into buf[dst]. The current op keeps
// everything it does, shifted by n from position at on; the retain of the
// inserted text goes before any insert of the current op at that same
// position (the earlier op goes first).
func (t *Transformer) overInsert(dst, at, n int) {
	out := t.buf[dst][:0]
	emit := func(c comp) {
		if l := len(out) - 1; l >= 0 && c.k != insert && out[l].k == c.k {
			out[l].n += c.n // adjacent retains (or deletes) merge
			return
		}
		out = append(out, c)
	}
	pos, done := 0, false
	for _, c := range t.cur {
		if !done && pos == at {
			emit(comp{k: retain, n: n})
			done = true
		}
		if !done && c.k != insert && pos < at && at < pos+c.n {
			emit(comp{k: c.k, n: at - pos})
			emit(comp{k: retain, n: n})
			emit(comp{k: c.k, n: pos + c.n - at})
			done = true
			pos += c.n
			continue
		}
		emit(c)
		if c.k != insert {
			pos += c.n
		}
	}
	// Not done: the insert lies at or past the op's end, inside the
	// implicit trailing retain.
	t.buf[dst] = out[:0]
	t.cur, t.in = out, dst
}

// Op returns the transformed op. It does not share memory with the
// Transformer, which may be Reset for the next op.
func (t *Transformer) Op() Op {
	if t.in < 0 {
		return t.orig
	}
	if len(t.cur) == 0 {
		return Op{}
	}
	return opOf(slices.Clone(t.cur))
}
