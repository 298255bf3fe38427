import test from 'node:test';
import assert from 'node:assert/strict';

import { ChangeSet, EditorState, Text } from '@codemirror/state';

import { cpLength, cpToUtf16, utf16ToCp, asSource, advance, isWellFormed, toWellFormed } from '../../src/ot/codepoints.js';
import { changesToOp, opToChanges, wellFormedChanges } from '../../src/ot/changes.js';
import { changeSetFromOp, cpOffset, opFromChangeSet, utf16Offset } from '../../src/ot/codemirror.js';
import { apply, isNormalized } from '../../src/ot/operation.js';
import { makeRandom, randomOp, randomText } from './helpers.js';

test('cpLength', async (t) => {
  const cases = [
    { s: '', want: 0 },
    { s: 'abc', want: 3 },
    { s: '😀', want: 1 },
    { s: '😀😁', want: 2 },
    { s: '👍🏽', want: 2 }, // emoji + skin-tone modifier
    { s: '漢字テキスト', want: 6 },
    { s: 'e\u0301', want: 2 }, // letter + combining acute
    { s: '\ud800', want: 1 }, // lone high surrogate
    { s: '\udc00\ud800', want: 2 }, // low before high is not a pair
    { s: 'a\ud83d', want: 2 },
  ];
  for (const c of cases) {
    await t.test(JSON.stringify(c.s), () => {
      assert.equal(cpLength(c.s), c.want);
      assert.equal(cpLength(c.s), [...c.s].length, 'same count as the string iterator');
    });
  }
});

test('utf16ToCp and cpToUtf16', async (t) => {
  const doc = 'a😀漢e\u0301👍🏽b';
  // UTF-16:   a=0, 😀=1-2, 漢=3, e=4, ◌́=5, 👍=6-7, 🏽=8-9, b=10, end=11
  // code pts: a=0, 😀=1,   漢=2, e=3, ◌́=4, 👍=5,   🏽=6,   b=7,  end=8
  const pairs = [
    [0, 0],
    [1, 1],
    [3, 2],
    [4, 3],
    [5, 4],
    [6, 5],
    [8, 6],
    [10, 7],
    [11, 8],
  ];
  for (const [u, cp] of pairs) {
    await t.test(`utf16 ${u} <-> cp ${cp}`, () => {
      assert.equal(utf16ToCp(doc, u), cp);
      assert.equal(cpToUtf16(doc, cp), u);
    });
  }
  await t.test('out of range', () => {
    assert.throws(() => cpToUtf16(doc, 9), RangeError);
    assert.throws(() => utf16ToCp(doc, 12), RangeError);
    assert.throws(() => utf16ToCp(doc, -1), RangeError);
    assert.throws(() => cpToUtf16(doc, 1.5), RangeError);
  });
  await t.test('long document read in slices', () => {
    const big = '😀'.repeat(50000) + 'x' + '漢'.repeat(50000);
    assert.equal(cpToUtf16(big, 50000), 100000);
    assert.equal(cpToUtf16(big, 100001), 150001);
    assert.equal(utf16ToCp(big, 150001), 100001);
    // A CodeMirror Text is a source too.
    const text = Text.of(big.split('x'));
    assert.equal(advance(asSource(text), 0, 50000), 100000);
  });
});

test('isWellFormed and toWellFormed', async (t) => {
  const cases = [
    { s: '', ok: true },
    { s: 'a😀漢e\u0301👍🏽', ok: true },
    { s: '\ud83d', ok: false, fixed: '\ufffd' },
    { s: '\ude00', ok: false, fixed: '\ufffd' },
    { s: 'a\ude00\ud83d', ok: false, fixed: 'a\ufffd\ufffd' },
    { s: '😀\ud83dx', ok: false, fixed: '😀\ufffdx' },
  ];
  for (const c of cases) {
    await t.test(JSON.stringify(c.s), () => {
      assert.equal(isWellFormed(c.s), c.ok);
      assert.equal(toWellFormed(c.s), c.ok ? c.s : c.fixed);
      assert.equal(toWellFormed(c.s).length, c.s.length);
    });
  }
});

test('wellFormedChanges', async (t) => {
  const cases = [
    { name: 'clean', doc: 'a😀b', changes: [{ from: 3, to: 3, insert: '漢' }], want: null },
    { name: 'insert inside a pair', doc: 'a😀b', changes: [{ from: 2, to: 2, insert: 'x' }], want: [{ from: 1, to: 3, insert: '\ufffdx\ufffd' }] },
    { name: 'delete half a pair', doc: 'a😀b', changes: [{ from: 2, to: 3, insert: '' }], want: [{ from: 1, to: 3, insert: '\ufffd' }] },
    { name: 'lone surrogate inserted', doc: 'ab', changes: [{ from: 1, to: 1, insert: '\ud83d' }], want: [{ from: 1, to: 1, insert: '\ufffd' }] },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const got = wellFormedChanges(c.doc, c.changes);
      assert.deepEqual(got, c.want);
      if (got) {
        const before = applyChanges(c.doc, c.changes);
        const after = applyChanges(c.doc, got);
        assert.equal(after.length, before.length, 'same UTF-16 length');
        assert.ok(isWellFormed(after));
      }
    });
  }
});

test('changesToOp', async (t) => {
  const cases = [
    { name: 'no changes', doc: 'abc', changes: [], want: [] },
    { name: 'insert after emoji', doc: '😀b', changes: [{ from: 2, to: 2, insert: 'x' }], want: [1, 'x'] },
    { name: 'delete emoji', doc: 'a😀b', changes: [{ from: 1, to: 3, insert: '' }], want: [1, -1] },
    { name: 'replace CJK', doc: '漢字テ', changes: [{ from: 1, to: 2, insert: '和' }], want: [1, '和', -1] },
    {
      name: 'two changes',
      doc: 'a😀b😁c',
      changes: [
        { from: 0, to: 1, insert: '' },
        { from: 4, to: 6, insert: '漢' },
      ],
      want: [-1, 2, '漢', -1],
    },
    { name: 'delete combining mark only', doc: 'e\u0301x', changes: [{ from: 1, to: 2, insert: '' }], want: [1, -1] },
    // Splitting a surrogate pair (never by typing): widened to the whole pair.
    { name: 'insert inside a pair', doc: 'a😀b', changes: [{ from: 2, to: 2, insert: 'x' }], want: [1, '\ud83dx\ude00', -1] },
    { name: 'delete half a pair', doc: 'a😀b', changes: [{ from: 1, to: 2, insert: '' }], want: [1, '\ude00', -1] },
    {
      name: 'two changes meeting inside a pair',
      doc: '😀',
      changes: [
        { from: 0, to: 1, insert: 'x' },
        { from: 1, to: 2, insert: 'y' },
      ],
      want: ['xy', -1],
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const op = changesToOp(c.doc, c.changes);
      assert.deepEqual(op, c.want);
      assert.equal(apply(c.doc, op), applyChanges(c.doc, c.changes), 'the op has the effect of the changes');
    });
  }
  await t.test('rejects bad change lists', () => {
    assert.throws(() => changesToOp('abc', [{ from: 2, to: 1, insert: '' }]), RangeError);
    assert.throws(() => changesToOp('abc', [{ from: 0, to: 4, insert: '' }]), RangeError);
    assert.throws(
      () =>
        changesToOp('abc', [
          { from: 1, to: 2, insert: '' },
          { from: 0, to: 1, insert: '' },
        ]),
      RangeError,
    );
    assert.throws(() => changesToOp('abc', [{ from: 0, to: 1 }]), TypeError);
  });
});

test('opToChanges', async (t) => {
  const cases = [
    { name: 'empty', doc: 'abc', op: [], want: [] },
    { name: 'insert after emoji', doc: '😀b', op: [1, 'x'], want: [{ from: 2, to: 2, insert: 'x' }] },
    { name: 'replace', doc: '😀漢b', op: [1, 'x', -1], want: [{ from: 2, to: 3, insert: 'x' }] },
    {
      name: 'two places',
      doc: '👍🏽ab',
      op: [-1, 1, 'Q', -1],
      want: [
        { from: 0, to: 2, insert: '' },
        { from: 4, to: 5, insert: 'Q' },
      ],
    },
    { name: 'delete then insert at the same place', doc: 'ab', op: [-1, 'x'], want: [{ from: 0, to: 1, insert: 'x' }] },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const changes = opToChanges(c.doc, c.op);
      assert.deepEqual(changes, c.want);
      assert.equal(applyChanges(c.doc, changes), apply(c.doc, c.op));
    });
  }
  await t.test('past the end', () => {
    assert.throws(() => opToChanges('😀', [1, -1]), RangeError);
  });
});

test('round trips with random ops', () => {
  const rnd = makeRandom(42);
  for (let i = 0; i < 2000; i++) {
    const doc = randomText(rnd, rnd.int(15));
    const op = randomOp(rnd, doc);
    const changes = opToChanges(doc, op);
    assert.equal(applyChanges(doc, changes), apply(doc, op), `case ${i}`);
    assert.deepEqual(changesToOp(doc, changes), op, `case ${i}: op -> changes -> op`);
  }
});

// The CodeMirror adapter, against the real @codemirror/state.
test('CodeMirror adapter: random change sets', () => {
  const rnd = makeRandom(7);
  for (let i = 0; i < 1000; i++) {
    const startText = randomText(rnd, rnd.int(20));
    const state = EditorState.create({ doc: startText });
    // Random code-point-aligned changes, as typing makes them.
    const op = randomOp(rnd, startText);
    const spec = opToChanges(startText, op);
    const tr = state.update({ changes: spec });
    const got = opFromChangeSet(tr.changes, state.doc);
    assert.ok(isNormalized(got));
    assert.equal(apply(startText, got), tr.state.doc.toString(), `case ${i}`);

    // And back: an op applied through a ChangeSet.
    const op2 = randomOp(rnd, tr.state.doc.toString());
    const cs = changeSetFromOp(op2, tr.state.doc);
    assert.ok(cs instanceof ChangeSet);
    assert.equal(cs.apply(tr.state.doc).toString(), apply(tr.state.doc.toString(), op2), `case ${i}`);
  }
});

test('CodeMirror adapter: multi-line document and a change set from several transactions', () => {
  const state = EditorState.create({ doc: 'line 1 😀\n漢字\nthird e\u0301' });
  const tr1 = state.update({ changes: { from: 0, insert: '👍🏽 ' } });
  const tr2 = tr1.state.update({ changes: [{ from: tr1.state.doc.line(2).from, to: tr1.state.doc.line(2).to, insert: '和' }] });
  const composed = tr1.changes.compose(tr2.changes);
  const op = opFromChangeSet(composed, state.doc);
  assert.equal(apply(state.doc.toString(), op), tr2.state.doc.toString());
  assert.deepEqual(op, ['👍🏽 ', 9, '和', -2]);
});

test('CodeMirror adapter: changeSetFromOp with a line separator keeps carriage returns', () => {
  const doc = Text.of(['ab']);
  const op = [1, 'x\r\ny'];
  assert.equal(changeSetFromOp(op, doc, '\n').apply(doc).sliceString(0, undefined, '\n'), 'ax\r\nyb');
  // CodeMirror's default splits on \r\n and joins with \n: one code point fewer.
  assert.equal(changeSetFromOp(op, doc).apply(doc).toString(), 'ax\nyb');
});

/** applyChanges applies a UTF-16 change list the obvious way. */
function applyChanges(doc, changes) {
  let out = '';
  let pos = 0;
  for (const ch of changes) {
    out += doc.slice(pos, ch.from) + ch.insert;
    pos = ch.to;
  }
  return out + doc.slice(pos);
}

// The code point index over CodeMirror's document tree must agree with a
// plain count, on documents big enough to be trees, before and after edits
// (which share unchanged nodes, and with them cached counts).
test('CodeMirror adapter: code point index on a document tree', () => {
  const rnd = makeRandom(99);
  const lines = [];
  for (let i = 0; i < 3000; i++) lines.push(randomText(rnd, rnd.int(8)).replace(/\n/g, ''));
  let state = EditorState.create({ doc: lines.join('\n') });
  assert.ok(state.doc.children, 'the document is a tree');
  for (let round = 0; round < 20; round++) {
    const str = state.doc.toString();
    const cps = [...str].length;
    for (let k = 0; k < 50; k++) {
      const cp = k === 0 ? cps : rnd.int(cps + 1);
      const pos = cpToUtf16(str, cp);
      assert.equal(utf16Offset(state.doc, cp), pos, `round ${round}: cp ${cp}`);
      assert.equal(cpOffset(state.doc, pos), cp, `round ${round}: pos ${pos}`);
    }
    assert.throws(() => utf16Offset(state.doc, cps + 1), RangeError);
    assert.throws(() => cpOffset(state.doc, str.length + 1), RangeError);
    // An edit somewhere, then again on the new document.
    const at = cpToUtf16(str, rnd.int(cps + 1));
    const del = Math.min(rnd.int(3), str.length - at);
    const end = at + del + (str.charCodeAt(at + del - 1) >= 0xd800 && str.charCodeAt(at + del - 1) <= 0xdbff ? 1 : 0);
    const tr = state.update({ changes: { from: at, to: Math.min(end, str.length), insert: randomText(rnd, 1 + rnd.int(4)) } });
    const op = opFromChangeSet(tr.changes, state.doc);
    assert.equal(apply(str, op), tr.state.doc.toString(), `round ${round}`);
    assert.equal(changeSetFromOp(op, state.doc).apply(state.doc).toString(), tr.state.doc.toString());
    state = tr.state;
  }
});
