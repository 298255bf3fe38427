// Thin adapter between CodeMirror 6 change sets and wire ops. The conversion
// itself lives in changes.js; this file only speaks CodeMirror's types.

import { ChangeSet } from '@codemirror/state';
import { changesToOp, opToChanges } from './changes.js';

/** @typedef {import('./operation.js').Op} Op */

/**
 * opFromChangeSet turns a CodeMirror ChangeSet into an op.
 * @param {ChangeSet} changes
 * @param {import('@codemirror/state').Text} startDoc the document the changes apply to
 * @returns {Op}
 */
export function opFromChangeSet(changes, startDoc) {
  /** @type {{from: number, to: number, insert: string}[]} */
  const list = [];
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    list.push({ from: fromA, to: toA, insert: inserted.toString() });
  });
  return changesToOp(startDoc, list);
}

/**
 * changeSetFromOp turns an op on doc into a CodeMirror ChangeSet.
 * @param {Op} op
 * @param {import('@codemirror/state').Text} doc
 * @param {string} [lineSep] the state's line separator (state.lineBreak when
 *   EditorState.lineSeparator is set); without it CodeMirror splits inserted
 *   text on "\r\n" and "\r" too, and joins lines with "\n".
 * @returns {ChangeSet}
 */
export function changeSetFromOp(op, doc, lineSep) {
  return ChangeSet.of(opToChanges(doc, op), doc.length, lineSep);
}
