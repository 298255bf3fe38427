// The history panel: a timeline of revisions (doc:history, paged), the text
// of one revision (doc:revision), its diff against the current text or
// another revision (doc:diff), and "restore this version" (doc:restore).

import { fullTime, h, timeAgo, ask } from './dom.js';

const PAGE = 50;
/** Unchanged stretches longer than this are shortened in the diff view. */
const CONTEXT = 160;

/**
 * diffView renders diff-match-patch diffs ([op, text] with -1 deleted,
 * 1 inserted, 0 unchanged) as DOM nodes; long unchanged parts are elided.
 * @param {[number, string][]} diffs
 */
export function diffView(diffs) {
  const out = [];
  diffs.forEach(([op, text], i) => {
    if (op === 1) out.push(h('ins', {}, text));
    else if (op === -1) out.push(h('del', {}, text));
    else if (text.length > CONTEXT * 2 + 20) {
      const head = i === 0 ? '' : text.slice(0, CONTEXT);
      const tail = i === diffs.length - 1 ? '' : text.slice(-CONTEXT);
      if (head) out.push(head);
      out.push(h('span', { class: 'elided' }, '⋯'));
      if (tail) out.push(tail);
    } else out.push(text);
  });
  return out;
}

export class HistoryPanel {
  /**
   * @param {object} opts
   * @param {import('./session.js').DocSession} opts.session
   * @param {HTMLElement} opts.root the panel element
   * @param {() => void} opts.onClose
   */
  constructor({ session, root, onClose }) {
    this.session = session;
    this.root = root;
    this.revs = [];
    this.selected = null;
    this.compare = 'current';
    this.mode = 'changes';
    this.list = h('ol', { class: 'revs', 'aria-label': 'Revisions' });
    this.more = h('button', { class: 'btn small', type: 'button', onclick: () => this.load(false) }, 'Load older');
    this.note = h('p', { class: 'muted', role: 'status' });
    this.detail = h('section', { class: 'rev-detail', 'aria-live': 'polite' });
    root.replaceChildren(
      h(
        'div',
        { class: 'panel-head' },
        h('h2', { id: 'history-title' }, 'History'),
        h('button', { class: 'btn small', type: 'button', onclick: () => this.load(true) }, 'Refresh'),
        h('button', { class: 'btn small icon', type: 'button', 'aria-label': 'Close history', onclick: onClose }, '✕'),
      ),
      h('div', { class: 'panel-body' }, this.list, this.more, this.note, this.detail),
    );
    root.setAttribute('aria-labelledby', 'history-title');
  }

  /** load fetches the newest page (reset) or the next older one. */
  async load(reset) {
    const before = reset || this.revs.length === 0 ? 0 : this.revs[this.revs.length - 1].rev;
    this.note.textContent = 'Loading…';
    try {
      const ack = await this.session.request('doc:history', { before, limit: PAGE });
      if (reset) this.revs = [];
      this.revs.push(...ack.revs);
      this.note.textContent = this.revs.length === 0 ? 'No revisions yet.' : '';
      this.more.hidden = ack.revs.length < PAGE || (this.revs.length > 0 && this.revs[this.revs.length - 1].rev <= 1);
      this.renderList();
    } catch (err) {
      this.note.textContent = `Could not load the history: ${err.message}`;
    }
  }

  renderList() {
    this.list.replaceChildren(
      ...this.revs.map((r) =>
        h(
          'li',
          {},
          h(
            'button',
            {
              type: 'button',
              class: 'rev',
              'data-rev': r.rev,
              'aria-pressed': this.selected === r.rev ? 'true' : 'false',
              onclick: () => this.select(r.rev),
            },
            h('span', { class: 'rev-num' }, `#${r.rev}`),
            h('span', { class: 'rev-user' }, r.user || 'anonymous'),
            h('time', { datetime: r.time, title: fullTime(r.time) }, timeAgo(r.time)),
            h('span', { class: 'rev-stat' }, r.ins ? h('span', { class: 'ins' }, `+${r.ins}`) : null, r.del ? h('span', { class: 'del' }, `−${r.del}`) : null),
          ),
        ),
      ),
    );
  }

  /** select shows revision rev. */
  async select(rev) {
    this.selected = rev;
    this.renderList();
    await this.renderDetail();
  }

  async renderDetail() {
    const rev = this.selected;
    if (rev === null) return;
    const head = this.session.client.rev;
    const info = this.revs.find((r) => r.rev === rev);
    const select = h(
      'select',
      {
        id: 'compare-with',
        onchange: (e) => {
          this.compare = e.target.value;
          this.renderDetail();
        },
      },
      h('option', { value: 'current' }, `Current version (#${head})`),
      ...this.revs.filter((r) => r.rev !== rev).map((r) => h('option', { value: String(r.rev) }, `#${r.rev} · ${r.user || 'anonymous'}`)),
    );
    select.value = this.compare;
    if (select.value !== this.compare) {
      this.compare = 'current';
      select.value = 'current';
    }
    const to = this.compare === 'current' ? head : Number(this.compare);
    const body = h('div', { class: 'rev-body', 'aria-busy': 'true' }, 'Loading…');
    const tabs = h(
      'div',
      { class: 'tabs', role: 'group', 'aria-label': 'View' },
      h('button', { type: 'button', class: 'tab', 'aria-pressed': String(this.mode === 'changes'), onclick: () => this.setMode('changes') }, 'Changes'),
      h('button', { type: 'button', class: 'tab', 'aria-pressed': String(this.mode === 'text'), onclick: () => this.setMode('text') }, 'Full text'),
    );
    const restore = h('button', { type: 'button', class: 'btn danger restore', onclick: () => this.restore(rev) }, 'Restore this version');
    this.detail.replaceChildren(
      h('h3', {}, `Revision #${rev}`),
      h('p', { class: 'muted' }, info ? `${info.user || 'anonymous'} · ${fullTime(info.time)}` : ''),
      h('label', { class: 'compare', for: 'compare-with' }, 'Compare with '),
      select,
      tabs,
      body,
      restore,
    );
    try {
      if (this.mode === 'text') {
        const ack = await this.session.request('doc:revision', { rev });
        if (this.selected !== rev) return;
        body.replaceChildren(h('pre', { class: 'rev-text' }, ack.text));
      } else {
        const ack = await this.session.request('doc:diff', { from: rev, to });
        if (this.selected !== rev) return;
        const changed = ack.diffs.some(([op]) => op !== 0);
        body.replaceChildren(
          h('p', { class: 'legend muted' }, h('ins', {}, 'added'), ' and ', h('del', {}, 'removed'), ` from #${rev} to ${to === head ? 'the current version' : `#${to}`}`),
          changed ? h('pre', { class: 'diff' }, diffView(ack.diffs)) : h('p', { class: 'muted' }, 'No differences.'),
        );
      }
    } catch (err) {
      body.replaceChildren(h('p', { class: 'error' }, `Could not load: ${err.message}`));
    }
    body.removeAttribute('aria-busy');
  }

  setMode(mode) {
    this.mode = mode;
    this.renderDetail();
  }

  async restore(rev) {
    const { value } = await ask(
      `Restore revision #${rev}?`,
      [h('p', {}, 'The document will get a new revision with the text of this version. Everyone sees it at once; the history keeps every version.')],
      [
        { label: 'Cancel', value: 'cancel' },
        { label: 'Restore', value: 'restore', danger: true },
      ],
    );
    if (value !== 'restore') return;
    try {
      const ack = await this.session.request('doc:restore', { rev });
      this.note.textContent = `Restored revision #${rev} as #${ack.rev}.`;
      await this.load(true);
    } catch (err) {
      this.note.textContent = `Could not restore: ${err.message}`;
    }
  }
}
