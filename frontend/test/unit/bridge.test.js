import test from 'node:test';
import assert from 'node:assert/strict';

import { EditorState } from '@codemirror/state';

import { localOps, otExtensions, remoteEdit, remoteSpec } from '../../src/editor/bridge.js';
import { isWellFormed } from '../../src/ot/codepoints.js';
import { apply } from '../../src/ot/operation.js';
import { OTClient } from '../../src/ot/client.js';

test('localOps turns local transactions into ops and skips remote ones', () => {
  const s0 = EditorState.create({ doc: '😀 漢字' });
  const t1 = s0.update({ changes: { from: 2, insert: '!' } }); // after the emoji (2 UTF-16 units)
  const t2 = t1.state.update(remoteSpec([-1], t1.state.doc)); // the server deletes the emoji
  const t3 = t2.state.update({ selection: { anchor: 1 } }); // no change
  const t4 = t3.state.update({ changes: { from: t3.state.doc.length, insert: 'e\u0301' } });
  assert.equal(t2.annotation(remoteEdit), true);
  assert.deepEqual(localOps([t1, t2, t3, t4]), [[1, '!'], [4, 'e\u0301']]);
  assert.equal(t4.state.doc.toString(), '! 漢字e\u0301');
});

test('an editor state and the OT client stay in step', () => {
  // Two editors on one document, one of them offline: their ops cross, the
  // OT client rebases the remote op, and both end with the same text.
  let a = EditorState.create({ doc: 'ab' });
  let b = EditorState.create({ doc: 'ab' });
  const client = new OTClient({ client: 'a', rev: 0 });
  client.join();
  client.resume([]);

  const ta = a.update({ changes: { from: 1, insert: '😀' } });
  a = ta.state;
  const sub = client.edit(localOps([ta])[0]);
  assert.deepEqual(sub.op, [1, '😀']);

  // b's edit reached the server first (rev 1); a's then got rev 2.
  const tb = b.update({ changes: { from: 1, to: 2, insert: '漢' } });
  b = tb.state;
  const opB = localOps([tb])[0];
  const out = client.receive({ rev: 1, op: opB, client: 'b', seq: 1 });
  a = a.update(remoteSpec(out.apply, a.doc)).state;
  client.ack(1, 2);

  // Both inserted at 1; b was sequenced first, so its text comes first. The
  // server rebases a's op over b's, and b applies that.
  assert.equal(a.doc.toString(), 'a漢😀');
  assert.equal(apply(b.doc.toString(), [2, '😀']), a.doc.toString());
});

test('otExtensions: an edit cutting a surrogate pair is made well-formed', () => {
  const s0 = EditorState.create({ doc: 'a😀b', extensions: otExtensions });
  const tr = s0.update({ changes: { from: 2, insert: 'x' }, selection: { anchor: 3 } });
  assert.equal(tr.state.doc.toString(), 'a\ufffdx\ufffdb');
  assert.equal(tr.state.selection.main.head, 3);
  const [op] = localOps([tr]);
  assert.deepEqual(op, [1, '\ufffdx\ufffd', -1]);
  assert.ok(op.every((c) => typeof c !== 'string' || isWellFormed(c)));
  assert.equal(apply(s0.doc.toString(), op), tr.state.doc.toString());
});

test('otExtensions: carriage returns stay text, so lengths match the server', () => {
  const s0 = EditorState.create({ doc: 'ab', extensions: otExtensions });
  // The server text may hold "\r\n" (a script PUT it); it must survive as is.
  const s1 = s0.update(remoteSpec([1, 'x\r\ny\r'], s0.doc)).state;
  assert.equal(s1.doc.toString(), apply('ab', [1, 'x\r\ny\r']));
  assert.equal(s1.doc.lines, 2);
  const tr = s1.update({ changes: { from: s1.doc.length, insert: '\r\n!' } });
  assert.deepEqual(localOps([tr]), [[7, '\r\n!']]);
  // Without the extension CodeMirror would have rewritten "\r\n" to "\n".
  const plain = EditorState.create({ doc: 'a\r\nb' });
  assert.equal(plain.doc.toString(), 'a\nb');
});
