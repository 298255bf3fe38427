// bench-ot measures the OT client's costs on a 1 MiB document (run it with
// `npm run bench`): converting CodeMirror changes to ops and back, and the
// client state machine. It prints figures; it asserts nothing.

import { EditorState } from '@codemirror/state';
import { changeSetFromOp, opFromChangeSet } from '../src/ot/codemirror.js';
import { OTClient } from '../src/ot/client.js';
import { otExtensions, localOps, remoteSpec } from '../src/editor/bridge.js';

const line = 'The quick brown fox 漢字テキスト 😀 jumps over the lazy dog e\u0301.\n';
let text = '';
while (text.length < 1 << 20) text += line;
const cps = [...text].length;
const N = 2000;

function time(name, fn) {
  fn(10); // warm up
  const t = performance.now();
  fn(N);
  const per = (performance.now() - t) / N;
  console.log(`${name}: ${(per * 1000).toFixed(1)} µs per op`);
}

console.log(`document: ${text.length} UTF-16 units, ${cps} code points, ${text.split('\n').length} lines`);

time('typing near the end (transaction + op, new state each keystroke)', (n) => {
  let state = EditorState.create({ doc: text, extensions: otExtensions });
  for (let i = 0; i < n; i++) {
    const tr = state.update({ changes: { from: state.doc.length - 5, insert: 'x' } });
    localOps([tr]);
    state = tr.state;
  }
});

time('typing in the middle', (n) => {
  let state = EditorState.create({ doc: text, extensions: otExtensions });
  const at = state.doc.length >> 1;
  for (let i = 0; i < n; i++) {
    const tr = state.update({ changes: { from: at + i, insert: 'y' } });
    localOps([tr]);
    state = tr.state;
  }
});

time('remote op near the end (op -> transaction, new state each op)', (n) => {
  let state = EditorState.create({ doc: text, extensions: otExtensions });
  let len = cps;
  for (let i = 0; i < n; i++) {
    state = state.update(remoteSpec([len - 5, 'z'], state.doc)).state;
    len++;
  }
});

time('changeSetFromOp on one document (cached index)', (n) => {
  const state = EditorState.create({ doc: text });
  for (let i = 0; i < n; i++) changeSetFromOp([cps - 5, 'y'], state.doc, '\n');
});

time('opFromChangeSet on one document (cached index)', (n) => {
  const state = EditorState.create({ doc: text });
  const tr = state.update({ changes: { from: 100, to: 105, insert: 'w' } });
  for (let i = 0; i < n; i++) opFromChangeSet(tr.changes, state.doc);
});

time('OTClient.receive, transformed over pending and buffer', (n) => {
  const c = new OTClient({ client: 'a', rev: 0 });
  c.join();
  c.resume([]);
  c.edit([cps - 10, 'a']);
  c.edit([cps - 9, 'b']);
  for (let i = 0; i < n; i++) c.receive({ rev: i + 1, op: [cps >> 1, 'q'], client: 'b', seq: i + 1 });
});
