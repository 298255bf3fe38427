// Text operations in the wire format of the collabd protocol.
//
// An op is a JSON array of components, read left to right over the document:
//   a positive integer n   retains (skips) n code points,
//   a negative integer -n  deletes n code points,
//   a string s             inserts s.
// Lengths count Unicode code points. Whatever is left of the document after
// the last component is retained (a trailing retain may be left out).
//
// Normalized form (what normalize returns and every function here produces):
// no empty components (0 or ""), no two adjacent components of the same kind,
// an insert before a delete when the two are adjacent, no trailing retain.
// The empty array is the identity.
//
// All functions are pure: they never modify their arguments.

import { advance, asSource, cpLength } from './codepoints.js';

/** @typedef {Array<number|string>} Op */

export function isRetain(c) {
  return typeof c === 'number' && c > 0;
}

export function isDelete(c) {
  return typeof c === 'number' && c < 0;
}

export function isInsert(c) {
  return typeof c === 'string';
}

/**
 * validate throws a TypeError unless op is an array of safe integers and
 * strings. Zero and "" are accepted (normalize drops them).
 * @param {unknown} op
 * @returns {Op}
 */
export function validate(op) {
  if (!Array.isArray(op)) throw new TypeError('ot: op must be an array');
  for (let i = 0; i < op.length; i++) {
    const c = op[i];
    if (typeof c === 'string') continue;
    if (typeof c === 'number' && Number.isSafeInteger(c)) continue;
    throw new TypeError(`ot: component ${i} must be an integer or a string, got ${JSON.stringify(c)}`);
  }
  return /** @type {Op} */ (op);
}

/**
 * Builder appends components and keeps the result normalized.
 */
export class Builder {
  constructor() {
    /** @type {Op} */
    this.ops = [];
  }

  /** @param {number} n code points to retain */
  retain(n) {
    if (n === 0) return this;
    if (!(n > 0)) throw new RangeError(`ot: retain of ${n}`);
    const last = this.ops.length - 1;
    if (last >= 0 && isRetain(this.ops[last])) this.ops[last] += n;
    else this.ops.push(n);
    return this;
  }

  /** @param {number} n code points to delete (positive) */
  delete(n) {
    if (n === 0) return this;
    if (!(n > 0)) throw new RangeError(`ot: delete of ${n}`);
    const last = this.ops.length - 1;
    if (last >= 0 && isDelete(this.ops[last])) this.ops[last] -= n;
    else this.ops.push(-n);
    return this;
  }

  /** @param {string} s text to insert */
  insert(s) {
    if (s === '') return this;
    const ops = this.ops;
    const last = ops.length - 1;
    if (last >= 0 && isInsert(ops[last])) {
      ops[last] += s;
    } else if (last >= 0 && isDelete(ops[last])) {
      // Keep inserts before deletes: both touch the same place, so the
      // order does not change the result, and one order keeps ops comparable.
      if (last >= 1 && isInsert(ops[last - 1])) ops[last - 1] += s;
      else ops.splice(last, 0, s);
    } else {
      ops.push(s);
    }
    return this;
  }

  /** @param {number|string} c one wire component */
  push(c) {
    if (typeof c === 'string') return this.insert(c);
    if (c > 0) return this.retain(c);
    return this.delete(-c);
  }

  /** @returns {Op} the normalized op (trailing retain dropped) */
  done() {
    const ops = this.ops;
    if (ops.length > 0 && isRetain(ops[ops.length - 1])) ops.pop();
    return ops;
  }
}

/**
 * normalize returns the normalized form of op (a new array).
 * @param {Op} op
 * @returns {Op}
 */
export function normalize(op) {
  validate(op);
  const b = new Builder();
  for (const c of op) b.push(c);
  return b.done();
}

/**
 * isNormalized reports whether op is already in normalized form.
 * @param {Op} op
 */
export function isNormalized(op) {
  if (!Array.isArray(op)) return false;
  const n = normalize(op);
  return n.length === op.length && n.every((c, i) => c === op[i]);
}

/**
 * isNoop reports whether op leaves every document unchanged.
 * @param {Op} op
 */
export function isNoop(op) {
  return op.every(isRetain);
}

/**
 * baseLength returns the number of code points op reads (retains and deletes);
 * the document it applies to must be at least this long.
 * @param {Op} op
 */
export function baseLength(op) {
  let n = 0;
  for (const c of op) if (typeof c === 'number') n += Math.abs(c);
  return n;
}

/**
 * lengthDelta returns how many code points op adds to (or, negative, removes
 * from) a document.
 * @param {Op} op
 */
export function lengthDelta(op) {
  let n = 0;
  for (const c of op) {
    if (typeof c === 'string') n += cpLength(c);
    else if (c < 0) n += c;
  }
  return n;
}

/**
 * apply returns text with op applied. It throws a RangeError when op reads
 * past the end of text and a TypeError when op is malformed.
 * @param {string} text
 * @param {Op} op
 * @returns {string}
 */
export function apply(text, op) {
  validate(op);
  const src = asSource(text);
  const parts = [];
  let pos = 0; // UTF-16 offset in text
  for (const c of op) {
    if (typeof c === 'string') {
      parts.push(c);
    } else if (c > 0) {
      const end = advance(src, pos, c);
      parts.push(text.slice(pos, end));
      pos = end;
    } else if (c < 0) {
      pos = advance(src, pos, -c);
    }
  }
  parts.push(text.slice(pos));
  return parts.join('');
}

// Iter walks the components of an op, handing out pieces of a given length.
// Past the last component it behaves as an endless retain (the implicit
// trailing retain), reported by done() and a length of Infinity.
class Iter {
  /** @param {Op} op */
  constructor(op) {
    this.op = op;
    this.i = 0;
    this.off = 0; // consumed part of the current component: code points for numbers, UTF-16 units for strings
    this.skipEmpty();
  }

  skipEmpty() {
    while (this.i < this.op.length && (this.op[this.i] === 0 || this.op[this.i] === '')) this.i++;
  }

  done() {
    return this.i >= this.op.length;
  }

  isInsert() {
    return !this.done() && typeof this.op[this.i] === 'string';
  }

  isDelete() {
    return !this.done() && isDelete(this.op[this.i]);
  }

  /** isRetain is true for a retain and for the implicit trailing retain. */
  isRetain() {
    return this.done() || isRetain(this.op[this.i]);
  }

  /** length left in the current component, in code points. */
  length() {
    if (this.done()) return Infinity;
    const c = this.op[this.i];
    if (typeof c === 'string') return cpLength(this.off === 0 ? c : c.slice(this.off));
    return Math.abs(c) - this.off;
  }

  /**
   * take consumes up to n code points of the current component and returns
   * what was consumed: the inserted text for an insert, else the count.
   * @param {number} n
   * @returns {string|number}
   */
  take(n) {
    if (this.done()) return n;
    const c = this.op[this.i];
    let out;
    if (typeof c === 'string') {
      const end = n === Infinity ? c.length : advanceIn(c, this.off, n);
      out = c.slice(this.off, end);
      this.off = end;
      if (this.off >= c.length) this.next();
    } else {
      const left = Math.abs(c) - this.off;
      const k = Math.min(n, left);
      this.off += k;
      out = k;
      if (k === left) this.next();
    }
    return out;
  }

  /** takeAll consumes the rest of the current component. */
  takeAll() {
    return this.take(Infinity);
  }

  next() {
    this.i++;
    this.off = 0;
    this.skipEmpty();
  }
}

// advanceIn moves n code points forward in s from UTF-16 offset off, stopping
// at the end of s.
function advanceIn(s, off, n) {
  let i = off;
  while (n > 0 && i < s.length) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    i++;
    n--;
  }
  return i;
}

/**
 * compose returns one op with the effect of a followed by b.
 * @param {Op} a
 * @param {Op} b applies to the result of a
 * @returns {Op}
 */
export function compose(a, b) {
  validate(a);
  validate(b);
  const ia = new Iter(a);
  const ib = new Iter(b);
  const out = new Builder();
  while (!(ia.done() && ib.done())) {
    if (ib.isInsert()) {
      out.insert(/** @type {string} */ (ib.takeAll()));
      continue;
    }
    if (ia.isDelete()) {
      out.delete(/** @type {number} */ (ia.takeAll()));
      continue;
    }
    // a: retain or insert; b: retain or delete; at most one of them is done,
    // so n is finite.
    const n = Math.min(ia.length(), ib.length());
    const bDeletes = ib.isDelete();
    if (ia.isRetain()) {
      if (bDeletes) out.delete(n);
      else out.retain(n);
      ia.take(n);
    } else {
      // a inserts; b either keeps the text (retain) or removes it again.
      const s = /** @type {string} */ (ia.take(n));
      if (!bDeletes) out.insert(s);
    }
    ib.take(n);
  }
  return out.done();
}

/**
 * transform rebases two concurrent ops made on the same document.
 * a was sequenced first by the server: where both insert at the same
 * position, a's insert ends up first. It returns [a2, b2] such that
 * apply(apply(doc, a), b2) === apply(apply(doc, b), a2).
 * Both inputs are normalized first (an insert before a delete at the same
 * place), so the result does not depend on how the inputs were written.
 * @param {Op} a the op sequenced first
 * @param {Op} b the op sequenced second
 * @returns {[Op, Op]} [a rebased onto b, b rebased onto a]
 */
export function transform(a, b) {
  const ia = new Iter(normalize(a));
  const ib = new Iter(normalize(b));
  const a2 = new Builder();
  const b2 = new Builder();
  while (!(ia.done() && ib.done())) {
    if (ia.isInsert()) {
      const s = /** @type {string} */ (ia.takeAll());
      a2.insert(s);
      b2.retain(cpLength(s));
      continue;
    }
    if (ib.isInsert()) {
      const s = /** @type {string} */ (ib.takeAll());
      a2.retain(cpLength(s));
      b2.insert(s);
      continue;
    }
    const n = Math.min(ia.length(), ib.length());
    const aDel = ia.isDelete();
    const bDel = ib.isDelete();
    if (aDel && !bDel) a2.delete(n);
    else if (bDel && !aDel) b2.delete(n);
    else if (!aDel && !bDel) {
      a2.retain(n);
      b2.retain(n);
    }
    // both delete the same text: neither rebased op deletes it again.
    ia.take(n);
    ib.take(n);
  }
  return [a2.done(), b2.done()];
}

/**
 * invert returns the op that undoes op; text is the document op applied to.
 * apply(apply(text, op), invert(op, text)) === text.
 * @param {Op} op
 * @param {string} text
 * @returns {Op}
 */
export function invert(op, text) {
  validate(op);
  const src = asSource(text);
  const out = new Builder();
  let pos = 0;
  for (const c of op) {
    if (typeof c === 'string') {
      out.delete(cpLength(c));
    } else if (c > 0) {
      pos = advance(src, pos, c);
      out.retain(c);
    } else if (c < 0) {
      const end = advance(src, pos, -c);
      out.insert(text.slice(pos, end));
      pos = end;
    }
  }
  return out.done();
}

/**
 * transformIndex maps a code point position (a cursor or selection end) in
 * the document before op to the matching position after it, as the Go
 * package ot does: a position inside deleted text moves to the start
 * of the deletion; an insert exactly at the position pushes it right, unless
 * stickLeft is set, in which case it stays before the inserted text.
 * @param {number} index
 * @param {Op} op
 * @param {boolean} [stickLeft]
 * @returns {number}
 */
export function transformIndex(index, op, stickLeft = false) {
  validate(op);
  let pos = 0; // position in the old document
  let moved = index;
  for (const c of op) {
    if (pos > index) break;
    if (typeof c === 'string') {
      if (pos < index || !stickLeft) moved += cpLength(c);
    } else if (c > 0) {
      pos += c;
    } else if (c < 0) {
      moved -= Math.min(-c, index - pos);
      pos += -c;
    }
  }
  return moved;
}
