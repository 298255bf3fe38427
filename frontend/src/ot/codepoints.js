// Code point <-> UTF-16 helpers.
//
// The wire contract counts positions and lengths in Unicode code points;
// JavaScript strings and CodeMirror count UTF-16 code units. A surrogate pair
// is one code point; a lone surrogate also counts as one code point (the server
// stores valid UTF-8 and turns it into U+FFFD, which is one code point too, so
// lengths agree on both sides).
//
// Functions that read a document accept either a string or a "source": any
// object with a `length` (in UTF-16 units) and `sliceString(from, to)`, which
// is what a CodeMirror `Text` offers. Long documents are read in slices, never
// turned into one string.

/**
 * @typedef {object} Source
 * @property {number} length in UTF-16 units
 * @property {(from: number, to: number) => string} sliceString
 * @property {(pos: number) => number} [cpOffset] optional fast conversion of a UTF-16 offset (on a code point boundary) to code points
 * @property {(cp: number) => number} [utf16Offset] optional fast conversion back; throws RangeError past the end
 */

export function isHighSurrogate(c) {
  return c >= 0xd800 && c <= 0xdbff;
}

export function isLowSurrogate(c) {
  return c >= 0xdc00 && c <= 0xdfff;
}

/**
 * cpLength returns the number of code points in s.
 * @param {string} s
 * @returns {number}
 */
export function cpLength(s) {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if (isHighSurrogate(s.charCodeAt(i)) && isLowSurrogate(s.charCodeAt(i + 1))) {
      n--;
      i++;
    }
  }
  return n;
}

/**
 * isWellFormed reports whether s has no lone surrogate. The server accepts
 * only well-formed text: an insert with a lone surrogate is rejected.
 * @param {string} s
 */
export function isWellFormed(s) {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isHighSurrogate(c) && i + 1 < s.length && isLowSurrogate(s.charCodeAt(i + 1))) i++;
    else if (isHighSurrogate(c) || isLowSurrogate(c)) return false;
  }
  return true;
}

/**
 * toWellFormed returns s with every lone surrogate replaced by U+FFFD (one
 * UTF-16 unit for one, so lengths and offsets stay the same).
 * @param {string} s
 */
export function toWellFormed(s) {
  if (isWellFormed(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isHighSurrogate(c) && i + 1 < s.length && isLowSurrogate(s.charCodeAt(i + 1))) {
      out += s[i] + s[i + 1];
      i++;
    } else if (isHighSurrogate(c) || isLowSurrogate(c)) {
      out += '\ufffd';
    } else {
      out += s[i];
    }
  }
  return out;
}

/**
 * asSource wraps a string as a Source; a Source is returned unchanged.
 * @param {string|Source} doc
 * @returns {Source}
 */
export function asSource(doc) {
  if (typeof doc === 'string') {
    return { length: doc.length, sliceString: (from, to) => doc.slice(from, to) };
  }
  if (doc && typeof doc.length === 'number' && typeof doc.sliceString === 'function') {
    return doc;
  }
  throw new TypeError('ot: document must be a string or have length and sliceString');
}

/**
 * splitsPair reports whether UTF-16 offset pos falls between the two halves of
 * a surrogate pair in doc.
 * @param {Source} src
 * @param {number} pos
 */
export function splitsPair(src, pos) {
  if (pos <= 0 || pos >= src.length) return false;
  const s = src.sliceString(pos - 1, pos + 1);
  return isHighSurrogate(s.charCodeAt(0)) && isLowSurrogate(s.charCodeAt(1));
}

/**
 * advance returns the UTF-16 offset reached by moving n code points forward
 * from the UTF-16 offset pos. It throws a RangeError when the document ends
 * first. pos must not split a surrogate pair.
 * @param {Source} src
 * @param {number} pos
 * @param {number} n
 * @returns {number}
 */
export function advance(src, pos, n) {
  let remaining = n;
  while (remaining > 0) {
    if (pos >= src.length) {
      throw new RangeError(`ot: position is ${remaining} code points past the end of the document`);
    }
    // n code points span at least n UTF-16 units, so this slice never
    // overshoots; each round at least halves what is left.
    let end = Math.min(pos + remaining, src.length);
    if (splitsPair(src, end)) end++;
    const s = src.sliceString(pos, end);
    remaining -= cpLength(s);
    pos = end;
  }
  return pos;
}

/**
 * utf16ToCp converts a UTF-16 offset into a code point offset.
 * An offset inside a surrogate pair counts the pair's high half as one code point.
 * @param {string|Source} doc
 * @param {number} pos
 * @returns {number}
 */
export function utf16ToCp(doc, pos) {
  const src = asSource(doc);
  if (!Number.isInteger(pos) || pos < 0 || pos > src.length) {
    throw new RangeError(`ot: UTF-16 offset ${pos} outside 0..${src.length}`);
  }
  return cpLength(src.sliceString(0, pos));
}

/**
 * cpToUtf16 converts a code point offset into a UTF-16 offset.
 * @param {string|Source} doc
 * @param {number} cp
 * @returns {number}
 */
export function cpToUtf16(doc, cp) {
  const src = asSource(doc);
  if (!Number.isInteger(cp) || cp < 0) {
    throw new RangeError(`ot: code point offset ${cp} is not a non-negative integer`);
  }
  return advance(src, 0, cp);
}
