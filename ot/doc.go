// Package ot is the text operation algebra of collabd: parse, validate,
// normalize, apply, compose, transform and invert operations on plain text,
// and Text, the immutable rope the operations apply to; DiffTexts and
// OpFromTexts turn two whole texts into a diff or an op. It is pure: no I/O,
// no goroutines, no global state; besides the standard library it uses only
// go-diff (github.com/sergi/go-diff), for DiffTexts.
//
// It is a leaf of the module: it imports no other collabd package, and
// storage (which replays ops to rebuild a text) and collab (which sequences
// them) both import it; see docs/architecture.md, "Layers".
//
// # Units
//
// Every position and length counts Unicode code points: not bytes, not
// UTF-16 code units, not grapheme clusters. "é" written as e + U+0301 is two
// code points; the emoji 👍🏽 is two; 😀 is one (two UTF-16 units in a
// browser). Texts and inserted strings are valid UTF-8.
//
// # Wire form
//
// An op is a JSON array of components applied left to right over the text:
//
//	positive integer n   retain: keep the next n code points
//	negative integer -n  delete: remove the next n code points
//	non-empty string s   insert: insert s at the current position
//
// For example, on "hello world", [6, -5, "there"] gives "hello there". The
// code points after the last component are kept: a trailing retain may be
// left out. Parse rejects anything else: a value that is not an array, the
// number 0, numbers written with a fraction or an exponent (1.0, 1e3) or
// beyond ±MaxCount (2^53-1), empty strings, other JSON values, invalid
// UTF-8, unescaped control characters, lone surrogate escapes ("\ud800";
// a surrogate pair "\ud83d\ude00" is fine), and sizes over the limits of
// ParseOptions (1 MiB and 65,536 components by default).
//
// # Normal form
//
// Parse and Builder normalize, and every function returns normalized ops:
//
//   - no empty components (no 0, no "");
//   - no two adjacent components of the same kind (they are merged);
//   - where an insert and a delete are adjacent, the insert comes first:
//     [-2, "ab"] is written ["ab", -2] (both mean the same edit);
//   - no trailing retain: [3, "x", 4] is written [3, "x"]; an op that
//     only retains is the no-op [].
//
// MarshalJSON writes the normal form compactly, strings as UTF-8 with JSON
// escapes only where needed, so Parse(Marshal(op)) == op and two ops are
// equal exactly when their wire forms are. Span is the number of code
// points an op consumes (retains plus deletes, the trailing retain not
// counted): Apply fails with ErrOutOfRange on a text shorter than that, so
// [10] (a no-op) applies to any text but [10, "x"] needs ten code points.
//
// # Ops of different spans
//
// Every op retains the rest of the text implicitly. Compose and Transform
// therefore accept ops of any spans: the shorter op is read as extended by
// a retain to the length of the other (to infinity, in effect). Applying
// the results to a text long enough for the inputs gives the promised
// texts; they never fail on ops this package built.
//
// # Tie-break rule
//
// Transform(a, b) takes two ops made on the same revision, a being the one
// the server sequenced first. When both insert at the same position, the
// text of a ends up before the text of b, in both a-then-b1 and b-then-a1.
// The rule is about the position only: a's insert stands first even when a
// or b also deletes at that position. A client follows the same rule: when
// it transforms its pending local op over an op received from the server,
// the server's op is "a" (sequenced first) and the local op is "b". Stated
// for a client that transforms component by component: while walking both
// ops, whenever the op sequenced first is at an insert, emit it (the other
// op retains over it) before looking at the other op's insert.
//
// # Transform over each op in turn
//
// Transform and Compose do not commute when an insert meets deleted text:
// transforming a stale op over two logged ops one after the other can
// order its insert differently than transforming it over their
// composition (both results converge, but they differ). The server
// transforms a stale op over every logged op after its base, one at a
// time, in revision order; a client must do the same with the ops it
// receives (transform each received op over its pending ops, and never
// over a composition of received ops). Composing a client's own pending
// edits into one buffered op is fine: the server receives that
// composition as one op. A Transformer does exactly that step-wise
// transform, for one op over a run of logged ops, in reused buffers.
//
// # Concurrency
//
// Op and Text are immutable values. Text is a persistent rope: Apply
// returns a new Text that shares every unchanged subtree with its input,
// and nothing is ever modified after construction, so any number of
// goroutines may read any number of versions of a text at the same time
// without locks, while another goroutine derives new versions. A Builder or
// a Transformer is a mutable helper owned by one goroutine at a time. All functions are
// safe for concurrent use.
//
// # Cost
//
// Apply costs O(k log n) for an op of k components on a text of n code
// points, plus the bytes the op inserts and at most a few KiB of copying
// at the edited leaves; it never copies the whole text. An op whose edits
// all fall inside one leaf (a keystroke, a small replacement) rewrites
// that leaf and copies the O(log n) nodes above it, nothing else. Compose
// and Transform are linear in the number of components and the inserted
// text, independent of the document's size. Text.String and NewText are
// O(n); Text.WriteTo and Text.Chunks stream the text without copying it.
package ot
