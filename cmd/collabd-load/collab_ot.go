//go:build linux

package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/collabd/collabd/ot"
)

// errOutOfOrder reports an ack or a broadcast whose revision is not the one
// after the client's: the server broke the ordering promise of the wire
// contract (each member receives a document's records in revision order, the
// author's ack counting as its own revision).
var errOutOfOrder = errors.New("collabd-load: revision out of order")

// otClient is the client side of the OT protocol for one editor of one
// document: synchronized (nothing pending), awaiting the ack of the op it
// sent, or awaiting that ack with a buffer of local edits made since. It is
// not safe for concurrent use; the editor guards it with its mutex.
type otClient struct {
	rev  uint64  // the last revision received (ack or broadcast)
	text ot.Text // the local text: revision rev plus sent plus buf

	sent    ot.Op // the op awaiting its ack, transformed up to rev
	hasSent bool
	buf     ot.Op // local edits made since sent, composed, based on rev+sent
	hasBuf  bool
}

// newOTClient starts synchronized at rev with text (a join ack).
func newOTClient(rev uint64, text string) *otClient {
	return &otClient{rev: rev, text: ot.NewText(text)}
}

// pending reports whether an op awaits its ack or local edits wait to be sent.
func (c *otClient) pending() bool { return c.hasSent || c.hasBuf }

// edit applies a local edit. It returns true when the edit must be sent now
// (the client was synchronized); otherwise it joins the buffer.
func (c *otClient) edit(op ot.Op) (send bool, err error) {
	t, err := op.Apply(c.text)
	if err != nil {
		return false, fmt.Errorf("applying a local edit %v: %w", op, err)
	}
	c.text = t
	switch {
	case !c.hasSent:
		c.sent, c.hasSent = op, true
		return true, nil
	case !c.hasBuf:
		c.buf, c.hasBuf = op, true
	default:
		if c.buf, err = ot.Compose(c.buf, op); err != nil {
			return false, err
		}
	}
	return false, nil
}

// ack records the server's ack of the sent op, which got revision rev. It
// returns true when the buffer became the new sent op, to be sent now.
func (c *otClient) ack(rev uint64) (send bool, err error) {
	if !c.hasSent {
		return false, errors.New("collabd-load: ack without an op in flight")
	}
	if rev != c.rev+1 {
		return false, fmt.Errorf("%w: ack of revision %d at revision %d", errOutOfOrder, rev, c.rev)
	}
	c.rev = rev
	c.sent, c.hasSent = c.buf, c.hasBuf
	c.buf, c.hasBuf = ot.Op{}, false
	return c.hasSent, nil
}

// remote applies another client's op, which produced revision rev on the
// server. The server sequenced it before our pending ops, so it is the "a"
// (first) side of every transform.
func (c *otClient) remote(rev uint64, op ot.Op) error {
	if rev != c.rev+1 {
		return fmt.Errorf("%w: broadcast of revision %d at revision %d", errOutOfOrder, rev, c.rev)
	}
	var err error
	if c.hasSent {
		if op, c.sent, err = ot.Transform(op, c.sent); err != nil {
			return err
		}
	}
	if c.hasBuf {
		if op, c.buf, err = ot.Transform(op, c.buf); err != nil {
			return err
		}
	}
	t, err := op.Apply(c.text)
	if err != nil {
		return fmt.Errorf("applying revision %d (%v): %w", rev, op, err)
	}
	c.text, c.rev = t, rev
	return nil
}

// editAlphabet is what random inserts are made of: mostly ASCII, some Latin
// letters with diacritics, CJK, an emoji outside the BMP (two UTF-16 units,
// one code point) and a combining accent (its own code point).
var editAlphabet = []string{
	"a", "b", "c", "d", "e", "f", "g", "h", "i", "k", "l", "m", "n", "o", "r", "s", "t", "u",
	"a", "e", "i", "o", "t", " ", " ", " ", ".", "\n",
	"é", "ß", "ñ", "日", "本", "😀", "\u0301",
}

// randomEdit returns a random local edit of a text of n code points: mostly
// small inserts (1-3 code points, now and then up to 12), some deletes of 1-4
// code points. Past target code points deletes become more likely than
// inserts, so that a long run keeps the document near that size.
func randomEdit(r *rand.Rand, n, target int) ot.Op {
	pDelete := 0.2
	if n >= target {
		pDelete = 0.7
	}
	var b ot.Builder
	if n > 0 && r.Float64() < pDelete {
		k := 1 + r.IntN(4)
		k = min(k, n)
		pos := r.IntN(n - k + 1)
		b.Retain(pos)
		b.Delete(k)
		return b.Build()
	}
	k := 1 + r.IntN(3)
	if r.IntN(20) == 0 {
		k = 4 + r.IntN(9)
	}
	var s strings.Builder
	for range k {
		s.WriteString(editAlphabet[r.IntN(len(editAlphabet))])
	}
	b.Retain(r.IntN(n + 1))
	b.Insert(s.String())
	return b.Build()
}
