import test from 'node:test';
import assert from 'node:assert/strict';

import {
  apply,
  baseLength,
  compose,
  invert,
  isNoop,
  isNormalized,
  lengthDelta,
  normalize,
  transform,
  transformIndex,
  validate,
} from '../../src/ot/operation.js';
import { makeRandom, randomOp, randomText } from './helpers.js';

test('normalize', async (t) => {
  const cases = [
    { name: 'empty', in: [], want: [] },
    { name: 'trailing retain dropped', in: [3], want: [] },
    { name: 'zero and empty dropped', in: [0, '', 2, 0, 'a', '', -0], want: [2, 'a'] },
    { name: 'adjacent retains merged', in: [1, 2, 'x'], want: [3, 'x'] },
    { name: 'adjacent inserts merged', in: ['a', 'b', -1], want: ['ab', -1] },
    { name: 'adjacent deletes merged', in: [-1, -2, 1, 'x'], want: [-3, 1, 'x'] },
    { name: 'insert moved before delete', in: [-2, 'x'], want: ['x', -2] },
    { name: 'delete insert delete insert', in: [1, -1, 'a', -2, 'b', 3], want: [1, 'ab', -3] },
    { name: 'retain after zero retain after delete', in: [-1, 0, -1], want: [-2] },
    { name: 'insert between deletes then retain', in: [2, -1, 'é', -1, 4, '😀'], want: [2, 'é', -2, 4, '😀'] },
    { name: 'already normal', in: [2, '漢字', -1, 5, -3], want: [2, '漢字', -1, 5, -3] },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const input = structuredClone(c.in);
      assert.deepEqual(normalize(c.in), c.want);
      assert.deepEqual(c.in, input, 'normalize must not modify its argument');
      assert.ok(isNormalized(c.want));
      assert.equal(isNormalized(c.in), JSON.stringify(c.in) === JSON.stringify(c.want));
    });
  }
});

test('validate rejects malformed ops', async (t) => {
  const bad = [
    { name: 'not an array', op: { 0: 1 } },
    { name: 'null', op: null },
    { name: 'float', op: [1.5] },
    { name: 'boolean', op: [true] },
    { name: 'nested', op: [[1]] },
    { name: 'NaN', op: [NaN] },
    { name: 'unsafe integer', op: [2 ** 60] },
    { name: 'object', op: [{ insert: 'a' }] },
  ];
  for (const c of bad) {
    await t.test(c.name, () => {
      assert.throws(() => validate(c.op), TypeError);
      assert.throws(() => apply('abc', /** @type {any} */ (c.op)), TypeError);
    });
  }
  assert.deepEqual(validate([1, -1, 'a', 0, '']), [1, -1, 'a', 0, '']);
});

test('apply', async (t) => {
  const cases = [
    { name: 'identity', text: 'abc', op: [], want: 'abc' },
    { name: 'insert at start', text: 'abc', op: ['x'], want: 'xabc' },
    { name: 'insert at end with full retain', text: 'abc', op: [3, 'x'], want: 'abcx' },
    { name: 'delete middle', text: 'abcdef', op: [2, -2], want: 'abef' },
    { name: 'replace', text: 'abc', op: [1, 'XY', -1], want: 'aXYc' },
    { name: 'into empty', text: '', op: ['hello'], want: 'hello' },
    { name: 'delete all', text: 'hello', op: [-5], want: '' },
    // Code points, not UTF-16 units: each emoji below is one code point and two units.
    { name: 'retain over emoji', text: '😀😁😂', op: [1, 'x'], want: '😀x😁😂' },
    { name: 'delete emoji', text: 'a😀b', op: [1, -1], want: 'ab' },
    { name: 'delete two emoji', text: '😀😁😂', op: [1, -2], want: '😀' },
    { name: 'CJK', text: '漢字テキスト', op: [2, '和', -1], want: '漢字和キスト' },
    // A combining mark is a code point of its own.
    { name: 'combining mark', text: 'e\u0301x', op: [1, -1], want: 'ex' },
    // A skin-tone emoji is two code points (four UTF-16 units).
    { name: 'emoji modifier', text: '👍🏽!', op: [1, -1], want: '👍!' },
    { name: 'insert emoji between emoji', text: '😀😂', op: [1, '😁'], want: '😀😁😂' },
    // A lone surrogate counts as one code point, as U+FFFD does on the server.
    { name: 'lone surrogate', text: 'a\ud800b', op: [2, 'x'], want: 'a\ud800xb' },
    { name: 'non-normalized input', text: 'abc', op: [-1, 'x', 0, 1, 1], want: 'xbc' },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      assert.equal(apply(c.text, c.op), c.want);
    });
  }
  await t.test('past the end', () => {
    assert.throws(() => apply('abc', [4]), RangeError);
    assert.throws(() => apply('abc', [3, -1]), RangeError);
    assert.throws(() => apply('😀', [2]), RangeError);
    assert.throws(() => apply('', [-1]), RangeError);
  });
});

test('lengths', () => {
  assert.equal(baseLength([2, '😀x', -3, 1]), 6);
  assert.equal(lengthDelta([2, '😀x', -3, 1]), -1);
  assert.equal(lengthDelta(['👍🏽']), 2);
  assert.ok(isNoop([]));
  assert.ok(isNoop([5]));
  assert.ok(!isNoop([5, 'x']));
});

test('compose', async (t) => {
  const cases = [
    { name: 'identity left', a: [], b: [1, 'x'], want: [1, 'x'] },
    { name: 'identity right', a: [1, 'x'], b: [], want: [1, 'x'] },
    { name: 'typing', a: [2, 'a'], b: [3, 'b'], want: [2, 'ab'] },
    { name: 'insert then delete it', a: [2, 'abc'], b: [3, -1], want: [2, 'ac'] },
    { name: 'insert then delete all of it', a: [2, 'abc'], b: [2, -3], want: [] },
    { name: 'delete then insert', a: [-2], b: ['xy'], want: ['xy', -2] },
    { name: 'deletes add up', a: [1, -1], b: [1, -1], want: [1, -2] },
    { name: 'retain past a', a: ['x'], b: [3, -1], want: ['x', 2, -1] },
    { name: 'emoji split by b', a: ['😀😁😂'], b: [1, -1], want: ['😀😂'] },
    { name: 'CJK edit of inserted text', a: [1, '漢字テ'], b: [2, '和', 1, -1], want: [1, '漢和字'] },
    { name: 'b deletes text a kept', a: [1, 'x'], b: [-2, 1, -1], want: [-1, 1, -1] },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      assert.deepEqual(compose(c.a, c.b), c.want);
    });
  }
});

test('transform: table', async (t) => {
  // a was sequenced first. want = [a', b'].
  const cases = [
    { name: 'same position inserts: a first', doc: 'ab', a: [1, 'X'], b: [1, 'Y'], want: [[1, 'X'], [2, 'Y']], result: 'aXYb' },
    { name: 'same position at start', doc: '', a: ['X'], b: ['Y'], want: [['X'], [1, 'Y']], result: 'XY' },
    { name: 'same position, emoji inserts', doc: '😀', a: [1, '😁'], b: [1, '😂'], want: [[1, '😁'], [2, '😂']], result: '😀😁😂' },
    { name: 'insert before insert', doc: 'abc', a: [1, 'X'], b: [2, 'Y'], want: [[1, 'X'], [3, 'Y']], result: 'aXbYc' },
    { name: 'both delete the same', doc: 'abc', a: [1, -1], b: [1, -1], want: [[], []], result: 'ac' },
    { name: 'overlapping deletes', doc: 'abcdef', a: [1, -3], b: [2, -3], want: [[1, -1], [1, -1]], result: 'af' },
    { name: 'insert inside deleted range survives', doc: 'abcd', a: [-4], b: [2, 'X'], want: [[-2, 1, -2], ['X']], result: 'X' },
    { name: 'delete then insert at its start (b)', doc: 'abc', a: [-1], b: ['X'], want: [[1, -1], ['X']], result: 'Xbc' },
    // Normalized, a replaces: insert before delete, so a's insert is at the
    // same position as b's and goes first.
    { name: 'replace vs insert at same place', doc: 'abc', a: ['X', -1], b: ['Y'], want: [['X', 1, -1], [1, 'Y']], result: 'XYbc' },
    { name: 'same, a written delete-first', doc: 'abc', a: [-1, 'X'], b: ['Y'], want: [['X', 1, -1], [1, 'Y']], result: 'XYbc' },
    { name: 'CJK', doc: '漢字', a: [1, 'テ'], b: [2, 'キ'], want: [[1, 'テ'], [3, 'キ']], result: '漢テ字キ' },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const [a2, b2] = transform(c.a, c.b);
      assert.deepEqual([a2, b2], c.want);
      assert.equal(apply(apply(c.doc, c.a), b2), c.result);
      assert.equal(apply(apply(c.doc, c.b), a2), c.result);
    });
  }
});

test('invert: table', async (t) => {
  const cases = [
    { doc: 'abc', op: [1, 'x', -1] },
    { doc: '😀😁😂', op: [1, -1, '漢'] },
    { doc: 'e\u0301', op: [1, -1] },
    { doc: '', op: ['👍🏽'] },
  ];
  for (const c of cases) {
    await t.test(JSON.stringify(c.op), () => {
      const inv = invert(c.op, c.doc);
      assert.ok(isNormalized(inv));
      assert.equal(apply(apply(c.doc, c.op), inv), c.doc);
    });
  }
});

test('transformIndex', async (t) => {
  const cases = [
    { name: 'insert before', index: 3, op: [1, 'ab'], want: 5 },
    { name: 'insert after', index: 1, op: [2, 'ab'], want: 1 },
    { name: 'insert at, pushed right', index: 2, op: [2, 'ab'], want: 4 },
    { name: 'insert at, stick left', index: 2, op: [2, 'ab'], stickLeft: true, want: 2 },
    { name: 'insert at start, stick left', index: 0, op: ['ab'], stickLeft: true, want: 0 },
    { name: 'delete before', index: 5, op: [1, -2], want: 3 },
    { name: 'delete around', index: 3, op: [1, -4], want: 1 },
    { name: 'delete after', index: 1, op: [1, -4], want: 1 },
    { name: 'replace around', index: 2, op: ['X', -3], want: 1 },
    { name: 'emoji insert counts one', index: 1, op: ['😀'], want: 2 },
    { name: 'replace at the position', index: 1, op: [1, 'X', -2], want: 2 },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      assert.equal(transformIndex(c.index, c.op, c.stickLeft), c.want);
    });
  }
});

// Properties over random ops on random texts (emoji, CJK and combining marks
// included), with a fixed seed so a failure can be replayed.
test('properties: random ops', () => {
  const rnd = makeRandom(0x5eed);
  for (let i = 0; i < 3000; i++) {
    const doc = randomText(rnd, rnd.int(12));
    const a = randomOp(rnd, doc);
    const b = randomOp(rnd, doc);
    const msg = `case ${i}: doc=${JSON.stringify(doc)} a=${JSON.stringify(a)} b=${JSON.stringify(b)}`;

    assert.ok(isNormalized(a), msg);
    // transform: convergence (TP1), normalized results
    const [a2, b2] = transform(a, b);
    const viaA = apply(apply(doc, a), b2);
    const viaB = apply(apply(doc, b), a2);
    assert.equal(viaA, viaB, msg);
    assert.ok(isNormalized(a2) && isNormalized(b2), msg);

    // compose: same as applying one after the other
    const afterA = apply(doc, a);
    const c = randomOp(rnd, afterA);
    const ac = compose(a, c);
    assert.equal(apply(doc, ac), apply(afterA, c), msg + ` c=${JSON.stringify(c)}`);
    assert.ok(isNormalized(ac), msg);

    // transform against the identity changes nothing
    assert.deepEqual(transform(a, []), [a, []], msg);
    assert.deepEqual(transform([], a), [[], a], msg);

    // invert undoes
    assert.equal(apply(afterA, invert(a, doc)), doc, msg);

    // transformIndex: the position just before a code point the op keeps is
    // still just before it (inserts there push it right), and with stickLeft
    // the position just after a kept code point is still just after it.
    const oldCps = [...doc];
    const newCps = [...afterA];
    const kept = keptIndexes(a, oldCps.length);
    for (const i of kept) {
      assert.equal(newCps[transformIndex(i, a)], oldCps[i], msg + ` index ${i}`);
      assert.equal(newCps[transformIndex(i + 1, a, true) - 1], oldCps[i], msg + ` index ${i + 1} stickLeft`);
    }

    // normalize keeps the effect
    assert.equal(apply(doc, normalize([...a, 0, ''])), afterA, msg);
  }
});

// keptIndexes returns the code point indexes of a document of length n that
// op retains (explicitly or by the implicit trailing retain).
function keptIndexes(op, n) {
  const out = [];
  let pos = 0;
  for (const c of op) {
    if (typeof c !== 'number') continue;
    if (c > 0) for (let k = 0; k < c; k++) out.push(pos + k);
    pos += Math.abs(c);
  }
  for (let k = pos; k < n; k++) out.push(k);
  return out;
}
