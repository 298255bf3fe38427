// Remote cursors and selections: positions carried between revisions and
// drawn as CodeMirror decorations that move with every edit.

import { StateEffect, StateField } from '@codemirror/state';
import { Decoration, EditorView, WidgetType } from '@codemirror/view';
import { cpLength } from '../ot/codepoints.js';

/** @typedef {import('../ot/operation.js').Op} Op */

/**
 * unapplyIndex maps a code point position in the document AFTER op back to
 * the document before it: the reverse of transformIndex. A position inside
 * text that op inserted maps to where that text was inserted. Presence uses it
 * to express the local selection at the last server revision, before the
 * local edits the server has not acknowledged.
 * @param {number} index
 * @param {Op} op
 * @returns {number}
 */
export function unapplyIndex(index, op) {
  let base = 0; // position in the document before op
  let local = 0; // the same place after op
  for (const c of op) {
    if (typeof c === 'string') {
      const n = cpLength(c);
      if (index < local + n) return base;
      local += n;
    } else if (c > 0) {
      if (index <= local + c) return base + (index - local);
      base += c;
      local += c;
    } else {
      if (index === local) return base; // at a deletion: its start
      base += -c;
    }
  }
  return base + (index - local);
}

/**
 * setRemote sets the ranges of one remote member:
 * {client, name, color, ranges: [{anchor, head}]} in UTF-16 offsets of the
 * current document; ranges null removes the member.
 */
export const setRemote = StateEffect.define();

class CaretWidget extends WidgetType {
  constructor(name, color) {
    super();
    this.name = name;
    this.color = color;
  }

  eq(other) {
    return other.name === this.name && other.color === this.color;
  }

  toDOM() {
    const caret = document.createElement('span');
    caret.className = 'cm-remote-caret';
    caret.style.setProperty('--c', this.color);
    caret.setAttribute('aria-hidden', 'true');
    const label = document.createElement('span');
    label.className = 'cm-remote-label';
    label.textContent = this.name;
    caret.appendChild(label);
    return caret;
  }

  ignoreEvent() {
    return true;
  }
}

function build(members, docLength) {
  const decos = [];
  for (const m of members.values()) {
    for (const r of m.ranges) {
      const from = Math.min(r.anchor, r.head, docLength);
      const to = Math.min(Math.max(r.anchor, r.head), docLength);
      if (from < to) {
        decos.push(Decoration.mark({ class: 'cm-remote-selection', attributes: { style: `background-color: ${m.color}33` } }).range(from, to));
      }
      const head = Math.min(r.head, docLength);
      decos.push(Decoration.widget({ widget: new CaretWidget(m.name, m.color), side: 1 }).range(head));
    }
  }
  return Decoration.set(decos, true);
}

/**
 * remoteCursors is the state field holding remote members' ranges, mapped
 * through every change (local or remote) and drawn as decorations.
 */
export const remoteCursors = StateField.define({
  create() {
    return { members: new Map(), decorations: Decoration.none };
  },
  update(value, tr) {
    let members = value.members;
    let changed = false;
    if (tr.docChanged) {
      members = new Map();
      for (const [client, m] of value.members) {
        members.set(client, {
          ...m,
          ranges: m.ranges.map((r) => ({ anchor: tr.changes.mapPos(r.anchor, 1), head: tr.changes.mapPos(r.head, 1) })),
        });
      }
      changed = true;
    }
    for (const e of tr.effects) {
      if (!e.is(setRemote)) continue;
      if (!changed) members = new Map(members);
      changed = true;
      if (e.value.ranges) members.set(e.value.client, e.value);
      else members.delete(e.value.client);
    }
    if (!changed) return value;
    return { members, decorations: build(members, tr.state.doc.length) };
  },
  provide: (f) => EditorView.decorations.from(f, (v) => v.decorations),
});
