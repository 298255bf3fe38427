// The CodeMirror 6 editor, reporting local edits as wire ops.

import { basicSetup, EditorView } from 'codemirror';
import { Compartment, EditorState, Transaction } from '@codemirror/state';
import { localOps, otExtensions, remoteEdit, remoteSpec } from './bridge.js';
import { cpOffset, utf16Offset } from '../ot/codemirror.js';
import { remoteCursors, setRemote } from '../app/presence.js';

/** @typedef {import('../ot/operation.js').Op} Op */

/**
 * createEditor mounts an editor into parent.
 * @param {object} opts
 * @param {HTMLElement} opts.parent
 * @param {string} [opts.doc] initial text
 * @param {boolean} [opts.readOnly] start read-only
 * @param {(op: Op) => void} opts.onLocalOp called after each local edit, with its op in code points
 * @param {() => void} [opts.onSelection] called after the local selection moved or the text changed by a local edit
 * @param {string} [opts.label] accessible name of the text area
 * @param {import('@codemirror/state').Extension} [opts.extensions] more extensions (e.g. an update listener)
 */
export function createEditor({ parent, doc = '', readOnly = false, onLocalOp, onSelection = () => {}, label = 'Document text', extensions = [] }) {
  const editable = new Compartment();
  const language = new Compartment();
  const ro = (on) => [EditorState.readOnly.of(on), EditorView.editable.of(!on)];
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        otExtensions,
        basicSetup,
        EditorView.lineWrapping,
        remoteCursors,
        editable.of(ro(readOnly)),
        language.of([]),
        extensions,
        EditorView.contentAttributes.of({ 'aria-label': label }),
        EditorView.updateListener.of((update) => {
          const ops = localOps(update.transactions);
          for (const op of ops) onLocalOp(op);
          if (ops.length > 0 || (update.selectionSet && !update.transactions.some((tr) => tr.annotation(remoteEdit)))) onSelection();
        }),
      ],
    }),
  });
  return {
    view,
    /** applyRemote applies an op from the server (not reported as a local edit). */
    applyRemote(op) {
      const spec = remoteSpec(op, view.state.doc);
      view.dispatch({ ...spec, annotations: [...spec.annotations, Transaction.addToHistory.of(false)] });
    },
    /**
     * setText replaces the whole text as a remote edit, changing only the
     * middle part that differs, so cursors around it stay in place.
     */
    setText(text) {
      const old = view.state.doc.toString();
      if (old === text) return;
      let start = 0;
      const max = Math.min(old.length, text.length);
      while (start < max && old.charCodeAt(start) === text.charCodeAt(start)) start++;
      let end = 0;
      while (end < max - start && old.charCodeAt(old.length - 1 - end) === text.charCodeAt(text.length - 1 - end)) end++;
      // Do not cut a surrogate pair.
      if (start > 0 && isHigh(old.charCodeAt(start - 1))) start--;
      if (end > 0 && isLow(old.charCodeAt(old.length - end))) end--;
      view.dispatch({
        changes: { from: start, to: old.length - end, insert: text.slice(start, text.length - end) },
        annotations: [remoteEdit.of(true), Transaction.addToHistory.of(false)],
      });
    },
    text() {
      return view.state.doc.toString();
    },
    /** setLanguage sets the language support (highlighting, indentation, keymap). */
    setLanguage(ext) {
      view.dispatch({ effects: language.reconfigure(ext) });
    },
    setReadOnly(on) {
      view.dispatch({ effects: editable.reconfigure(ro(on)) });
    },
    /** selection returns the local selection ranges in code points. */
    selection() {
      const doc = view.state.doc;
      return view.state.selection.ranges.map((r) => ({ anchor: cpOffset(doc, r.anchor), head: cpOffset(doc, r.head) }));
    },
    /** cpToPos converts a code point offset into a UTF-16 offset, clamped to the document. */
    cpToPos(cp) {
      try {
        return utf16Offset(view.state.doc, cp);
      } catch {
        return view.state.doc.length;
      }
    },
    /** setRemoteCursor draws (ranges in code points) or removes (ranges null) a remote member's cursors. */
    setRemoteCursor(client, name, color, ranges) {
      const conv = ranges ? ranges.map((r) => ({ anchor: this.cpToPos(r.anchor), head: this.cpToPos(r.head) })) : null;
      view.dispatch({ effects: setRemote.of({ client, name, color, ranges: conv }) });
    },
  };
}

function isHigh(c) {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLow(c) {
  return c >= 0xdc00 && c <= 0xdfff;
}
