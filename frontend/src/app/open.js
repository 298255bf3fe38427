// openDocument: a live editor for one document in any element. The editor
// page uses it, and so can another page that embeds collabd (see
// docs/frontend.md).

import { createEditor } from '../editor/editor.js';
import { loadLanguage, modeFor } from '../editor/modes.js';
import { access, connector, token as storedToken, tokenClaims } from './api.js';
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
 * @param {import('@codemirror/state').Extension} [opts.extensions] more CodeMirror extensions
 * @param {string} [opts.token] the access token (default: the one stored by the collabd pages)
 * @param {() => Promise<string> | string} [opts.getToken] returns a fresh token when the
 *   server says the current one ended (auth:expired) or refuses it on a reconnect
 * @returns {Promise<{session: DocSession, editor: ReturnType<typeof createEditor>, mode: import('../editor/modes.js').Mode, language: Promise<import('../editor/modes.js').Mode>, close(): void}>}
 */
export async function openDocument({ parent, doc, user, url, extensions = [], token, getToken }) {
  const store = new Store({ newId: randomId });
  const { slot, orphans } = await store.claim(doc);
  const t = typeof token === 'string' ? token : storedToken();
  const connect = connector(url, t);
  const readOnly = access(doc, tokenClaims(t)) === 'view';
  const session = new DocSession({ doc, store, slot, user, connect, readOnly, getToken });
  /** the server's origin, for the HTTP API ('' : this page's) */
  session.origin = url || '';
  const editor = createEditor({
    parent,
    doc: session.initialText ?? '',
    readOnly: session.fresh || readOnly,
    label: `Text of ${doc}`,
    onLocalOp: (op) => session.localEdit(op),
    onSelection: () => session.selectionMoved(),
    extensions,
  });
  // The language of the id's extension arrives as its own chunk; the text
  // is editable meanwhile.
  const mode = modeFor(doc);
  const language = loadLanguage(mode).then(
    (ext) => {
      editor.setLanguage(ext);
      return mode;
    },
    () => mode, // a chunk that fails to load leaves plain text
  );
  session.start(editor);
  // Edits left behind by closed tabs go out over their own sockets.
  for (const o of orphans) flushOrphan({ doc, slot: o, store, connect, user });
  return {
    session,
    editor,
    mode,
    /** resolves with the mode once its language is set */
    language,
    close() {
      session.close();
      editor.view.destroy();
      slot.release();
    },
  };
}
