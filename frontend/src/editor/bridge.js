// The bridge between CodeMirror transactions and wire ops, at the level of
// @codemirror/state only (no DOM), so it runs in Node tests.

import { Annotation, EditorState, Transaction } from '@codemirror/state';
import { opFromChangeSet, opToChangeList, textSource } from '../ot/codemirror.js';
import { wellFormedChanges } from '../ot/changes.js';

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
 * already transformed by the OT client) to doc, marked as remote. The
 * changes are a plain list, so the state splits inserted text into lines
 * with its own line separator (see otExtensions).
 * @param {Op} op
 * @param {import('@codemirror/state').Text} doc
 * @returns {import('@codemirror/state').TransactionSpec}
 */
export function remoteSpec(op, doc) {
  return {
    changes: opToChangeList(op, doc),
    annotations: [remoteEdit.of(true)],
  };
}

/**
 * wellFormedEdits is a transaction filter that keeps the document well-formed
 * UTF-16: a change that cuts a surrogate pair or inserts a lone surrogate
 * (programmatic edits can; typing cannot) is rewritten with U+FFFD in place
 * of each lone half, since the server rejects lone surrogates.
 */
export const wellFormedEdits = EditorState.transactionFilter.of((tr) => {
  if (!tr.docChanged) return tr;
  /** @type {{from: number, to: number, insert: string}[]} */
  const list = [];
  tr.changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    list.push({ from: fromA, to: toA, insert: inserted.toString() });
  });
  const fixed = wellFormedChanges(textSource(tr.startState.doc), list);
  if (!fixed) return tr;
  const annotations = [];
  const userEvent = tr.annotation(Transaction.userEvent);
  if (userEvent !== undefined) annotations.push(Transaction.userEvent.of(userEvent));
  const addToHistory = tr.annotation(Transaction.addToHistory);
  if (addToHistory !== undefined) annotations.push(Transaction.addToHistory.of(addToHistory));
  if (tr.annotation(remoteEdit)) annotations.push(remoteEdit.of(true));
  // The fixed changes give a document of the same length, so an explicit
  // selection stays valid.
  return { changes: fixed, selection: tr.selection, effects: tr.effects, scrollIntoView: tr.scrollIntoView, annotations };
});

/**
 * otExtensions are the state extensions an editor synced over the wire needs:
 * "\n" as the only line separator (by default CodeMirror also splits on "\r\n"
 * and "\r" and joins lines with "\n", which would change the text and its
 * length in code points behind the OT client's back), and wellFormedEdits.
 */
export const otExtensions = [EditorState.lineSeparator.of('\n'), wellFormedEdits];
