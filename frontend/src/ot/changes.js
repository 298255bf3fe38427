// Conversion between editor change lists (UTF-16 offsets, as CodeMirror uses)
// and ops (code points, as the wire uses).
//
// A change list is an array of {from, to, insert}: from and to are UTF-16
// offsets into the document BEFORE the changes, sorted, not overlapping;
// insert replaces the text between them. That is the shape of CodeMirror's
// ChangeSet.iterChanges and of a ChangeSpec array, without importing
// CodeMirror here.

import { advance, asSource, cpLength, isWellFormed, splitsPair, toWellFormed } from './codepoints.js';
import { Builder, validate } from './operation.js';

/** @typedef {{from: number, to: number, insert: string}} Change */
/** @typedef {import('./operation.js').Op} Op */
/** @typedef {import('./codepoints.js').Source} Source */

/**
 * changesToOp turns a change list on doc into an op.
 *
 * A change that starts or ends inside a surrogate pair (possible with
 * programmatic edits, never by typing) is widened to the whole code point,
 * with the cut half put back into its insert, so the op stays whole in code
 * points and has the same effect.
 *
 * @param {string|Source} doc the document before the changes
 * @param {Change[]} changes
 * @returns {Op}
 */
export function changesToOp(doc, changes) {
  const src = asSource(doc);
  const map = positions(src);
  const b = new Builder();
  let cp = 0; // code points reached in doc
  for (const ch of widen(src, changes)) {
    const from = map.toCp(ch.from);
    const to = map.toCp(ch.to);
    b.retain(from - cp);
    b.insert(ch.insert);
    b.delete(to - from);
    cp = to;
  }
  return b.done();
}

/**
 * opToChanges turns an op on doc into a change list (UTF-16 offsets into doc).
 * @param {string|Source} doc the document the op applies to
 * @param {Op} op
 * @returns {Change[]}
 */
export function opToChanges(doc, op) {
  validate(op);
  const map = positions(asSource(doc));
  /** @type {Change[]} */
  const out = [];
  let cp = 0; // code points reached in doc
  let pos = 0; // the same place in UTF-16 units
  for (const c of op) {
    if (typeof c === 'string') {
      if (c === '') continue;
      const last = out[out.length - 1];
      if (last && last.to === pos) last.insert += c;
      else out.push({ from: pos, to: pos, insert: c });
    } else if (c > 0) {
      cp += c;
      pos = map.toUtf16(cp);
    } else if (c < 0) {
      cp -= c;
      const end = map.toUtf16(cp);
      const last = out[out.length - 1];
      if (last && last.to === pos) last.to = end;
      else out.push({ from: pos, to: end, insert: '' });
      pos = end;
    }
  }
  return out;
}

// positions returns converters between UTF-16 and code point offsets of src,
// for offsets visited in increasing order. A source that can convert by
// itself (cpOffset and utf16Offset, as the CodeMirror adapter's index does)
// is used directly; else the converters scan src forward from the last
// offset they returned, so a whole change list or op costs one pass.
function positions(src) {
  if (typeof src.cpOffset === 'function' && typeof src.utf16Offset === 'function') {
    return { toCp: (pos) => src.cpOffset(pos), toUtf16: (cp) => src.utf16Offset(cp) };
  }
  let at16 = 0;
  let atCp = 0;
  return {
    toCp(pos) {
      if (pos < at16) throw new RangeError('ot: offsets must increase');
      atCp += cpLength(src.sliceString(at16, pos));
      at16 = pos;
      return atCp;
    },
    toUtf16(cp) {
      if (cp < atCp) throw new RangeError('ot: offsets must increase');
      at16 = advance(src, at16, cp - atCp);
      atCp = cp;
      return at16;
    },
  };
}

/**
 * wellFormedChanges returns null when changes neither split a surrogate pair
 * of doc nor insert a lone surrogate; else an equivalent change list where
 * every end is on a code point boundary and every lone surrogate (inserted,
 * or left behind by a cut) is U+FFFD. The resulting document has the same
 * UTF-16 length as with the original changes, so selections stay valid. An
 * editor runs its edits through this before they reach the document, since
 * the server rejects text with lone surrogates.
 * @param {string|Source} doc the document before the changes
 * @param {Change[]} changes
 * @returns {Change[] | null}
 */
export function wellFormedChanges(doc, changes) {
  const src = asSource(doc);
  const clean = changes.every((ch) => isWellFormed(ch.insert) && !splitsPair(src, ch.from) && !splitsPair(src, ch.to));
  if (clean) return null;
  return Array.from(widen(src, changes), (ch) => ({ from: ch.from, to: ch.to, insert: toWellFormed(ch.insert) }));
}

// widen returns the changes with every end that splits a surrogate pair moved
// outward to the pair's edge, the cut half moved into the insert. Two changes
// that meet inside one pair are joined first. The effect is unchanged.
function* widen(src, changes) {
  /** @type {Change | null} */
  let cur = null;
  for (const ch of changes) {
    if (!Number.isInteger(ch.from) || !Number.isInteger(ch.to) || typeof ch.insert !== 'string') {
      throw new TypeError('ot: a change needs integer from and to and a string insert');
    }
    if (ch.from < 0 || ch.to < ch.from || ch.to > src.length) {
      throw new RangeError(`ot: change ${ch.from}..${ch.to} outside the document (length ${src.length})`);
    }
    if (cur && ch.from < cur.to) throw new RangeError('ot: changes overlap or are not sorted');
    if (cur && ch.from === cur.to && splitsPair(src, ch.from)) {
      cur = { from: cur.from, to: ch.to, insert: cur.insert + ch.insert };
      continue;
    }
    if (cur) yield widenOne(src, cur);
    cur = { from: ch.from, to: ch.to, insert: ch.insert };
  }
  if (cur) yield widenOne(src, cur);
}

function widenOne(src, ch) {
  let { from, to, insert } = ch;
  if (splitsPair(src, ch.from)) {
    from--;
    insert = src.sliceString(from, ch.from) + insert;
  }
  if (splitsPair(src, ch.to)) {
    to++;
    insert += src.sliceString(ch.to, to);
  }
  return { from, to, insert };
}
