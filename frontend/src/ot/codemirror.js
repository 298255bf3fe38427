// Thin adapter between CodeMirror 6 change sets and wire ops. The conversion
// itself lives in changes.js; this file speaks CodeMirror's types and gives
// it a fast code point index over CodeMirror's document tree.

import { ChangeSet } from '@codemirror/state';
import { changesToOp, opToChanges } from './changes.js';
import { advance, asSource, cpLength } from './codepoints.js';

/** @typedef {import('./operation.js').Op} Op */
/** @typedef {import('@codemirror/state').Text} Text */

// Code points of each document tree node. CodeMirror's Text is a persistent
// tree (a branch's children are joined by line breaks); an edit makes new
// nodes only along the path to the change and shares the rest with the old
// document, so counts cached per node stay valid and converting an offset
// costs O(log n) plus one leaf, not a scan of the document.
/** @type {WeakMap<Text, number>} */
const cpCounts = new WeakMap();

/** @param {Text} node */
function cpCount(node) {
  let n = cpCounts.get(node);
  if (n !== undefined) return n;
  if (node.children) {
    n = node.children.length - 1; // the line breaks between children
    for (const child of node.children) n += cpCount(child);
  } else {
    n = cpLength(node.sliceString(0, node.length));
  }
  cpCounts.set(node, n);
  return n;
}

/**
 * cpOffset returns the code point offset of UTF-16 offset pos in doc.
 * @param {Text} doc
 * @param {number} pos
 */
export function cpOffset(doc, pos) {
  if (!Number.isInteger(pos) || pos < 0 || pos > doc.length) {
    throw new RangeError(`ot: UTF-16 offset ${pos} outside 0..${doc.length}`);
  }
  let node = doc;
  let cp = 0;
  for (;;) {
    const children = node.children;
    if (!children) return cp + cpLength(node.sliceString(0, pos));
    let i = 0;
    for (; i < children.length - 1; i++) {
      const child = children[i];
      if (pos <= child.length) break;
      pos -= child.length + 1;
      cp += cpCount(child) + 1;
    }
    node = children[i];
  }
}

/**
 * utf16Offset returns the UTF-16 offset of code point offset cp in doc.
 * @param {Text} doc
 * @param {number} cp
 */
export function utf16Offset(doc, cp) {
  if (!Number.isInteger(cp) || cp < 0) throw new RangeError(`ot: code point offset ${cp} is not a non-negative integer`);
  if (cp > cpCount(doc)) throw new RangeError(`ot: code point offset ${cp} past the end of the document (${cpCount(doc)})`);
  let node = doc;
  let pos = 0;
  for (;;) {
    const children = node.children;
    if (!children) return pos + advance(asSource(node.sliceString(0, node.length)), 0, cp);
    let i = 0;
    for (; i < children.length - 1; i++) {
      const child = children[i];
      const n = cpCount(child);
      if (cp <= n) break;
      cp -= n + 1;
      pos += child.length + 1;
    }
    node = children[i];
  }
}

/**
 * textSource wraps a CodeMirror Text as a source for changes.js, with the
 * cached code point index.
 * @param {Text} doc
 * @returns {import('./codepoints.js').Source}
 */
export function textSource(doc) {
  return {
    length: doc.length,
    sliceString: (from, to) => doc.sliceString(from, to),
    cpOffset: (pos) => cpOffset(doc, pos),
    utf16Offset: (cp) => utf16Offset(doc, cp),
  };
}

/**
 * opFromChangeSet turns a CodeMirror ChangeSet into an op.
 * @param {ChangeSet} changes
 * @param {Text} startDoc the document the changes apply to
 * @returns {Op}
 */
export function opFromChangeSet(changes, startDoc) {
  /** @type {{from: number, to: number, insert: string}[]} */
  const list = [];
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    list.push({ from: fromA, to: toA, insert: inserted.toString() });
  });
  return changesToOp(textSource(startDoc), list);
}

/**
 * opToChangeList turns an op on doc into a list of {from, to, insert} in
 * UTF-16 offsets of doc: a ChangeSpec for EditorState.update.
 * @param {Op} op
 * @param {Text} doc
 */
export function opToChangeList(op, doc) {
  return opToChanges(textSource(doc), op);
}

/**
 * changeSetFromOp turns an op on doc into a CodeMirror ChangeSet.
 * @param {Op} op
 * @param {Text} doc
 * @param {string} [lineSep] the state's line separator (state.lineBreak when
 *   EditorState.lineSeparator is set); without it CodeMirror splits inserted
 *   text on "\r\n" and "\r" too, and joins lines with "\n".
 * @returns {ChangeSet}
 */
export function changeSetFromOp(op, doc, lineSep) {
  return ChangeSet.of(opToChangeList(op, doc), doc.length, lineSep);
}
