// DocSession: one open document. It joins the document over a Socket.IO
// socket, runs local and remote edits through the OT client, keeps unsent
// edits in the Store, and tracks members and their cursors.
//
// Everything here reacts to events (socket, editor, timers armed by an
// event); nothing polls. Acks are handled inside their callbacks,
// synchronously, before the next broadcast is processed.

import { Text } from '@codemirror/state';
import { OTClient, RevisionGapError, SYNCHRONIZED } from '../ot/client.js';
import { changeSetFromOp } from '../ot/codemirror.js';
import { apply as applyOp, compose, transformIndex } from '../ot/operation.js';
import { CODE, MAX_HISTORY_LIMIT, MAX_SELECTIONS } from './contract.js';
import { insertsOnly, missedSince, textsToOp } from './recover.js';
import { unapplyIndex } from './presence.js';

/** How many server ops to keep for moving presence positions forward. */
const RECENT = 1000;
/** Presence is sent at most this often (ms). */
const PRESENCE_MS = 120;
/** Entries are saved at most this often (ms) while edits are unsent, and while synchronized. */
const SAVE_UNSENT_MS = 200;
const SAVE_SYNCED_MS = 2000;
/** A delta record bigger than this (inserted characters) is replaced by a full write. */
const DELTA_MAX = 64 * 1024;

/**
 * @typedef {object} Editor what the session needs of the editor (see createEditor)
 * @property {(op: any) => void} applyRemote
 * @property {(text: string) => void} setText
 * @property {() => string} text
 * @property {(on: boolean) => void} setReadOnly
 * @property {() => {anchor: number, head: number}[]} selection
 * @property {(client: string, name: string, color: string, ranges: any) => void} setRemoteCursor
 */

/**
 * @typedef {object} Member
 * @property {string} client
 * @property {{name: string, color: string}} user
 * @property {{anchor: number, head: number}[]} [sel]
 * @property {number} [rev]
 */

export class DocSession {
  /**
   * @param {object} opts
   * @param {string} opts.doc document id
   * @param {import('./store.js').Store} opts.store
   * @param {import('./store.js').Slot} opts.slot this page's entry (from store.claim)
   * @param {{name: string, color: string}} opts.user
   * @param {() => any} opts.connect returns a new socket.io-client socket (not yet connected)
   * @param {boolean} [opts.readOnly] the user may only view (known from the token)
   * @param {() => Promise<string> | string} [opts.getToken] a fresh token, when the token ends
   */
  constructor({ doc, store, slot, user, connect, readOnly = false, getToken = null }) {
    this.getToken = getToken;
    /** the server ended this connection's token (auth:expired) and it was not renewed yet */
    this.expired = false;
    this.renewing = false;
    this.doc = doc;
    this.store = store;
    this.slot = slot;
    this.user = user;
    this.connect = connect;
    /** @type {Editor | null} */
    this.editor = null;
    const saved = slot.saved;
    /** @type {OTClient} */
    this.client = saved ? OTClient.fromJSON(saved.state) : new OTClient({ client: slot.client, rev: 0 });
    /** true until the first join ack: the text is not known yet */
    this.fresh = !saved;
    /** local edits not yet acknowledged (for the indicator) */
    this.edits = saved ? saved.edits || 0 : 0;
    /** @type {Map<string, Member>} the other members */
    this.members = new Map();
    /** @type {Map<number, any>} server ops by revision, for presence */
    this.recent = new Map();
    /** the last error shown to the user, if any */
    this.error = null;
    this.readOnly = readOnly;
    this.joined = false;
    this.joinGen = 0;
    this.retryMs = 1000;
    this.timers = { presence: 0, save: 0, retry: 0 };
    this.lastPresence = '';
    /** @type {Set<() => void>} */
    this.listeners = new Set();
    /** @type {Set<(e: {action: string, name: string, version?: object}) => void>} */
    this.versionListeners = new Set();
    this.closed = false;
    /** figures for the benchmark: time of the last remote op's arrival and display */
    this.lastRemote = { arrived: 0, applied: 0 };
    /** how long the last save took (ms) */
    this.lastSaveMs = 0;
    /**
     * the last full write and the local edits since ({saved, op}), while
     * only local edits changed the text: saves write just the delta then.
     * null: the next save writes the text.
     */
    this.deltaBase = null;
    /** full and delta saves so far (for tests) */
    this.saveCounts = { full: 0, delta: 0 };
    /** joins answered with the text whose unsent edits were rebased (see recover) */
    this.recovered = 0;
    /**
     * the server's text at a revision ({rev, doc}: a CodeMirror Text, so
     * keeping it costs nothing while synchronized, and a remote op applies
     * in O(log n)): the base of the unacknowledged edits, for a rebase
     * when the server no longer keeps that revision (gone). null: unknown
     * (after a reload with unsent edits).
     */
    this.base = null;
    /** rebases after a gone (the base revision was folded by the retention policy) */
    this.goneRebases = 0;
    const sb = saved && saved.serverBase;
    if (sb && typeof sb.text === 'string' && saved.state && sb.rev === saved.state.rev) this.base = { rev: sb.rev, doc: textOf(sb.text) };
    /** a non-blocking notice for the reader (what happened to their edits), or null */
    this.notice = null;
    /** join without rev once (a resuming join answered gone) */
    this.joinFresh = false;
    /** records that arrived while joining, for the base */
    this.baseEarly = [];
  }

  /** text to show before joining: the saved text, or null when nothing is known. */
  get initialText() {
    return this.slot.saved ? this.slot.saved.text : null;
  }

  /** onChange registers fn to run after every change of status, members or pending edits. */
  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed() {
    for (const fn of this.listeners) fn();
  }

  /**
   * onVersionsChanged registers fn to run when another socket or the HTTP
   * API created, renamed or deleted a named version of the document
   * (doc:versions:changed {doc, action, name, version?}).
   */
  onVersionsChanged(fn) {
    this.versionListeners.add(fn);
    return () => this.versionListeners.delete(fn);
  }

  /**
   * status is one of "connecting" (first connection), "joining", "online",
   * "reconnecting" (the connection dropped, retrying), "offline" (the browser
   * says there is no network).
   */
  get status() {
    if (this.socket && this.socket.connected) return this.expired ? 'expired' : this.joined ? 'online' : 'joining';
    if (typeof navigator !== 'undefined' && navigator.onLine === false) return 'offline';
    return this.everConnected ? 'reconnecting' : 'connecting';
  }

  /** pendingEdits is the number of local edits the server has not acknowledged. */
  get pendingEdits() {
    return this.client.unsent ? Math.max(this.edits, 1) : 0;
  }

  /**
   * start attaches the editor and connects.
   * @param {Editor} editor
   */
  start(editor) {
    this.editor = editor;
    const socket = this.connect();
    this.socket = socket;
    socket.on('connect', () => {
      this.everConnected = true;
      this.expired = false; // a new connection: its token was accepted
      this.retryMs = 1000;
      this.join();
    });
    socket.on('disconnect', (reason) => {
      this.dropped();
      // The server closed this socket on purpose (for example while shutting
      // down): socket.io-client does not retry by itself then.
      if (reason === 'io server disconnect' && !this.closed) this.later('retry', () => socket.connect(), this.backoff());
    });
    socket.on('connect_error', (err) => {
      if (err && err.message === CODE.UNAUTHORIZED) {
        // The token ended while disconnected: renew it if the page can
        // (with the backoff: a backend handing out refused tokens is not
        // asked in a loop).
        if (this.getToken) {
          if (!this.renewing) this.later('renew', () => this.renewToken('expired'), this.backoff());
        } else this.fail('Not authorized to open this document.');
      }
      this.changed();
    });
    socket.on('auth:expired', (e) => this.onExpired(e));
    socket.io.on('reconnect_attempt', () => this.changed());
    socket.on('doc:op', (rec) => this.onRecord(rec));
    socket.on('doc:presence', (p) => this.onPresence(p));
    socket.on('doc:member', (m) => this.onMember(m));
    socket.on('doc:versions:changed', (e) => {
      if (!e || e.doc !== this.doc) return;
      for (const fn of this.versionListeners) fn(e);
    });
    if (typeof window !== 'undefined') {
      this.onNet = () => {
        if (navigator.onLine && !socket.connected && !socket.active) socket.connect();
        this.changed();
      };
      window.addEventListener('online', this.onNet);
      window.addEventListener('offline', this.onNet);
      // Leaving the page: a synchronous copy (an IndexedDB write started now
      // may not commit before the page is gone).
      this.onHide = () => this.saveNow(true);
      window.addEventListener('pagehide', this.onHide);
    }
    socket.connect();
    this.changed();
  }

  /** close leaves the document and disconnects (the entry stays if edits are unsent). */
  close() {
    this.closed = true;
    this.saveNow();
    for (const k of Object.keys(this.timers)) clearTimeout(this.timers[k]);
    if (typeof window !== 'undefined') {
      window.removeEventListener('online', this.onNet);
      window.removeEventListener('offline', this.onNet);
      window.removeEventListener('pagehide', this.onHide);
    }
    if (this.socket) this.socket.disconnect();
  }

  // ---- joining

  join() {
    if (!this.socket || !this.socket.connected) return;
    const gen = ++this.joinGen;
    this.joined = false;
    const j = this.client.join();
    const payload = { doc: this.doc, client: j.client, user: this.user };
    if (!this.fresh && !this.joinFresh) payload.rev = j.rev;
    this.joinFresh = false;
    this.baseEarly = [];
    this.socket.emit('doc:join', payload, (ack) => {
      if (gen !== this.joinGen || !this.socket.connected) return;
      this.onJoined(ack);
    });
    this.changed();
  }

  onJoined(ack) {
    if (!ack || !ack.ok) {
      const code = ack && ack.error ? ack.error.code : CODE.INTERNAL;
      if (code === CODE.FORBIDDEN) {
        this.fail('You do not have access to this document.');
        return;
      }
      if (code === CODE.GONE) {
        // Our revision was folded: join for the text, then rebase (recover).
        this.joinFresh = true;
        this.rejoin();
        return;
      }
      this.fail(`Could not open the document (${code}); retrying.`);
      this.later('retry', () => this.rejoin(), this.backoff());
      return;
    }
    let out;
    try {
      if (Array.isArray(ack.ops)) {
        for (const r of ack.ops) this.remember(r.rev, r.op);
        out = this.client.resume(ack.ops);
        for (const r of [...ack.ops, ...this.baseEarly]) this.advanceBase(r.rev, r.op);
        this.baseEarly = [];
      } else if (typeof ack.text === 'string') {
        if (this.client.unsent) {
          // The server's log no longer reaches back to our revision.
          this.recover(ack, this.joinGen);
          return;
        }
        this.deltaBase = null;
        this.editor.setText(ack.text);
        this.recent.clear();
        out = this.client.resetTo(ack.rev);
      } else {
        throw new Error('join ack without ops or text');
      }
    } catch (err) {
      this.client.disconnect();
      this.fail(`Could not resume (${err.message}); retrying.`);
      this.later('retry', () => this.rejoin(), this.backoff());
      return;
    }
    this.joinedWith(ack, out);
  }

  // joinedWith finishes a join: out is what the OT client returned.
  joinedWith(ack, out) {
    if (out.apply) this.applyRemote(out.apply);
    this.fresh = false;
    this.joined = true;
    if (!this.readOnly) this.error = null;
    this.retryMs = 1000;
    if (!this.readOnly) this.editor.setReadOnly(false);
    this.members.clear();
    for (const m of ack.members || []) {
      this.members.set(m.client, { client: m.client, user: m.user, sel: m.sel, rev: m.rev });
    }
    for (const m of this.members.values()) this.drawMember(m);
    if (this.client.state === SYNCHRONIZED) this.edits = 0;
    if (out.send) this.submit(out.send);
    this.syncBase();
    this.lastPresence = '';
    this.sendPresence();
    this.scheduleSave();
    this.changed();
  }

  /**
   * recover finishes a join answered with the text while local edits are
   * unacknowledged (more ops happened since our revision than the server
   * returns on a join). It asks the server whether our pending op is among
   * them (doc:history), and for the changes since our revision (doc:diff,
   * or doc:revision and a diff here when our op is among them), and rebases
   * the local edits over those changes. If anything fails the edits stay
   * saved and unsent, and the banner says so.
   */
  async recover(ack, gen) {
    const c = this.client;
    const stale = () => gen !== this.joinGen || !this.socket.connected;
    try {
      let rebased;
      try {
        const { missed, applied } = await missedSince(c, ack, (event, payload) => this.request(event, payload));
        if (stale()) return;
        rebased = () => c.rebase(ack.rev, missed, applied);
      } catch (err) {
        if (err.code !== CODE.GONE) throw err;
        if (stale()) return;
        rebased = await this.goneRebase(ack);
        if (!rebased) return;
      }
      this.recent.clear();
      const out = rebased();
      if (c.pending) {
        this.base = { rev: ack.rev, doc: textOf(ack.text) };
        for (const r of this.baseEarly) this.advanceBase(r.rev, r.op);
      }
      this.baseEarly = [];
      this.recovered++;
      this.joinedWith(ack, out);
    } catch (err) {
      if (stale()) return;
      c.disconnect();
      this.fail(`Your offline edits could not be merged (${err.message}); they are kept in this tab.`);
    }
  }

  /**
   * goneRebase prepares the rebase of the unacknowledged edits when the
   * server no longer keeps their base revision (folded by the retention
   * policy: doc:diff and doc:revision answer gone). It is a 3-way merge:
   * the base text (kept here, this.base), the local text, and the server's
   * text from the join ack; the local edits are transformed over the
   * change from the base to the server's text and sent as a new op (a new
   * seq). Without a known base (a reload with unsent edits), the local
   * insertions are kept and the local deletions are given up. It returns
   * a function doing the rebase (OTClient.rebase), or null when the join is
   * stale. The notice says what happened.
   */
  async goneRebase(ack) {
    const c = this.client;
    const gen = this.joinGen;
    const from = c.rev;
    const local = this.editor.text();
    // Was the pending op applied? Only the kept part of the history can say.
    let applied = false;
    let unsure = false;
    if (c.pending && c.pending.sent) {
      const found = await this.ownKeptRevision(from, ack.rev);
      if (gen !== this.joinGen || !this.socket.connected) return null;
      applied = found === true;
      unsure = found === null;
    }
    let missed;
    let lostDeletes = false;
    if (this.base && this.base.rev === from) {
      const base = this.base.doc.toString();
      missed = textsToOp(applied ? applyOp(base, c.pending.op) : base, ack.text);
    } else {
      // The base is unknown: keep what was typed, give up what was deleted.
      const kept = insertsOnly(c.localOp(), local);
      lostDeletes = kept.dropped;
      c.pending = { seq: c.pending.seq, op: kept.op, sent: c.pending.sent };
      c.buffer = null;
      applied = false;
      missed = textsToOp(kept.base, ack.text);
    }
    this.goneRebases++;
    const parts = [
      `Your edits were based on revision #${from}, which the server no longer keeps (its retention policy folded it).`,
      `Your text was kept and merged into the current version (#${ack.rev}) as a new edit.`,
    ];
    if (lostDeletes) parts.push('What you deleted offline may have come back: please check.');
    else if (unsure) parts.push('Your last edit may appear twice: please check.');
    else parts.push('Please check the result.');
    this.notice = parts.join(' ');
    return () => c.rebase(ack.rev, missed, applied, true);
  }

  /**
   * ownKeptRevision reports whether the kept history after revision from
   * holds an op of this client (true), does not (false), or cannot tell
   * because it reaches the folded range first (null).
   */
  async ownKeptRevision(from, head) {
    let before = head + 1;
    for (let pages = 0; pages < 50 && before > from + 1; pages++) {
      const { revs } = await this.request('doc:history', { before, limit: MAX_HISTORY_LIMIT });
      if (revs.length === 0) return null;
      for (const r of revs) {
        if (r.folded) return null;
        if (r.rev <= from) return false;
        if (r.client === this.client.client) return true;
      }
      before = revs[revs.length - 1].rev;
    }
    return null;
  }

  /** dismissNotice hides the notice. */
  dismissNotice() {
    this.notice = null;
    this.changed();
  }

  // syncBase notes the editor's text as the base while nothing is unsent.
  syncBase() {
    if (this.client.state === SYNCHRONIZED && this.editor && this.editor.view) this.base = { rev: this.client.rev, doc: this.editor.view.state.doc };
  }

  // advanceBase moves the base over the server's op of revision rev.
  advanceBase(rev, op) {
    const b = this.base;
    if (!b || rev <= b.rev) return;
    if (rev !== b.rev + 1) {
      this.base = null;
      return;
    }
    try {
      this.base = { rev, doc: changeSetFromOp(op, b.doc, '\n').apply(b.doc) };
    } catch {
      this.base = null;
    }
  }

  // ---- tokens that end (auth:expired, auth:refresh)

  /**
   * onExpired handles auth:expired: the server ended our memberships and
   * answers everything but auth:refresh with forbidden. Edits stay local
   * (pending, saved). With getToken the session asks it for a new token,
   * sends auth:refresh, rejoins and resends; without, the editor turns
   * read-only and the notice says why.
   */
  onExpired(e) {
    this.expired = true;
    this.joinGen++;
    this.joined = false;
    this.client.disconnect();
    for (const client of this.members.keys()) this.editor.setRemoteCursor(client, '', '', null);
    this.members.clear();
    this.saveNow();
    const why = e && e.reason === 'revoked' ? 'revoked' : 'expired';
    if (this.getToken) {
      this.notice = `Your access ${why === 'revoked' ? 'was revoked' : 'expired'}; renewing it… Your edits are kept.`;
      void this.renewToken(why);
    } else {
      this.editor.setReadOnly(true);
      this.notice = `Your access ${why === 'revoked' ? 'was revoked' : 'expired'}: the document is read-only until you open it with a new token. Unsent edits are kept in this tab.`;
    }
    this.changed();
  }

  /** renewToken gets a new token from getToken and uses it. */
  async renewToken(why = 'expired') {
    if (this.renewing || !this.getToken) return;
    this.renewing = true;
    try {
      const token = await this.getToken();
      if (typeof token !== 'string' || token === '') throw new Error('no token');
      await this.useToken(token);
      this.notice = `Your access ${why === 'revoked' ? 'was revoked' : 'expired'} and was renewed; your edits were kept.`;
    } catch (err) {
      this.editor.setReadOnly(true);
      this.notice = `Your access ${why === 'revoked' ? 'was revoked' : 'expired'} and could not be renewed (${err.message}): the document is read-only. Unsent edits are kept in this tab.`;
    } finally {
      this.renewing = false;
      this.changed();
    }
  }

  /**
   * useToken replaces the connection's token: auth:refresh on the open
   * connection, then a rejoin that resends the pending edits (same seq:
   * exactly once); on a closed connection, the next connect uses it.
   */
  async useToken(token) {
    const socket = this.socket;
    socket.auth = { ...(socket.auth || {}), token };
    if (!socket.connected) {
      if (!socket.active) socket.connect();
      return;
    }
    await this.request('auth:refresh', { token });
    if (socket !== this.socket) return;
    this.expired = false;
    if (this.error && /Not authorized/.test(this.error)) this.error = null;
    if (!this.readOnly) this.editor.setReadOnly(false);
    this.client.disconnect();
    this.join();
  }

  /** rejoin joins again on the same socket (after an error). */
  rejoin() {
    if (!this.socket || !this.socket.connected) return;
    this.client.disconnect();
    this.join();
  }

  dropped() {
    this.joinGen++;
    this.joined = false;
    this.client.disconnect();
    // Do not let socket.io-client replay events queued while disconnected:
    // everything is resent after the next join.
    if (this.socket) this.socket.sendBuffer = [];
    for (const client of this.members.keys()) this.editor.setRemoteCursor(client, '', '', null);
    this.members.clear();
    // A full write: the edits made from now on (offline) are deltas on it,
    // and it holds the base of the unsent edits (see serverBase).
    this.deltaBase = null;
    this.saveNow();
    this.changed();
  }

  // ---- ops

  /** localEdit is called by the editor for every local edit (an op in code points). */
  localEdit(op) {
    const sub = this.client.edit(op);
    this.edits++;
    if (this.deltaBase) this.deltaBase.op = compose(this.deltaBase.op, op);
    if (sub) this.submit(sub);
    this.scheduleSave();
    this.schedulePresence();
    this.changed();
  }

  submit(sub) {
    const socket = this.socket;
    socket.emit('doc:op', { doc: this.doc, client: sub.client, seq: sub.seq, rev: sub.rev, op: sub.op }, (ack) => {
      if (socket !== this.socket) return;
      if (!ack || !ack.ok) {
        this.opFailed(sub, ack);
        return;
      }
      const pending = this.client.pending;
      const op = pending && pending.seq === sub.seq ? pending.op : null;
      let next;
      try {
        next = this.client.ack(sub.seq, ack.rev);
      } catch (err) {
        if (err instanceof RevisionGapError) {
          this.rejoin();
          return;
        }
        throw err;
      }
      if (op && this.client.rev === ack.rev) this.remember(ack.rev, op);
      if (op) this.advanceBase(ack.rev, op);
      else this.base = null;
      this.syncBase();
      if (this.client.state === SYNCHRONIZED) this.edits = 0;
      if (next) this.submit(next);
      this.scheduleSave();
      this.changed();
    });
  }

  opFailed(sub, ack) {
    const code = ack && ack.error ? ack.error.code : CODE.INTERNAL;
    if (!this.client.pending || this.client.pending.seq !== sub.seq) return;
    if (code === CODE.FORBIDDEN && /join the document first/.test(ack.error.message || '')) {
      // The server no longer counts us as a member (e.g. the document was
      // deleted and the connection has not dropped yet): join again.
      this.later('retry', () => this.rejoin(), this.backoff());
      return;
    }
    if (code === CODE.FORBIDDEN) {
      // View only: the local edits can never be sent. Drop them and start
      // over from the server's text.
      this.readOnly = true;
      this.editor.setReadOnly(true);
      void this.store.remove(this.doc, this.client.client);
      this.client = new OTClient({ client: this.client.client, rev: 0 });
      this.deltaBase = null;
      this.fresh = true;
      this.edits = 0;
      this.fail('You can view this document but not edit it; your changes were not saved.');
      this.join();
      return;
    }
    if (code === CODE.FORBIDDEN && (this.expired || /^token (expired|revoked)/.test(ack.error.message || ''))) {
      // The token ended (auth:expired): not a viewer. The edits stay
      // pending and go out again after the token is renewed and we rejoin.
      return;
    }
    if (code === CODE.GONE) {
      // The op's base revision was folded: the server can neither transform
      // it nor tell whether it was applied. Rejoin (the ack has the text)
      // and rebase the local text on it as a new op (recover, goneRebase).
      this.rejoin();
      return;
    }
    if (code === CODE.RATE_LIMITED) {
      // The server did not take it: send the same seq again a bit later
      // (rebased meanwhile by any records that arrived).
      this.later('retry', () => this.resendPending(sub.seq), 1000);
      return;
    }
    this.fail(`The server refused an edit (${code}); retrying.`);
    this.later('retry', () => this.rejoin(), this.backoff());
  }

  resendPending(seq) {
    const p = this.client.pending;
    if (!this.joined || !p || p.seq !== seq || !p.sent) return;
    this.submit({ client: this.client.client, seq, rev: this.client.rev, op: p.op });
  }

  onRecord(rec) {
    if (!rec || rec.doc !== this.doc) return;
    const arrived = now();
    let out;
    try {
      out = this.client.receive(rec);
    } catch (err) {
      // A gap means something was missed; anything else is a record this
      // client cannot use. Either way, rejoin from our revision.
      if (!(err instanceof RevisionGapError)) this.fail(`A change from the server could not be applied (${err.message}); resyncing.`);
      this.rejoin();
      return;
    }
    this.remember(rec.rev, rec.op);
    // While joining, records may be newer than the ack's: the base follows
    // them after the ack.
    if (this.joined) this.advanceBase(rec.rev, rec.op);
    else this.baseEarly.push(rec);
    if (out.apply) {
      this.applyRemote(out.apply);
      this.lastRemote = { arrived, applied: now() };
    }
    if (out.send) this.submit(out.send);
    if (this.client.state === SYNCHRONIZED) this.edits = 0;
    this.syncBase();
    this.scheduleSave();
    this.changed();
  }

  applyRemote(op) {
    this.deltaBase = null; // the text changed under the delta
    this.editor.applyRemote(op);
  }

  remember(rev, op) {
    this.recent.set(rev, op);
    if (this.recent.size > RECENT) this.recent.delete(this.recent.keys().next().value);
  }

  // ---- presence and members

  onMember(m) {
    if (!m || m.doc !== this.doc || m.client === this.client.client) return;
    if (m.joined) {
      const had = this.members.get(m.client);
      this.members.set(m.client, { client: m.client, user: m.user, sel: had && had.sel, rev: had && had.rev });
      this.lastPresence = ''; // let the newcomer see our cursor
      this.schedulePresence();
    } else {
      this.members.delete(m.client);
      this.editor.setRemoteCursor(m.client, '', '', null);
    }
    this.changed();
  }

  onPresence(p) {
    if (!p || p.doc !== this.doc || p.client === this.client.client) return;
    const known = this.members.get(p.client);
    this.members.set(p.client, { client: p.client, user: p.user || (known && known.user), sel: p.sel, rev: p.rev });
    this.drawMember(this.members.get(p.client));
    if (!known || (p.user && known.user && (known.user.name !== p.user.name || known.user.color !== p.user.color))) this.changed();
  }

  // drawMember moves a member's presence (code points at its revision) to
  // the local document: forward over the server ops since then, then over
  // the local unacknowledged edits.
  drawMember(m) {
    if (!Array.isArray(m.sel) || !Number.isInteger(m.rev)) return;
    if (!m.sel.every((r) => r && Number.isSafeInteger(r.anchor) && Number.isSafeInteger(r.head) && r.anchor >= 0 && r.head >= 0)) return;
    if (m.rev > this.client.rev) return; // ahead of us; its next presence will do
    const ops = [];
    for (let r = m.rev + 1; r <= this.client.rev; r++) {
      const op = this.recent.get(r);
      if (!op) return; // too old to carry forward
      ops.push(op);
    }
    const local = this.client.localOp();
    const move = (i) => {
      for (const op of ops) i = transformIndex(i, op);
      return transformIndex(i, local);
    };
    const ranges = m.sel.slice(0, MAX_SELECTIONS).map((r) => ({ anchor: move(r.anchor), head: move(r.head) }));
    const user = m.user || { name: 'anonymous', color: '#888888' };
    this.editor.setRemoteCursor(m.client, user.name, user.color, ranges);
  }

  /** selectionMoved is called by the editor when the local selection moved. */
  selectionMoved() {
    this.schedulePresence();
  }

  schedulePresence() {
    if (this.timers.presence) return;
    this.timers.presence = setTimeout(() => {
      this.timers.presence = 0;
      this.sendPresence();
    }, PRESENCE_MS);
  }

  sendPresence() {
    if (!this.joined || !this.socket || !this.socket.connected) return;
    const local = this.client.localOp();
    const sel = this.editor.selection().map((r) => ({ anchor: unapplyIndex(r.anchor, local), head: unapplyIndex(r.head, local) }));
    const key = `${this.client.rev}:${JSON.stringify(sel)}`;
    if (key === this.lastPresence) return;
    this.lastPresence = key;
    this.socket.emit('doc:presence', { doc: this.doc, rev: this.client.rev, sel });
  }

  // ---- persistence

  scheduleSave() {
    if (this.timers.save) return;
    this.timers.save = setTimeout(
      () => {
        this.timers.save = 0;
        this.saveNow();
      },
      // A big text costs more to save: keep saving under about 5 % of the time.
      Math.max(this.client.unsent ? SAVE_UNSENT_MS : SAVE_SYNCED_MS, 20 * (this.lastSaveMs || 0)),
    );
  }

  /**
   * saveNow saves this page's entry: the edits since the last full write
   * when only local edits changed the text, else the whole entry. sync: a
   * full entry into localStorage, synchronously (pagehide).
   */
  saveNow(sync = false) {
    clearTimeout(this.timers.save);
    this.timers.save = 0;
    if (this.fresh || !this.editor) return; // nothing known yet
    const t0 = now();
    const state = this.client.toJSON();
    if (sync) {
      const d = this.deltaBase;
      this.store.writeNow({ doc: this.doc, client: this.client.client, state, text: this.editor.text(), edits: this.edits, saved: Math.max(Date.now(), (d ? d.saved : 0) + 1), ...this.serverBase() });
      // If the page stays (back-forward cache), the copy may be taken over
      // into IndexedDB by another tab: deltas on the old base would be
      // ignored then, so the next save is a full one.
      this.deltaBase = null;
      return;
    }
    const d = this.deltaBase;
    let written;
    if (d && insertedLength(d.op) <= DELTA_MAX) {
      // Only local edits since the last full write: save them, not the text.
      written = this.store.writeDelta({ doc: this.doc, client: this.client.client, base: d.saved, state, edits: this.edits, saved: Date.now(), delta: d.op });
      this.saveCounts.delta++;
    } else {
      // IndexedDB copies the entry (structured clone) and writes it off the
      // main thread; building it costs the text as one string.
      const saved = Math.max(Date.now(), (d ? d.saved : 0) + 1);
      written = this.store.write({ doc: this.doc, client: this.client.client, state, text: this.editor.text(), edits: this.edits, saved, ...this.serverBase() });
      const base = { saved, op: [] };
      this.deltaBase = base;
      this.saveCounts.full++;
      written.then((ok) => {
        if (!ok && this.deltaBase === base) this.deltaBase = null;
      });
    }
    this.lastSaveMs = now() - t0;
    written.then((ok) => {
      if (!ok && this.client.unsent) this.fail('This browser refused to store your unsent edits (storage full).');
    });
  }

  /**
   * serverBase returns {serverBase} for a full write while edits are unsent
   * and the base is known, else {} (while synchronized the text is the base).
   */
  serverBase() {
    const b = this.base;
    if (!this.client.unsent || !b || b.rev !== this.client.rev) return {};
    return { serverBase: { rev: b.rev, text: b.doc.toString() } };
  }

  // ---- helpers

  fail(message) {
    this.error = message;
    this.changed();
  }

  later(name, fn, ms) {
    clearTimeout(this.timers[name]);
    this.timers[name] = setTimeout(() => {
      this.timers[name] = 0;
      if (!this.closed) fn();
    }, ms);
  }

  backoff() {
    const ms = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 30000);
    return ms;
  }

  // ---- requests for the history panel

  /**
   * request emits event with payload and resolves with the ack's payload, or
   * rejects with an Error carrying the error code.
   */
  request(event, payload, timeoutMs = 15000) {
    return new Promise((resolve, reject) => {
      if (!this.socket || !this.socket.connected) {
        reject(Object.assign(new Error('not connected'), { code: 'offline' }));
        return;
      }
      this.socket.timeout(timeoutMs).emit(event, { doc: this.doc, ...payload }, (err, ack) => {
        if (err) reject(Object.assign(new Error('no answer from the server'), { code: 'timeout' }));
        else if (!ack || !ack.ok) reject(requestError(ack));
        else resolve(ack);
      });
    });
  }
}

/**
 * requestError makes the Error of a failed ack: message, code, and for
 * gone the earliest revision still kept.
 */
export function requestError(ack) {
  const e = ack && ack.error ? ack.error : {};
  const err = Object.assign(new Error(e.message || 'failed'), { code: e.code || CODE.INTERNAL });
  if (Number.isSafeInteger(e.earliest)) err.earliest = e.earliest;
  return err;
}

/** textOf makes a CodeMirror Text of a string ("\n" the only line break, as in the editor). */
function textOf(s) {
  return Text.of(s.split('\n'));
}

/** insertedLength is the number of UTF-16 units an op inserts. */
function insertedLength(op) {
  let n = 0;
  for (const c of op) if (typeof c === 'string') n += c.length;
  return n;
}

function now() {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
