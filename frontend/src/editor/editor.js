// The CodeMirror 6 editor, reporting local edits as wire ops.

import { basicSetup, EditorView } from 'codemirror';
import { EditorState, Transaction } from '@codemirror/state';
import { localOps, otExtensions, remoteSpec } from './bridge.js';

/** @typedef {import('../ot/operation.js').Op} Op */

/**
 * createEditor mounts an editor into parent.
 * @param {object} opts
 * @param {HTMLElement} opts.parent
 * @param {string} [opts.doc] initial text
 * @param {(op: Op) => void} opts.onLocalOp called after each local edit, with its op in code points
 * @returns {{view: EditorView, applyRemote(op: Op): void, text(): string}}
 */
export function createEditor({ parent, doc = '', onLocalOp }) {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        otExtensions,
        basicSetup,
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ 'aria-label': 'Document text' }),
        EditorView.updateListener.of((update) => {
          for (const op of localOps(update.transactions)) onLocalOp(op);
        }),
      ],
    }),
  });
  return {
    view,
    applyRemote(op) {
      const spec = remoteSpec(op, view.state.doc);
      view.dispatch({ ...spec, annotations: [...spec.annotations, Transaction.addToHistory.of(false)] });
    },
    text() {
      return view.state.doc.toString();
    },
  };
}
