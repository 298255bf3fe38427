// openDocument: a live editor for one document in any element. The editor
// page uses it, and so can another page that embeds collabd (see
// docs/frontend.md).

import { createEditor } from '../editor/editor.js';
import { access, connector } from './api.js';
import { randomId } from './ids.js';
import { flushOrphan } from './orphans.js';
import { DocSession } from './session.js';
import { Store } from './store.js';

/**
 * openDocument mounts a CodeMirror editor into parent and connects it to
 * document doc on the collabd server at url.
 * @param {object} opts
 * @param {HTMLElement} opts.parent
 * @param {string} opts.doc document id
 * @param {{name: string, color: string}} opts.user
 * @param {string} [opts.url] the server (default: this page's origin)
 * @returns {Promise<{session: DocSession, editor: ReturnType<typeof createEditor>, close(): void}>}
 */
export async function openDocument({ parent, doc, user, url }) {
  const store = new Store({ newId: randomId });
  const { slot, orphans } = await store.claim(doc);
  const connect = connector(url);
  const readOnly = access(doc) === 'view';
  const session = new DocSession({ doc, store, slot, user, connect, readOnly });
  const editor = createEditor({
    parent,
    doc: session.initialText ?? '',
    readOnly: session.fresh || readOnly,
    label: `Text of ${doc}`,
    onLocalOp: (op) => session.localEdit(op),
    onSelection: () => session.selectionMoved(),
  });
  session.start(editor);
  // Edits left behind by closed tabs go out over their own sockets.
  for (const o of orphans) flushOrphan({ doc, slot: o, store, connect, user });
  return {
    session,
    editor,
    close() {
      session.close();
      editor.view.destroy();
      slot.release();
    },
  };
}
