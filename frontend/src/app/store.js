// Persistence of unsent edits in localStorage, one entry per editor instance
// (tab), so that a reload or a closed tab loses nothing.
//
// Entry `collabd:v1:doc:<doc>:<client>` holds {doc, client, state, text,
// edits, saved}: state is OTClient.toJSON() (rev, seq, pending and buffered
// ops), text the local text (the server text at state.rev plus the pending
// edits). sessionStorage `collabd:v1:tab:<doc>` names the entry of this tab,
// so a reload reclaims its own client id and state; a Web Lock named after
// the entry is held while a page uses it. When a tab is duplicated its
// sessionStorage is copied, but the lock tells the copy that the entry is
// taken: it starts with a new client id. An entry whose lock is free belongs
// to no open page (its tab was closed): an orphan, which the next page of that
// document adopts (takes over its client id, text and pending edits) or
// resubmits with its own client id and seq, so the server's exactly-once rule
// (client id, seq) keeps it from being applied twice.

const PREFIX = 'collabd:v1:';

/** entryKey returns the localStorage key of a document's entry for one client id. */
export function entryKey(doc, client) {
  return `${PREFIX}doc:${doc}:${client}`;
}

function tabKey(doc) {
  return `${PREFIX}tab:${doc}`;
}

/** Saved is what an entry holds. */
/** @typedef {{doc: string, client: string, state: any, text: string, edits: number, saved: number}} Saved */

/**
 * @typedef {object} Slot an entry held by this page
 * @property {string} client the client id
 * @property {Saved | null} saved the state to restore, if any
 * @property {() => void} release frees the lock (the page keeps it until it unloads otherwise)
 */

/**
 * Store reads and writes entries. The storage and lock manager are
 * parameters so tests can give their own.
 */
export class Store {
  /**
   * @param {object} [opts]
   * @param {Storage} [opts.local] localStorage
   * @param {Storage} [opts.session] sessionStorage
   * @param {LockManager | null} [opts.locks] navigator.locks (null: none)
   * @param {() => string} opts.newId a fresh client id
   */
  constructor({ local = globalThis.localStorage, session = globalThis.sessionStorage, locks = globalThis.navigator?.locks ?? null, newId }) {
    this.local = local;
    this.session = session;
    this.locks = locks;
    this.newId = newId;
  }

  /**
   * claim picks this page's entry for doc: the tab's own one (a reload), else
   * the newest orphan (a tab closed earlier), else a new client id. It
   * returns the slot and the other orphans, locked, for resubmission.
   * @param {string} doc
   * @returns {Promise<{slot: Slot, orphans: Slot[]}>}
   */
  async claim(doc) {
    let own = null;
    const mine = this.session.getItem(tabKey(doc));
    if (mine) {
      const lock = await this.lock(doc, mine);
      if (lock) own = { client: mine, saved: this.read(doc, mine), release: lock.release };
    }
    /** @type {Slot[]} */
    const orphans = [];
    for (const client of this.clients(doc)) {
      if (client === mine) continue;
      const lock = await this.lock(doc, client);
      if (!lock) continue; // an open page holds it
      const saved = this.read(doc, client);
      if (!saved) {
        this.remove(doc, client); // unreadable
        lock.release();
        continue;
      }
      orphans.push({ client, saved, release: lock.release });
    }
    orphans.sort((a, b) => b.saved.saved - a.saved.saved);
    if (!own && orphans.length > 0) own = orphans.shift();
    if (!own) {
      const client = this.newId();
      const lock = await this.lock(doc, client);
      own = { client, saved: null, release: lock ? lock.release : () => {} };
    }
    this.session.setItem(tabKey(doc), own.client);
    // Orphans with nothing to send are done with.
    const busy = [];
    for (const o of orphans) {
      if (hasUnsent(o.saved)) {
        busy.push(o);
      } else {
        this.remove(doc, o.client);
        o.release();
      }
    }
    return { slot: own, orphans: busy };
  }

  /** clients lists the client ids with an entry for doc. */
  clients(doc) {
    const prefix = `${PREFIX}doc:${doc}:`;
    const out = [];
    for (let i = 0; i < this.local.length; i++) {
      const k = this.local.key(i);
      if (k && k.startsWith(prefix)) out.push(k.slice(prefix.length));
    }
    return out;
  }

  /** @returns {Saved | null} */
  read(doc, client) {
    const raw = this.local.getItem(entryKey(doc, client));
    if (!raw) return null;
    try {
      const s = JSON.parse(raw);
      if (s && s.doc === doc && s.client === client && typeof s.text === 'string' && s.state) return s;
    } catch {
      // unreadable: treat as absent
    }
    return null;
  }

  /**
   * write saves an entry. When the storage is full it drops the entries
   * that hold no unsent edits (texts kept only for offline viewing) and
   * tries once more. It returns false when the storage still refuses.
   * @param {Saved} saved
   */
  write(saved) {
    const key = entryKey(saved.doc, saved.client);
    const value = JSON.stringify(saved);
    try {
      this.local.setItem(key, value);
      return true;
    } catch {
      this.makeRoom(key);
    }
    try {
      this.local.setItem(key, value);
      return true;
    } catch {
      return false;
    }
  }

  // makeRoom removes every entry without unsent edits, but keep.
  makeRoom(keep) {
    const keys = [];
    for (let i = 0; i < this.local.length; i++) {
      const k = this.local.key(i);
      if (k && k.startsWith(`${PREFIX}doc:`) && k !== keep) keys.push(k);
    }
    for (const k of keys) {
      let unsent = false;
      try {
        unsent = hasUnsent(JSON.parse(this.local.getItem(k) || 'null'));
      } catch {
        // unreadable: drop
      }
      if (!unsent) this.local.removeItem(k);
    }
  }

  remove(doc, client) {
    this.local.removeItem(entryKey(doc, client));
  }

  // lock takes the Web Lock of an entry if it is free and holds it until
  // release. Without Web Locks (an insecure context) every lock is granted:
  // a tab then reclaims its own entry, but duplicated tabs share one.
  async lock(doc, client) {
    if (!this.locks) return { release: () => {} };
    return new Promise((resolve) => {
      this.locks
        .request(`collabd:${doc}:${client}`, { ifAvailable: true }, (lock) => {
          if (!lock) {
            resolve(null);
            return undefined;
          }
          return new Promise((release) => resolve({ release }));
        })
        .catch(() => resolve(null));
    });
  }
}

/** hasUnsent reports whether a saved entry has edits the server may not have. */
export function hasUnsent(saved) {
  return Boolean(saved && saved.state && saved.state.pending);
}
