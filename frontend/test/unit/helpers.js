// Shared helpers for the unit tests: a deterministic PRNG and random texts and
// ops. Not a test file itself (package.json runs test/unit/*.test.js).

import { Builder } from '../../src/ot/operation.js';

/**
 * makeRandom returns a small deterministic PRNG (mulberry32) seeded with seed.
 * @param {number} seed
 */
export function makeRandom(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    /** float in [0, 1) */
    next,
    /** integer in [0, n) */
    int: (n) => Math.floor(next() * n),
    /** true with probability p */
    chance: (p) => next() < p,
    /** one element of arr */
    pick: (arr) => arr[Math.floor(next() * arr.length)],
  };
}

// Pieces of text the random generators draw from: ASCII, emoji outside the
// BMP (surrogate pairs in UTF-16), an emoji with a skin-tone modifier (two
// code points), CJK, a letter with a combining accent (two code points), a
// newline.
export const PIECES = ['a', 'b', 'c', 'x', ' ', '😀', '😂', '👍🏽', '漢', '字', 'テ', 'e\u0301', '\n'];

/**
 * randomText returns a string of about n pieces.
 * @param {ReturnType<typeof makeRandom>} rnd
 * @param {number} n
 */
export function randomText(rnd, n) {
  let s = '';
  for (let i = 0; i < n; i++) s += rnd.pick(PIECES);
  return s;
}

/**
 * randomOp returns a random normalized op that applies to doc.
 * @param {ReturnType<typeof makeRandom>} rnd
 * @param {string} doc
 */
export function randomOp(rnd, doc) {
  const len = [...doc].length;
  const b = new Builder();
  let pos = 0;
  while (pos < len || rnd.chance(0.3)) {
    const left = len - pos;
    const r = rnd.next();
    if (r < 0.3 || left === 0) {
      b.insert(randomText(rnd, 1 + rnd.int(3)));
      if (left === 0) break;
    } else if (r < 0.6) {
      const n = 1 + rnd.int(Math.min(left, 4));
      b.delete(n);
      pos += n;
    } else {
      const n = 1 + rnd.int(left);
      b.retain(n);
      pos += n;
    }
  }
  return b.done();
}
