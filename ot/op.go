package ot

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// kind is the kind of an op component.
type kind uint8

const (
	retain kind = iota + 1
	del
	insert
)

// comp is one component of an op. n counts code points for every kind (for
// an insert, the code points of s).
type comp struct {
	k kind
	n int
	s string // insert only
}

// Op is a normalized text operation: a sequence of retain(n > 0),
// delete(n > 0) and insert(non-empty string) components. See the package
// documentation for the normal form. An Op is an immutable value: copy it,
// share it between goroutines, compare it with Equal. The zero Op is the
// no-op.
type Op struct {
	c        []comp
	span     int // retained + deleted code points
	ins, del int // inserted and deleted code points
}

// Span returns the number of code points the op consumes (retains plus
// deletes): the minimum length of a text it applies to. Because a trailing
// retain is dropped by normalization, it is the offset just past the op's
// last insert or delete.
func (o Op) Span() int { return o.span }

// Stats returns the number of code points the op inserts and deletes.
func (o Op) Stats() (ins, del int) { return o.ins, o.del }

// IsNoop reports whether applying the op leaves every text unchanged.
func (o Op) IsNoop() bool { return len(o.c) == 0 }

// NumComponents returns the number of components of the normalized op.
func (o Op) NumComponents() int { return len(o.c) }

// Equal reports whether o and p are the same operation. Since both are
// normalized, equal operations have equal components.
func (o Op) Equal(p Op) bool {
	if len(o.c) != len(p.c) {
		return false
	}
	for i := range o.c {
		if o.c[i] != p.c[i] {
			return false
		}
	}
	return true
}

// TargetLen returns the length of the text the op produces from a text of
// baseLen code points (baseLen >= Span()).
func (o Op) TargetLen(baseLen int) int { return baseLen - o.del + o.ins }

// Apply returns the text o produces from t. The code points of t past
// o.Span() are retained. It fails with an error matching ErrOutOfRange (and
// ErrInvalid) if o.Span() > t.Len(); t itself is never changed.
//
// Apply costs O(k log n) for an op of k components on a text of n code
// points, plus the bytes it inserts; unchanged parts of t are shared.
func (o Op) Apply(t Text) (Text, error) {
	if o.span > t.Len() {
		return t, outOfRange(fmt.Sprintf("op spans %d code points, text has %d", o.span, t.Len()))
	}
	if u, ok := o.applyInLeaf(t); ok {
		return u, nil
	}
	rest := t.root
	var out, piece *node
	for _, c := range o.c {
		switch c.k {
		case retain:
			piece, rest = split(rest, c.n)
			out = join(out, piece)
		case del:
			_, rest = split(rest, c.n)
		case insert:
			out = join(out, build(c.s))
		}
	}
	return Text{root: join(out, rest)}, nil
}

// ApplyString is Apply on a plain string, for tests and small texts.
func (o Op) ApplyString(s string) (string, error) {
	t, err := o.Apply(NewText(s))
	if err != nil {
		return "", err
	}
	return t.String(), nil
}

// Invert returns the op that undoes o: applied to the text o produced from
// before, it gives before back. before must be the text o was applied to
// (at least o.Span() code points, else an ErrOutOfRange error).
func (o Op) Invert(before Text) (Op, error) {
	if o.span > before.Len() {
		return Op{}, outOfRange(fmt.Sprintf("op spans %d code points, text has %d", o.span, before.Len()))
	}
	var b Builder
	pos := 0
	for _, c := range o.c {
		switch c.k {
		case retain:
			b.Retain(c.n)
			pos += c.n
		case del:
			b.insert(before.Slice(pos, pos+c.n), c.n)
			pos += c.n
		case insert:
			b.Delete(c.n)
		}
	}
	return b.Build(), nil
}

// MarshalJSON returns the wire form of the normalized op: a compact JSON
// array where a positive integer retains, a negative integer deletes and a
// string inserts; the trailing retain is left out. The no-op is [].
func (o Op) MarshalJSON() ([]byte, error) {
	return o.AppendJSON(make([]byte, 0, o.jsonSizeHint())), nil
}

func (o Op) jsonSizeHint() int {
	n := 2
	for _, c := range o.c {
		n += len(c.s) + 12
	}
	return n
}

// AppendJSON appends the wire form of o (see MarshalJSON) to dst.
func (o Op) AppendJSON(dst []byte) []byte {
	dst = append(dst, '[')
	for i, c := range o.c {
		if i > 0 {
			dst = append(dst, ',')
		}
		switch c.k {
		case retain:
			dst = strconv.AppendInt(dst, int64(c.n), 10)
		case del:
			dst = strconv.AppendInt(dst, -int64(c.n), 10)
		case insert:
			dst = appendJSONString(dst, c.s)
		}
	}
	return append(dst, ']')
}

// String returns the wire form of o, for logs and test failures.
func (o Op) String() string { return string(o.AppendJSON(nil)) }

// UnmarshalJSON parses the wire form with the default limits (see Parse),
// so an Op can be a field of a JSON message.
func (o *Op) UnmarshalJSON(data []byte) error {
	p, err := Parse(data)
	if err != nil {
		return err
	}
	*o = p
	return nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s (valid UTF-8) as a JSON string. Non-ASCII code
// points are written as UTF-8 except U+2028 and U+2029, which are escaped
// like encoding/json does so the output is also valid JavaScript.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Builder builds a normalized Op from components given in document order.
// Zero counts and empty strings are ignored, adjacent components of one kind
// are merged, an insert next to a delete is placed before it, and a trailing
// retain is dropped. The zero Builder is ready to use; a Builder must not be
// used by two goroutines at once.
type Builder struct {
	c []comp
	// open is 1 + the index of the insert component that later inserts
	// still merge into (the last component, or the one before a trailing
	// delete), or 0 for none. Once a second insert merges into it, its
	// text accumulates in buf (merged is set) and flush copies it back
	// into c, so that many small inserts cost linear time; an insert that
	// nothing merges into keeps its string without a copy.
	open   int
	merged bool
	buf    []byte
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{} }

func (b *Builder) flush() {
	if b.open > 0 && b.merged {
		b.c[b.open-1].s = string(b.buf)
		b.buf = b.buf[:0]
	}
	b.open, b.merged = 0, false
}

// Retain appends a retain of n code points. It panics if n < 0.
func (b *Builder) Retain(n int) {
	if n < 0 {
		panic("ot: Builder.Retain with negative count " + strconv.Itoa(n))
	}
	if n == 0 {
		return
	}
	b.flush()
	if l := len(b.c) - 1; l >= 0 && b.c[l].k == retain {
		b.c[l].n += n
		return
	}
	b.c = append(b.c, comp{k: retain, n: n})
}

// Delete appends a delete of n code points. It panics if n < 0.
func (b *Builder) Delete(n int) {
	if n < 0 {
		panic("ot: Builder.Delete with negative count " + strconv.Itoa(n))
	}
	if n == 0 {
		return
	}
	if l := len(b.c) - 1; l >= 0 && b.c[l].k == del {
		b.c[l].n += n
		return
	}
	b.c = append(b.c, comp{k: del, n: n})
}

// Insert appends an insert of s. Invalid UTF-8 in s is replaced by U+FFFD.
func (b *Builder) Insert(s string) {
	if s == "" {
		return
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	b.insert(s, countRunes(s))
}

// insert appends an insert of s, valid UTF-8 of n > 0 code points.
func (b *Builder) insert(s string, n int) {
	if b.open > 0 { // the open insert is last, or last but a delete
		c := &b.c[b.open-1]
		if !b.merged {
			b.buf = append(b.buf[:0], c.s...)
			b.merged = true
		}
		b.buf = append(b.buf, s...)
		c.n += n
		return
	}
	if l := len(b.c) - 1; l >= 0 && b.c[l].k == del {
		b.c = append(b.c, b.c[l])
		b.c[l] = comp{k: insert, n: n, s: s}
		b.open = l + 1
		return
	}
	b.c = append(b.c, comp{k: insert, n: n, s: s})
	b.open = len(b.c)
}

// Build returns the normalized op and resets the Builder.
func (b *Builder) Build() Op {
	b.flush()
	c := b.c
	if l := len(c) - 1; l >= 0 && c[l].k == retain {
		c = c[:l]
	}
	o := opOf(c)
	if len(c) == 0 {
		o.c = nil
	}
	b.c, b.buf, b.open, b.merged = nil, nil, 0, false
	return o
}

// opOf makes the Op of the normalized components c, with its counts.
func opOf(c []comp) Op {
	o := Op{c: c}
	for _, x := range c {
		switch x.k {
		case retain:
			o.span += x.n
		case del:
			o.span += x.n
			o.del += x.n
		case insert:
			o.ins += x.n
		}
	}
	return o
}
