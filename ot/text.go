package ot

import (
	"fmt"
	"io"
	"iter"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// Leaf sizes of the rope, in bytes of UTF-8. A leaf never exceeds maxLeaf
// bytes except when it holds a single code point (never, since a code point
// has at most 4 bytes). Two neighbouring leaves that fit in maxLeaf together
// are merged when an edit joins them, so leaves stay reasonably full.
const maxLeaf = 1024

// fillLeaf is the size of the leaves NewText and large inserts are cut
// into: an eighth short of maxLeaf, so typing into a fresh leaf rewrites it
// in place (Op.applyInLeaf) instead of splitting it.
const fillLeaf = maxLeaf - maxLeaf/8

// Text is an immutable (persistent) document text indexed by Unicode code
// points.
//
// It is a rope: an AVL-balanced binary tree whose leaves hold chunks of up to
// 1 KiB of UTF-8, with byte and code point counts cached in every node. An
// edit copies only the O(log n) nodes on the paths it touches and at most a
// leaf or two of bytes; every other node is shared between the old and the
// new version. Nodes are never modified after construction, so a Text value,
// and every Text derived from it, may be read from any number of goroutines
// at the same time without locks.
//
// The zero Text is the empty text.
type Text struct {
	root *node
}

// node is a rope node. A leaf has left == right == nil and holds s; an inner
// node has both children non-nil and s == "". Nodes are immutable.
type node struct {
	left, right *node
	s           string
	bytes       int // UTF-8 bytes below this node
	runes       int // code points below this node
	height      int // 0 for a leaf
}

func (n *node) leaf() bool { return n.left == nil }

func height(n *node) int {
	if n == nil {
		return -1
	}
	return n.height
}

// newLeaf makes a leaf of s, which must be non-empty valid UTF-8 of at most
// maxLeaf bytes.
func newLeaf(s string) *node {
	return &node{s: s, bytes: len(s), runes: countRunes(s)}
}

// countRunes counts the code points of s, which must be valid UTF-8: the
// bytes that are not continuation bytes, eight at a time.
func countRunes(s string) int {
	n := len(s)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		n -= bits.OnesCount64(continuations(s[i : i+8]))
	}
	for ; i < len(s); i++ {
		if s[i]&0xc0 == 0x80 {
			n--
		}
	}
	return n
}

// mk makes an inner node of two non-nil children without rebalancing.
func mk(l, r *node) *node {
	return &node{
		left: l, right: r,
		bytes:  l.bytes + r.bytes,
		runes:  l.runes + r.runes,
		height: max(l.height, r.height) + 1,
	}
}

func rotateLeft(n *node) *node {
	r := n.right
	return mk(mk(n.left, r.left), r.right)
}

func rotateRight(n *node) *node {
	l := n.left
	return mk(l.left, mk(l.right, n.right))
}

// balance makes an inner node of l and r whose heights differ by at most 2
// and restores the AVL invariant with at most two rotations.
func balance(l, r *node) *node {
	switch d := height(l) - height(r); {
	case d > 1:
		if height(l.left) < height(l.right) {
			l = rotateLeft(l)
		}
		return rotateRight(mk(l, r))
	case d < -1:
		if height(r.right) < height(r.left) {
			r = rotateRight(r)
		}
		return rotateLeft(mk(l, r))
	}
	return mk(l, r)
}

// concat joins two AVL ropes in O(|height difference| + 1) without merging
// leaves.
func concat(l, r *node) *node {
	switch {
	case l == nil:
		return r
	case r == nil:
		return l
	case l.height > r.height+1:
		return balance(l.left, concat(l.right, r))
	case r.height > l.height+1:
		return balance(concat(l, r.left), r.right)
	}
	return mk(l, r)
}

func firstLeaf(n *node) *node {
	for !n.leaf() {
		n = n.left
	}
	return n
}

func lastLeaf(n *node) *node {
	for !n.leaf() {
		n = n.right
	}
	return n
}

// dropFirst returns n without its first leaf.
func dropFirst(n *node) *node {
	if n.leaf() {
		return nil
	}
	if n.left.leaf() {
		return n.right
	}
	return balance(dropFirst(n.left), n.right)
}

// dropLast returns n without its last leaf.
func dropLast(n *node) *node {
	if n.leaf() {
		return nil
	}
	if n.right.leaf() {
		return n.left
	}
	return balance(n.left, dropLast(n.right))
}

// join concatenates two ropes and merges the two leaves at the seam when
// they fit in one leaf, so that repeated small edits do not fragment the
// rope into tiny leaves.
func join(l, r *node) *node {
	if l == nil {
		return r
	}
	if r == nil {
		return l
	}
	a, b := lastLeaf(l), firstLeaf(r)
	if a.bytes+b.bytes > maxLeaf {
		return concat(l, r)
	}
	m := &node{s: a.s + b.s, bytes: a.bytes + b.bytes, runes: a.runes + b.runes}
	return concat(concat(dropLast(l), m), dropFirst(r))
}

// byteOffset returns the byte offset of code point i in s (0 <= i <= runes,
// the code point count of s).
func byteOffset(s string, runes, i int) int {
	if len(s) == runes { // ASCII only
		return i
	}
	return advance(s, i)
}

// split cuts n before code point i (0 <= i <= n.runes).
func split(n *node, i int) (l, r *node) {
	switch {
	case n == nil:
		return nil, nil
	case i <= 0:
		return nil, n
	case i >= n.runes:
		return n, nil
	case n.leaf():
		b := byteOffset(n.s, n.runes, i)
		return &node{s: n.s[:b], bytes: b, runes: i},
			&node{s: n.s[b:], bytes: n.bytes - b, runes: n.runes - i}
	case i < n.left.runes:
		ll, lr := split(n.left, i)
		return ll, concat(lr, n.right)
	case i == n.left.runes:
		return n.left, n.right
	default:
		rl, rr := split(n.right, i-n.left.runes)
		return concat(n.left, rl), rr
	}
}

// build makes a balanced rope of s (valid UTF-8). A string longer than a
// leaf is cut into leaves of copied bytes so that no leaf pins a large
// allocation once the rest of it has been edited away.
func build(s string) *node {
	if s == "" {
		return nil
	}
	if len(s) <= maxLeaf {
		return newLeaf(s)
	}
	leaves := make([]*node, 0, len(s)/fillLeaf+1)
	for len(s) > 0 {
		n := min(fillLeaf, len(s))
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n-- // never cut a code point
		}
		leaves = append(leaves, newLeaf(strings.Clone(s[:n])))
		s = s[n:]
	}
	return buildLeaves(leaves)
}

func buildLeaves(leaves []*node) *node {
	if len(leaves) == 1 {
		return leaves[0]
	}
	m := len(leaves) / 2
	return mk(buildLeaves(leaves[:m]), buildLeaves(leaves[m:]))
}

// NewText returns a Text holding s. s should be valid UTF-8; invalid bytes
// are replaced by U+FFFD so that code point counts stay well defined.
func NewText(s string) Text {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return Text{root: build(s)}
}

// Len returns the length of t in code points.
func (t Text) Len() int {
	if t.root == nil {
		return 0
	}
	return t.root.runes
}

// ByteLen returns the length of t in bytes of UTF-8.
func (t Text) ByteLen() int {
	if t.root == nil {
		return 0
	}
	return t.root.bytes
}

// String returns the whole text. It copies the text: O(n).
func (t Text) String() string {
	if t.root == nil {
		return ""
	}
	if t.root.leaf() {
		return t.root.s
	}
	var b strings.Builder
	b.Grow(t.root.bytes)
	for s := range t.Chunks() {
		b.WriteString(s)
	}
	return b.String()
}

// Chunks yields the text as consecutive non-empty UTF-8 pieces (the rope's
// leaves), without copying. Concatenated they equal t.String().
func (t Text) Chunks() iter.Seq[string] {
	return func(yield func(string) bool) {
		if t.root != nil {
			eachLeaf(t.root, yield)
		}
	}
}

func eachLeaf(n *node, yield func(string) bool) bool {
	if n.leaf() {
		return yield(n.s)
	}
	return eachLeaf(n.left, yield) && eachLeaf(n.right, yield)
}

// Slice returns the code points [from, to) of t as a string, in
// O(log n + to - from). Like a slice expression it panics unless
// 0 <= from <= to <= t.Len().
func (t Text) Slice(from, to int) string {
	if from < 0 || to < from || to > t.Len() {
		panic(fmt.Sprintf("ot: Text.Slice(%d, %d) out of range [0, %d]", from, to, t.Len()))
	}
	if from == to {
		return ""
	}
	var b strings.Builder
	sliceInto(&b, t.root, from, to)
	return b.String()
}

// sliceInto writes the code points [from, to) of n to b; 0 <= from < to <= n.runes.
func sliceInto(b *strings.Builder, n *node, from, to int) {
	if n.leaf() {
		if n.bytes == n.runes { // ASCII only
			b.WriteString(n.s[from:to])
			return
		}
		i := byteOffset(n.s, n.runes, from)
		j := i + advance(n.s[i:], to-from)
		b.WriteString(n.s[i:j])
		return
	}
	lr := n.left.runes
	if from < lr {
		sliceInto(b, n.left, from, min(to, lr))
	}
	if to > lr {
		sliceInto(b, n.right, max(from-lr, 0), to-lr)
	}
}

// WriteTo writes the text to w chunk by chunk, without building the whole
// string. It implements io.WriterTo.
func (t Text) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for s := range t.Chunks() {
		n, err := io.WriteString(w, s)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Equal reports whether t and u hold the same text. It compares chunk by
// chunk without building either string.
func (t Text) Equal(u Text) bool {
	if t.root == u.root {
		return true
	}
	if t.ByteLen() != u.ByteLen() || t.Len() != u.Len() {
		return false
	}
	next, stop := iter.Pull(u.Chunks())
	defer stop()
	var rest string // the part of u's current chunk not compared yet
	for a := range t.Chunks() {
		for a != "" {
			if rest == "" {
				var ok bool
				if rest, ok = next(); !ok {
					return false
				}
			}
			n := min(len(a), len(rest))
			if a[:n] != rest[:n] {
				return false
			}
			a, rest = a[n:], rest[n:]
		}
	}
	return true
}

// leafFastPath enables Op.applyInLeaf; tests turn it off to exercise the
// general path on the same inputs.
var leafFastPath = true

// advance returns the byte length of the first n code points of s (valid
// UTF-8 with at least n code points): the offset of code point n. It skips
// eight bytes at a time while they hold no more than the code point starts
// still to pass, then walks byte by byte.
func advance(s string, n int) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		starts := 8 - bits.OnesCount64(continuations(s[i:i+8]))
		if starts > n {
			break
		}
		n -= starts
	}
	for ; i < len(s); i++ {
		if s[i]&0xc0 != 0x80 {
			if n == 0 {
				return i
			}
			n--
		}
	}
	return len(s)
}

// continuations returns a mask with bit 7 of each byte of the 8-byte s set
// where that byte is a UTF-8 continuation byte (10xxxxxx).
func continuations(s string) uint64 {
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	return x &^ (x << 1) & 0x8080808080808080
}

// applyInLeaf applies o by rewriting a single leaf when everything o
// changes lies inside that leaf and the result still fits in maxLeaf bytes
// (the common case: a keystroke). It copies the O(log n) nodes on the path
// from the root to that leaf and the leaf's bytes; heights do not change,
// so the tree stays balanced. It reports false when the general path is
// needed.
func (o Op) applyInLeaf(t Text) (Text, bool) {
	if !leafFastPath || t.root == nil || len(o.c) == 0 || t.root.height >= 64 {
		return t, false
	}
	cs := o.c
	from := 0 // first code point the op touches
	if cs[0].k == retain {
		from = cs[0].n
		cs = cs[1:]
	}
	to := o.span // end of the window the op touches
	type step struct {
		n    *node
		left bool // the path goes on to n.left
	}
	var path [64]step
	depth := 0
	n, off := t.root, 0
	for !n.leaf() {
		mid := off + n.left.runes
		switch {
		case to <= mid:
			path[depth] = step{n, true}
			n = n.left
		case from >= mid:
			path[depth] = step{n, false}
			n, off = n.right, mid
		default:
			return t, false // the window crosses leaves
		}
		depth++
	}
	// Rewrite the leaf: keep its bytes before the window, apply the
	// components, keep its bytes after the window.
	pos := byteOffset(n.s, n.runes, from-off)
	var buf strings.Builder
	buf.Grow(min(len(n.s)+4*o.ins, maxLeaf))
	buf.WriteString(n.s[:pos])
	for _, c := range cs {
		switch c.k {
		case retain:
			k := advance(n.s[pos:], c.n)
			buf.WriteString(n.s[pos : pos+k])
			pos += k
		case del:
			pos += advance(n.s[pos:], c.n)
		case insert:
			buf.WriteString(c.s)
		}
		if buf.Len() > maxLeaf {
			return t, false
		}
	}
	if size := buf.Len() + len(n.s) - pos; size > maxLeaf || size == 0 {
		return t, false
	}
	buf.WriteString(n.s[pos:])
	m := &node{s: buf.String(), bytes: buf.Len(), runes: n.runes - o.del + o.ins}
	for i := depth - 1; i >= 0; i-- {
		if p := path[i]; p.left {
			m = mk(m, p.n.right)
		} else {
			m = mk(p.n.left, m)
		}
	}
	return Text{root: m}, true
}
