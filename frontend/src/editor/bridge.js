// The bridge between CodeMirror transactions and wire ops, at the level of
// @codemirror/state only (no DOM), so it runs in Node tests.

import { Annotation } from '@codemirror/state';
import { changeSetFromOp, opFromChangeSet } from '../ot/codemirror.js';

/** @typedef {import('../ot/operation.js').Op} Op */

/**
 * remoteEdit marks transactions that apply ops from the server, so they are
 * not mistaken for local edits and sent back.
 * @type {import('@codemirror/state').AnnotationType<boolean>}
 */
export const remoteEdit = Annotation.define();

/**
 * localOps returns the ops of the local edits among transactions, in order.
 * Transactions marked with remoteEdit and those that change nothing are skipped.
 * @param {readonly import('@codemirror/state').Transaction[]} transactions
 * @returns {Op[]}
 */
export function localOps(transactions) {
  const ops = [];
  for (const tr of transactions) {
    if (!tr.docChanged || tr.annotation(remoteEdit)) continue;
    ops.push(opFromChangeSet(tr.changes, tr.startState.doc));
  }
  return ops;
}

/**
 * remoteSpec returns the transaction spec that applies op (from the server,
 * already transformed by the OT client) to doc, marked as remote and kept
 * out of the local undo history.
 * @param {Op} op
 * @param {import('@codemirror/state').Text} doc
 * @returns {import('@codemirror/state').TransactionSpec}
 */
export function remoteSpec(op, doc) {
  return {
    changes: changeSetFromOp(op, doc),
    annotations: [remoteEdit.of(true)],
  };
}
