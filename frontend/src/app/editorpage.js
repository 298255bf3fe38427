// The editor page /d/{id}: header with the members and the connection
// indicator, the editor, and the history panel.

import { h } from './dom.js';
import { HistoryPanel } from './history.js';
import { openDocument } from './open.js';
import { askUser, savedUser } from './user.js';
import { tokenClaims } from './api.js';
import { randomColor } from './ids.js';

const STATUS_TEXT = {
  connecting: 'Connecting…',
  joining: 'Syncing…',
  online: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

export async function editorPage(root, doc) {
  document.title = `${doc} · collabd`;
  const status = h('span', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite', 'data-state': 'connecting' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), h('span', { class: 'status-text' }, STATUS_TEXT.connecting));
  const members = h('ul', { id: 'members', class: 'members', 'aria-label': 'People in this document' });
  const historyBtn = h('button', { id: 'history-toggle', type: 'button', class: 'btn', 'aria-expanded': 'false', 'aria-controls': 'history' }, 'History');
  const banner = h('p', { id: 'banner', class: 'banner', role: 'alert', hidden: true });
  const editorEl = h('div', { id: 'editor', class: 'editor' });
  const panel = h('aside', { id: 'history', class: 'history', hidden: true });
  root.replaceChildren(
    h(
      'header',
      { class: 'bar' },
      h('a', { class: 'brand', href: '/', 'aria-label': 'collabd: all documents' }, 'collabd'),
      h('h1', { class: 'doc-title', title: doc }, doc),
      members,
      status,
      historyBtn,
    ),
    banner,
    h('div', { class: 'workspace' }, h('main', { class: 'editor-wrap' }, editorEl), panel),
  );

  // With a token the server names us after it: no need to ask.
  const claims = tokenClaims();
  const saved = savedUser();
  const user = claims && typeof claims.sub === 'string' && claims.sub ? { name: claims.sub, color: saved ? saved.color : randomColor() } : saved || (await askUser());
  const { session, editor } = await openDocument({ parent: editorEl, doc, user });
  window.collabd = { ...(window.collabd || {}), session, editor };

  const history = new HistoryPanel({ session, root: panel, onClose: () => toggleHistory(false) });
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
    // Touch the live regions only when their text changes, so screen
    // readers do not announce every keystroke.
    status.dataset.state = st;
    status.dataset.pending = String(n);
    const label = status.querySelector('.status-text');
    if (label.textContent !== text) label.textContent = text;
    banner.hidden = !session.error;
    if (banner.textContent !== (session.error || '')) banner.textContent = session.error || '';
    const key = JSON.stringify([me, [...session.members.values()].map((m) => [m.client, m.user])]);
    if (key === membersKey) return;
    membersKey = key;
    const chips = [
      h(
        'li',
        { class: 'member self', 'data-client': session.client.client, style: { '--c': me.color } },
        h('button', { type: 'button', class: 'chip', title: 'Change your name', onclick: changeName }, h('span', { class: 'avatar', 'aria-hidden': 'true' }, initial(me.name)), h('span', { class: 'name' }, `${me.name} (you)`)),
      ),
    ];
    for (const m of session.members.values()) {
      const u = m.user || { name: 'anonymous', color: '#888888' };
      chips.push(h('li', { class: 'member', 'data-client': m.client, style: { '--c': u.color }, title: u.name }, h('span', { class: 'chip' }, h('span', { class: 'avatar', 'aria-hidden': 'true' }, initial(u.name)), h('span', { class: 'name' }, u.name))));
    }
    members.replaceChildren(...chips);
  };
  async function changeName() {
    me = await askUser();
    session.user = me;
    session.rejoin();
    render();
  }
  session.onChange(render);
  session.onChange(() => history.follow());
  render();
}

function initial(name) {
  const first = [...(name || '?').trim()][0] || '?';
  return first.toUpperCase();
}
