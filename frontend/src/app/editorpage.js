// The editor page /d/{id}: header with the members and the connection
// indicator, the editor, and the history panel.

import { h } from './dom.js';
import { HistoryPanel } from './history.js';
import { openDocument } from './open.js';
import { askUser, currentUser } from './user.js';
import { tokenClaims } from './api.js';
import { modeFor } from '../editor/modes.js';
import { EditorView } from '@codemirror/view';
import { download, fileName, importFile } from './files.js';
import { Preview } from './preview.js';
import { showShortcuts } from './shortcuts.js';

const STATUS_TEXT = {
  connecting: 'Connecting…',
  joining: 'Syncing…',
  online: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  expired: 'Access expired',
};

export async function editorPage(root, doc) {
  document.title = `${doc} · collabd`;
  const status = h('span', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite', 'data-state': 'connecting' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), h('span', { class: 'status-text' }, STATUS_TEXT.connecting));
  const members = h('ul', { id: 'members', class: 'members', 'aria-label': 'People in this document' });
  const historyBtn = h('button', { id: 'history-toggle', type: 'button', class: 'btn', 'aria-expanded': 'false', 'aria-controls': 'history' }, 'History');
  const banner = h('p', { id: 'banner', class: 'banner', role: 'alert', hidden: true });
  const notice = h('p', { id: 'notice', class: 'notice', role: 'status', hidden: true });
  // What happened to the reader's edits (a rebase after gone, a token that
  // ended): non-blocking, until dismissed.
  const syncText = h('span', { class: 'sync-notice-text' });
  const syncDismiss = h('button', { type: 'button', class: 'btn small', 'aria-label': 'Dismiss this notice' }, 'Dismiss');
  const syncNotice = h('div', { id: 'sync-notice', class: 'notice sync-notice', role: 'status', hidden: true }, syncText, syncDismiss);
  const editorEl = h('div', { id: 'editor', class: 'editor' });
  const panel = h('aside', { id: 'history', class: 'history', hidden: true });
  const mode = modeFor(doc);
  const markdown = mode.name === 'markdown';
  const previewEl = h('article', { id: 'preview', class: 'preview', 'aria-label': 'Preview', tabindex: '0', hidden: true });
  const previewBtn = markdown ? h('button', { id: 'preview-toggle', type: 'button', class: 'btn', 'aria-pressed': 'false', 'aria-controls': 'preview', title: 'Show the rendered Markdown' }, 'Preview') : null;
  const exportBtn = h('button', { id: 'export', type: 'button', class: 'btn', title: 'Download the text' }, 'Export');
  const fileInput = h('input', { id: 'import-file', type: 'file', hidden: true, accept: 'text/*,.md,.markdown,.txt,.js,.mjs,.jsx,.ts,.tsx,.go,.py,.json,.css,.html,.htm' });
  const importBtn = h('button', { id: 'import', type: 'button', class: 'btn', title: 'Replace the text with a file (or drop a file on the text)' }, 'Import');
  const keysBtn = h('button', { id: 'shortcuts', type: 'button', class: 'btn', 'aria-label': 'Keyboard shortcuts', title: 'Keyboard shortcuts (?)' }, '?');
  const split = h('div', { class: 'split' }, editorEl, previewEl);
  root.replaceChildren(
    h(
      'header',
      { class: 'bar' },
      h('a', { class: 'brand', href: '/', 'aria-label': 'collabd: all documents' }, 'collabd'),
      h('h1', { class: 'doc-title', title: doc }, doc),
      h('span', { id: 'mode', class: 'mode', 'data-mode': mode.name }, mode.label),
      members,
      status,
      previewBtn,
      exportBtn,
      importBtn,
      fileInput,
      keysBtn,
      historyBtn,
    ),
    banner,
    syncNotice,
    notice,
    h('div', { class: 'workspace' }, h('main', { class: 'editor-wrap' }, split), panel),
  );

  // With a token the server names us after it: no need to ask.
  const claims = tokenClaims();
  // Without one, the document opens at once under the stored (or a
  // generated) name and colour; the own chip in the member list changes them.
  const stored = currentUser();
  const named = claims && typeof claims.sub === 'string' && claims.sub;
  const user = named ? { name: claims.sub, color: stored.color } : stored;
  let editor = null;
  const preview = new Preview(previewEl, () => (editor ? editor.text() : ''));
  // A file dropped on the text replaces it (after a confirmation) instead of
  // CodeMirror's default of inserting the file's text at the drop point.
  const dropFile = EditorView.domEventHandlers({
    drop(e) {
      if (!e.dataTransfer || e.dataTransfer.files.length === 0) return false;
      e.preventDefault();
      startImport(e.dataTransfer.files[0]);
      return true;
    },
  });
  const opened = await openDocument({ parent: editorEl, doc, user, extensions: [preview.extension(), dropFile] });
  const session = opened.session;
  editor = opened.editor;
  window.collabd = { ...(window.collabd || {}), session, editor, preview, language: opened.language };

  // The preview: beside the text on wide screens (on by default), instead of
  // it on narrow ones (off by default, so the text shows first).
  if (previewBtn) {
    const setPreview = (on) => {
      previewBtn.setAttribute('aria-pressed', String(on));
      split.classList.toggle('previewing', on);
      preview.show(on);
    };
    previewBtn.addEventListener('click', () => setPreview(!preview.on));
    setPreview(!window.matchMedia('(max-width: 44rem)').matches);
  }

  // Import outcomes: a note under the header (errors in the banner).
  const note = (msg, error = false) => {
    if (error) {
      session.fail(msg);
      return;
    }
    notice.textContent = msg;
    notice.hidden = !msg;
  };
  exportBtn.addEventListener('click', () => download(fileName(doc, mode.ext), editor.text()));
  importBtn.addEventListener('click', () => fileInput.click());
  fileInput.addEventListener('change', () => {
    const f = fileInput.files && fileInput.files[0];
    fileInput.value = '';
    if (f) startImport(f);
  });
  previewEl.addEventListener('dragover', (e) => e.preventDefault());
  previewEl.addEventListener('drop', (e) => {
    if (!e.dataTransfer || e.dataTransfer.files.length === 0) return;
    e.preventDefault();
    startImport(e.dataTransfer.files[0]);
  });
  async function startImport(file) {
    if (session.readOnly) {
      note('This document is view only: nothing can be imported.', true);
      return;
    }
    try {
      const msg = await importFile({ file, doc, session });
      if (msg) note(msg, !msg.startsWith('Imported'));
    } catch (err) {
      note(`Could not import ${file.name}: ${err.message}`, true);
    }
  }

  keysBtn.addEventListener('click', () => showShortcuts(markdown));
  document.addEventListener('keydown', (e) => {
    // "?" outside any text field shows the list (inside the text it types a "?").
    if (e.key !== '?' || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    const t = /** @type {HTMLElement} */ (e.target);
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || t.closest('dialog'))) return;
    e.preventDefault();
    showShortcuts(markdown);
  });

  const history = new HistoryPanel({ session, root: panel, onClose: () => toggleHistory(false), onDownload: (rev, text) => download(fileName(doc, mode.ext, rev), text) });
  window.collabd.history = history;
  function toggleHistory(open) {
    panel.hidden = !open;
    historyBtn.setAttribute('aria-expanded', String(open));
    document.body.classList.toggle('history-open', open);
    if (open) {
      history.load(true);
      panel.querySelector('button')?.focus();
    } else {
      historyBtn.focus();
    }
  }
  historyBtn.addEventListener('click', () => toggleHistory(panel.hidden));
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') toggleHistory(false);
  });

  let me = user;
  let membersKey = '';
  const render = () => {
    const st = session.status;
    const n = session.pendingEdits;
    let text = STATUS_TEXT[st];
    if (st !== 'online' && n > 0) text += ` · ${n} edit${n === 1 ? '' : 's'} waiting`;
    if (session.readOnly) text += ' · view only';
    // A viewer cannot replace the text.
    importBtn.disabled = session.readOnly;
    // Touch the live regions only when their text changes, so screen
    // readers do not announce every keystroke.
    status.dataset.state = st;
    status.dataset.pending = String(n);
    const label = status.querySelector('.status-text');
    if (label.textContent !== text) label.textContent = text;
    syncNotice.hidden = !session.notice;
    if (syncText.textContent !== (session.notice || '')) syncText.textContent = session.notice || '';
    banner.hidden = !session.error;
    if (banner.textContent !== (session.error || '')) banner.textContent = session.error || '';
    const key = JSON.stringify([me, [...session.members.values()].map((m) => [m.client, m.user])]);
    if (key === membersKey) return;
    membersKey = key;
    const chips = [
      h(
        'li',
        { class: 'member self', 'data-client': session.client.client, style: { '--c': me.color } },
        h('button', { type: 'button', class: 'chip', title: 'Change your name and colour', onclick: changeName }, h('span', { class: 'avatar', 'aria-hidden': 'true' }, initial(me.name)), h('span', { class: 'name' }, `${me.name} (you)`)),
      ),
    ];
    for (const m of session.members.values()) {
      const u = m.user || { name: 'anonymous', color: '#888888' };
      chips.push(h('li', { class: 'member', 'data-client': m.client, style: { '--c': u.color }, title: u.name }, h('span', { class: 'chip' }, h('span', { class: 'avatar', 'aria-hidden': 'true' }, initial(u.name)), h('span', { class: 'name' }, u.name))));
    }
    members.replaceChildren(...chips);
  };
  async function changeName() {
    const picked = await askUser();
    // With a token the server keeps the token's name; the colour is ours.
    me = named ? { name: claims.sub, color: picked.color } : picked;
    session.user = me;
    session.rejoin();
    render();
  }
  syncDismiss.addEventListener('click', () => session.dismissNotice());
  // A token stored by another tab (opened with #token=...) renews an ended one here.
  window.addEventListener('storage', (e) => {
    if (e.key !== 'collabd:token' || !e.newValue) return;
    if (!session.expired && !(session.error && /Not authorized/.test(session.error))) return;
    session.useToken(e.newValue).then(
      () => {
        session.notice = 'Your access was renewed with the token opened in another tab; your edits were kept.';
        session.changed();
      },
      (err) => session.fail(`The new token was refused (${err.message}).`),
    );
  });
  session.onChange(render);
  session.onChange(() => history.follow());
  render();
}

function initial(name) {
  const first = [...(name || '?').trim()][0] || '?';
  return first.toUpperCase();
}
