// The history panel: a timeline of revisions (doc:history, paged), the text
// of one revision (doc:revision), its diff against the current text or
// another revision (doc:diff), and "restore this version" (doc:restore);
// named versions (doc:versions, doc:version, doc:version:create, :rename,
// :delete); the range folded by the retention policy as one line.

import { putText } from './api.js';
import { CODE, DEFAULT_HISTORY_LIMIT } from './contract.js';
import { fullTime, h, timeAgo, ask } from './dom.js';

/** Revisions per page of the timeline: the server's default page. */
const PAGE = DEFAULT_HISTORY_LIMIT;
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

/** Revisions of one author closer together than this form one entry. */
const GROUP_MS = 2 * 60 * 1000;

/**
 * groupRevs folds history lines (newest first) into entries: consecutive
 * revisions by the same author (client and name) at most GROUP_MS apart.
 * Each entry is {rev (its newest), first (its oldest), user, client, time
 * (newest), ins, del, count}.
 * @param {{rev: number, client: string, user: string, time: string, ins: number, del: number}[]} revs
 */
export function groupRevs(revs) {
  const out = [];
  for (const r of revs) {
    if (r.folded) {
      // The range the retention policy folded: one line, never grouped.
      out.push({ rev: r.rev, first: r.from || 1, folded: true, count: 0 });
      continue;
    }
    const g = out[out.length - 1];
    if (g && !g.folded && g.client === r.client && g.user === r.user && Date.parse(g.oldest) - Date.parse(r.time) <= GROUP_MS && g.first === r.rev + 1) {
      g.first = r.rev;
      g.oldest = r.time;
      g.ins += r.ins || 0;
      g.del += r.del || 0;
      g.count++;
    } else {
      out.push({ rev: r.rev, first: r.rev, user: r.user, client: r.client, time: r.time, oldest: r.time, ins: r.ins || 0, del: r.del || 0, count: 1 });
    }
  }
  return out;
}

export class HistoryPanel {
  /**
   * @param {object} opts
   * @param {import('./session.js').DocSession} opts.session
   * @param {HTMLElement} opts.root the panel element
   * @param {() => void} opts.onClose
   * @param {(rev: number, text: string) => void} [opts.onDownload] saves a revision's text as a file
   */
  constructor({ session, root, onClose, onDownload }) {
    this.session = session;
    this.onDownload = onDownload;
    this.root = root;
    this.revs = [];
    /** counts history requests; see load */
    this.generation = 0;
    this.selected = null;
    this.compare = 'current';
    this.mode = 'changes';
    /** @type {{name: string, rev: number, user: string, time: string}[]} */
    this.versions = [];
    /** the name of the selected version (null: a revision, or nothing, is selected) */
    this.selectedVersion = null;
    this.versionList = h('ol', { class: 'versions', 'aria-label': 'Named versions' });
    this.versionNote = h('p', { class: 'muted version-note', role: 'status' });
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
      h(
        'div',
        { class: 'panel-body' },
        h(
          'div',
          { class: 'section-head' },
          h('h3', {}, 'Named versions'),
          h('button', { class: 'btn small name-current', type: 'button', onclick: () => this.nameVersion(0) }, 'Name current version'),
        ),
        this.versionList,
        this.versionNote,
        h('h3', { class: 'section-title' }, 'Revisions'),
        this.list,
        this.more,
        this.note,
        this.detail,
      ),
    );
    root.setAttribute('aria-labelledby', 'history-title');
    session.onVersionsChanged?.((e) => this.onVersionsChanged(e));
  }

  /**
   * onVersionsChanged follows a change of the named versions made
   * elsewhere (another editor, another tab, the HTTP API): the open panel
   * reloads the list and says what happened; a closed one loads it when
   * opened.
   */
  onVersionsChanged({ action, name, version }) {
    if (this.root.hidden) return;
    if (action === 'rename' && version && this.selectedVersion === name) this.selectedVersion = version.name;
    let note = '';
    if (action === 'create' && version) note = `${version.user || 'Someone'} named revision #${version.rev} “${version.name}”.`;
    else if (action === 'rename' && version) note = `“${name}” was renamed to “${version.name}”.`;
    else if (action === 'delete') note = `The version “${name}” was deleted.`;
    void this.loadVersions().then(() => {
      if (note) this.versionNote.textContent = note;
      if (action === 'rename' && version && this.selectedVersion === version.name) return this.renderVersionDetail();
    });
  }

  /**
   * follow refreshes the newest page a second after the document moved on,
   * while the panel is open (armed by edits, not a polling loop).
   */
  follow() {
    if (this.root.hidden || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = 0;
      if (!this.root.hidden && this.session.client.rev !== this.loadedAt) this.load(true);
    }, 1000);
  }

  /**
   * load fetches the newest page (reset) or the next older one. Only the
   * answer to the newest request is used: a late one would put an older
   * view of the history (say, from before a fold) back in the list, or
   * append a page to a list it does not continue.
   */
  async load(reset) {
    if (reset) void this.loadVersions();
    const generation = ++this.generation;
    const before = reset || this.revs.length === 0 ? 0 : this.revs[this.revs.length - 1].rev;
    if (this.revs.length === 0) this.note.textContent = 'Loading…';
    try {
      const at = this.session.client.rev;
      const ack = await this.session.request('doc:history', { before, limit: PAGE });
      if (generation !== this.generation) return;
      if (reset) {
        this.revs = [];
        this.loadedAt = at;
      }
      this.revs.push(...ack.revs);
      this.note.textContent = this.revs.length === 0 ? 'No revisions yet.' : '';
      const last = this.revs[this.revs.length - 1];
      this.more.hidden = ack.revs.length < PAGE || (last && (last.rev <= 1 || last.folded));
      this.renderList();
    } catch (err) {
      if (generation === this.generation) this.note.textContent = `Could not load the history: ${err.message}`;
    }
  }

  renderList() {
    this.groups = groupRevs(this.revs);
    const focused = this.list.contains(document.activeElement) ? document.activeElement.getAttribute('data-rev') : null;
    this.list.replaceChildren(
      ...this.groups.map((g) =>
        g.folded
          ? h(
              'li',
              { class: 'folded', 'data-folded': g.rev, title: 'The retention policy keeps only the newer revisions; named versions keep their text' },
              `Revisions ${g.first}–${g.rev}, folded`,
            )
          : h(
          'li',
          {},
          h(
            'button',
            {
              type: 'button',
              class: 'rev',
              'data-rev': g.rev,
              'data-first': g.first,
              'aria-pressed': this.selected === g.rev ? 'true' : 'false',
              title: g.count > 1 ? `${g.count} revisions, #${g.first} to #${g.rev}` : `revision #${g.rev}`,
              onclick: () => this.select(g.rev),
            },
            h('span', { class: 'rev-num' }, `#${g.rev}`),
            h('span', { class: 'rev-user' }, g.user || 'anonymous'),
            h('time', { datetime: g.time, title: fullTime(g.time) }, timeAgo(g.time)),
            h(
              'span',
              { class: 'rev-stat' },
              g.ins ? h('span', { class: 'ins' }, `+${g.ins}`) : null,
              g.del ? h('span', { class: 'del' }, `−${g.del}`) : null,
              g.count > 1 ? h('span', { class: 'muted' }, `${g.count} edits since #${g.first - 1}`) : null,
            ),
          ),
        ),
      ),
    );
    if (focused) this.list.querySelector(`[data-rev="${focused}"]`)?.focus();
  }

  /** select shows revision rev. */
  async select(rev) {
    this.selected = rev;
    this.selectedVersion = null;
    this.renderVersions();
    this.renderList();
    await this.renderDetail();
  }

  async renderDetail() {
    const rev = this.selected;
    if (rev === null) return;
    const head = this.session.client.rev;
    const info = (this.groups || []).find((g) => g.rev === rev);
    const prev = info ? info.first - 1 : rev - 1;
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
      prev >= 0 ? h('option', { value: 'before' }, `Before these changes (#${prev})`) : null,
      ...(this.groups || []).filter((g) => g.rev !== rev && !g.folded).map((g) => h('option', { value: String(g.rev) }, `#${g.rev} · ${g.user || 'anonymous'}`)),
    );
    select.value = this.compare;
    if (select.value !== this.compare) {
      this.compare = 'current';
      select.value = 'current';
    }
    const other = this.compare === 'current' ? head : this.compare === 'before' ? prev : Number(this.compare);
    // Diffs go from the older revision to the newer one.
    const from = Math.min(rev, other);
    const to = Math.max(rev, other);
    const body = h('div', { class: 'rev-body', 'aria-busy': 'true' }, 'Loading…');
    const tabs = h(
      'div',
      { class: 'tabs', role: 'group', 'aria-label': 'View' },
      h('button', { type: 'button', class: 'tab', 'aria-pressed': String(this.mode === 'changes'), onclick: () => this.setMode('changes') }, 'Changes'),
      h('button', { type: 'button', class: 'tab', 'aria-pressed': String(this.mode === 'text'), onclick: () => this.setMode('text') }, 'Full text'),
    );
    const restore = h('button', { type: 'button', class: 'btn danger restore', onclick: () => this.restore(rev) }, 'Restore this version');
    const save = this.onDownload ? h('button', { type: 'button', class: 'btn download', onclick: () => this.download(rev) }, 'Download this version') : null;
    const name = h('button', { type: 'button', class: 'btn name-rev', onclick: () => this.nameVersion(rev) }, 'Name this revision');
    this.detail.replaceChildren(
      h('h3', {}, `Revision #${rev}`),
      h('p', { class: 'muted' }, info ? `${info.user || 'anonymous'} · ${fullTime(info.time)}${info.count > 1 ? ` · ${info.count} edits since #${prev}` : ''}` : ''),
      h('label', { class: 'compare', for: 'compare-with' }, 'Compare with '),
      select,
      tabs,
      body,
      h('div', { class: 'rev-actions' }, name, save, restore),
    );
    try {
      if (this.mode === 'text') {
        const ack = await this.session.request('doc:revision', { rev });
        if (this.selected !== rev) return;
        body.replaceChildren(h('pre', { class: 'rev-text' }, ack.text));
      } else {
        const ack = await this.session.request('doc:diff', { from, to });
        if (this.selected !== rev) return;
        const changed = ack.diffs.some(([op]) => op !== 0);
        body.replaceChildren(
          h('p', { class: 'legend muted' }, h('ins', {}, 'added'), ' and ', h('del', {}, 'removed'), ` from #${from} to ${to === head && this.compare === 'current' ? 'the current version' : `#${to}`}`),
          changed ? h('pre', { class: 'diff' }, diffView(ack.diffs)) : h('p', { class: 'muted' }, 'No differences.'),
        );
      }
    } catch (err) {
      if (this.selected !== rev) return;
      body.replaceChildren(h('p', { class: 'error' }, loadError(err)));
    }
    body.removeAttribute('aria-busy');
  }

  setMode(mode) {
    this.mode = mode;
    if (this.selectedVersion !== null) this.renderVersionDetail();
    else this.renderDetail();
  }

  // ---- named versions

  /** loadVersions fetches the named versions (doc:versions), newest revision first. */
  async loadVersions() {
    try {
      const ack = await this.session.request('doc:versions', {});
      this.versions = ack.versions || [];
      // The note keeps the outcome of the last action; only the empty list's line goes.
      const empty = 'No named versions yet.';
      if (this.versions.length === 0) this.versionNote.textContent = empty;
      else if (this.versionNote.textContent === empty || this.versionNote.textContent.startsWith('Could not load')) this.versionNote.textContent = '';
      if (this.selectedVersion !== null && !this.versions.some((v) => v.name === this.selectedVersion)) {
        this.selectedVersion = null;
        this.detail.replaceChildren();
      }
      this.renderVersions();
    } catch (err) {
      this.versionNote.textContent = `Could not load the named versions: ${err.message}`;
    }
  }

  renderVersions() {
    const focused = this.versionList.contains(document.activeElement) ? document.activeElement.getAttribute('data-name') : null;
    this.versionList.replaceChildren(
      ...this.versions.map((v) =>
        h(
          'li',
          {},
          h(
            'button',
            {
              type: 'button',
              class: 'version',
              'data-name': v.name,
              'data-rev': v.rev,
              'aria-pressed': this.selectedVersion === v.name ? 'true' : 'false',
              title: `“${v.name}”: revision #${v.rev}, named by ${v.user || 'anonymous'}, ${fullTime(v.time)}`,
              onclick: () => this.selectVersion(v.name),
            },
            h('span', { class: 'version-name' }, v.name),
            h('span', { class: 'rev-num' }, `#${v.rev}`),
            h('span', { class: 'rev-user' }, v.user || 'anonymous'),
            h('time', { datetime: v.time, title: fullTime(v.time) }, timeAgo(v.time)),
          ),
        ),
      ),
    );
    if (focused) [...this.versionList.querySelectorAll('.version')].find((b) => b.getAttribute('data-name') === focused)?.focus();
  }

  /** selectVersion shows the named version name. */
  async selectVersion(name) {
    this.selectedVersion = name;
    this.selected = null;
    this.renderVersions();
    this.renderList();
    await this.renderVersionDetail();
  }

  async renderVersionDetail() {
    const name = this.selectedVersion;
    const v = this.versions.find((x) => x.name === name);
    if (!v) return;
    const head = this.session.client.rev;
    const body = h('div', { class: 'rev-body', 'aria-busy': 'true' }, 'Loading…');
    const tabs = h(
      'div',
      { class: 'tabs', role: 'group', 'aria-label': 'View' },
      h('button', { type: 'button', class: 'tab', 'aria-pressed': String(this.mode === 'changes'), onclick: () => this.setMode('changes') }, 'Changes'),
      h('button', { type: 'button', class: 'tab', 'aria-pressed': String(this.mode === 'text'), onclick: () => this.setMode('text') }, 'Full text'),
    );
    const btn = (cls, label, fn, danger = false) => h('button', { type: 'button', class: `btn ${cls}${danger ? ' danger' : ''}`, onclick: fn }, label);
    this.detail.replaceChildren(
      h('h3', {}, `Version “${v.name}”`),
      h('p', { class: 'muted' }, `Revision #${v.rev} · named by ${v.user || 'anonymous'} · ${fullTime(v.time)}`),
      tabs,
      body,
      h(
        'div',
        { class: 'rev-actions' },
        btn('rename-version', 'Rename', () => this.renameVersion(v.name)),
        btn('delete-version', 'Delete', () => this.deleteVersion(v.name)),
        this.onDownload ? btn('download', 'Download this version', () => this.downloadVersion(v.name)) : null,
        btn('restore', 'Restore this version', () => this.restoreVersion(v), true),
      ),
    );
    const stale = () => this.selectedVersion !== name;
    try {
      if (this.mode === 'text') {
        const ack = await this.session.request('doc:version', { name });
        if (stale()) return;
        body.replaceChildren(h('pre', { class: 'rev-text' }, ack.text));
      } else if (v.rev === head) {
        body.replaceChildren(h('p', { class: 'muted' }, 'This is the current version: no differences.'));
      } else {
        const ack = await this.session.request('doc:diff', { from: Math.min(v.rev, head), to: Math.max(v.rev, head) });
        if (stale()) return;
        const changed = ack.diffs.some(([op]) => op !== 0);
        body.replaceChildren(
          h('p', { class: 'legend muted' }, h('ins', {}, 'added'), ' and ', h('del', {}, 'removed'), ` from “${v.name}” (#${v.rev}) to the current version`),
          changed ? h('pre', { class: 'diff' }, diffView(ack.diffs)) : h('p', { class: 'muted' }, 'No differences.'),
        );
      }
    } catch (err) {
      if (stale()) return;
      body.replaceChildren(h('p', { class: 'error' }, loadError(err)));
    }
    body.removeAttribute('aria-busy');
  }

  /**
   * nameVersion asks for a name and names revision rev (0: the current
   * version) with doc:version:create.
   */
  async nameVersion(rev) {
    const input = h('input', { id: 'version-name', name: 'name', type: 'text', maxlength: '100', autocomplete: 'off', required: true, 'aria-label': 'Name' });
    const { value } = await ask(
      rev ? `Name revision #${rev}` : 'Name the current version',
      [h('label', { for: 'version-name' }, 'Name'), input, h('p', { class: 'muted' }, 'A named version keeps its text for good, whatever the retention policy folds.')],
      [
        { label: 'Cancel', value: 'cancel' },
        { label: 'Save', value: 'save', primary: true },
      ],
      () => input.focus(),
    );
    const name = input.value.trim();
    if (value !== 'save' || !name) return;
    try {
      const ack = await this.session.request('doc:version:create', rev ? { name, rev } : { name });
      this.versionNote.textContent = `Named revision #${ack.version.rev} “${ack.version.name}”.`;
      await this.loadVersions();
    } catch (err) {
      this.versionNote.textContent = err.code === CODE.CONFLICT ? `There is already a version named “${name}”.` : `Could not name the version: ${err.message}`;
    }
  }

  async renameVersion(name) {
    const input = h('input', { id: 'version-name', name: 'name', type: 'text', maxlength: '100', autocomplete: 'off', required: true, value: name, 'aria-label': 'New name' });
    const { value } = await ask(
      `Rename “${name}”`,
      [h('label', { for: 'version-name' }, 'New name'), input],
      [
        { label: 'Cancel', value: 'cancel' },
        { label: 'Rename', value: 'rename', primary: true },
      ],
      () => input.select(),
    );
    const to = input.value.trim();
    if (value !== 'rename' || !to || to === name) return;
    try {
      await this.session.request('doc:version:rename', { name, to });
      if (this.selectedVersion === name) this.selectedVersion = to;
      await this.loadVersions();
      this.versionNote.textContent = `Renamed “${name}” to “${to}”.`;
      if (this.selectedVersion === to) await this.renderVersionDetail();
    } catch (err) {
      this.versionNote.textContent = err.code === CODE.CONFLICT ? `There is already a version named “${to}”.` : `Could not rename: ${err.message}`;
    }
  }

  async deleteVersion(name) {
    const { value } = await ask(
      `Delete the version “${name}”?`,
      [h('p', {}, 'The name goes; the revision stays in the history while the retention policy keeps it.')],
      [
        { label: 'Cancel', value: 'cancel' },
        { label: 'Delete', value: 'delete', danger: true },
      ],
    );
    if (value !== 'delete') return;
    try {
      await this.session.request('doc:version:delete', { name });
      await this.loadVersions();
      this.versionNote.textContent = `Deleted the version “${name}”.`;
    } catch (err) {
      this.versionNote.textContent = `Could not delete: ${err.message}`;
    }
  }

  async downloadVersion(name) {
    try {
      const ack = await this.session.request('doc:version', { name });
      this.onDownload(ack.version.rev, ack.text);
    } catch (err) {
      this.versionNote.textContent = `Could not download: ${err.message}`;
    }
  }

  /**
   * restoreVersion makes the version's text current: doc:restore of its
   * revision (the server reads a folded revision's text from the version);
   * should the server still answer gone, the version's text goes in as a
   * PUT based on this page's revision (transformed over edits made since).
   */
  async restoreVersion(v) {
    const { value } = await ask(
      `Restore “${v.name}”?`,
      [h('p', {}, `The document will get a new revision with the text of “${v.name}” (revision #${v.rev}). Everyone sees it at once; the history keeps every version.`)],
      [
        { label: 'Cancel', value: 'cancel' },
        { label: 'Restore', value: 'restore', danger: true },
      ],
    );
    if (value !== 'restore') return;
    try {
      let rev;
      try {
        rev = (await this.session.request('doc:restore', { rev: v.rev })).rev;
      } catch (err) {
        if (err.code !== CODE.GONE) throw err;
        const { text } = await this.session.request('doc:version', { name: v.name });
        rev = await putText(this.session.doc, this.session.client.rev, text, this.session.origin || '');
      }
      this.versionNote.textContent = `Restored “${v.name}” as revision #${rev}.`;
      await this.load(true);
    } catch (err) {
      this.versionNote.textContent = `Could not restore: ${err.message}`;
    }
  }

  async download(rev) {
    try {
      const ack = await this.session.request('doc:revision', { rev });
      this.onDownload(ack.rev, ack.text);
    } catch (err) {
      this.note.textContent = `Could not download: ${err.message}`;
    }
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

/** loadError says why a revision's text or diff could not be shown. */
export function loadError(err) {
  if (err && err.code === CODE.GONE) {
    const kept = Number.isSafeInteger(err.earliest) ? ` The oldest revision still kept is #${err.earliest}.` : '';
    return `This revision was folded by the retention policy: its text is no longer kept (named versions keep theirs).${kept}`;
  }
  return `Could not load: ${err.message}`;
}
