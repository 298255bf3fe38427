// Persistence of unsent edits in IndexedDB (database `collabd`, object store
// `entries`), one entry per editor instance (tab), so that a reload or a
// closed tab loses nothing. IndexedDB takes a structured copy of the entry
// and writes it off the main thread: saving a 1 MiB text no longer
// stringifies it and blocks typing the way localStorage did. Entries an
// older version left in localStorage are moved over once (claim). Where
// IndexedDB cannot be opened (and in Node tests) the same entries live in
// Web Storage, as before.
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
//
// A big text is not copied on every save: after a full write, saves made
// while only local edits changed the text write a small delta record
// (`collabd:v1:delta:<doc>:<client>`: the state and the op from the written
// text to the current one, with the full write's `saved` as its base).
// read applies a delta whose base matches the entry.

import { apply } from '../ot/operation.js';

const PREFIX = 'collabd:v1:';

/** entryKey returns the localStorage key of a document's entry for one client id. */
export function entryKey(doc, client) {
  return `${PREFIX}doc:${doc}:${client}`;
}

/**
 * deltaKey returns the key of an entry's delta record: the local edits
 * since the entry's text was last written in full (see writeDelta).
 */
export function deltaKey(doc, client) {
  return `${PREFIX}delta:${doc}:${client}`;
}

function tabKey(doc) {
  return `${PREFIX}tab:${doc}`;
}

/** Saved is what an entry holds. */
/** @typedef {{doc: string, client: string, state: any, text: string, edits: number, saved: number, serverBase?: {rev: number, text: string}}} Saved */

/**
 * @typedef {object} Slot an entry held by this page
 * @property {string} client the client id
 * @property {Saved | null} saved the state to restore, if any
 * @property {() => void} release frees the lock (the page keeps it until it unloads otherwise)
 */

/**
 * @typedef {object} KV the entries' storage, by key; values are plain objects
 * @property {(prefix: string) => Promise<string[]>} keys
 * @property {(key: string) => Promise<any>} get undefined when absent
 * @property {(key: string, value: any) => Promise<void>} put rejects when the storage is full
 * @property {(key: string) => Promise<void>} del
 */

/**
 * storageKV keeps entries in Web Storage, as JSON.
 * @param {Storage} storage
 * @returns {KV}
 */
export function storageKV(storage) {
  return {
    storage,
    async keys(prefix) {
      const out = [];
      for (let i = 0; i < storage.length; i++) {
        const k = storage.key(i);
        if (k && k.startsWith(prefix)) out.push(k);
      }
      return out;
    },
    async get(key) {
      const raw = storage.getItem(key);
      if (raw === null) return undefined;
      try {
        return JSON.parse(raw);
      } catch {
        return null; // unreadable
      }
    },
    async put(key, value) {
      storage.setItem(key, JSON.stringify(value));
    },
    async del(key) {
      storage.removeItem(key);
    },
  };
}

/**
 * idbKV keeps entries in an IndexedDB object store. Requests on one store
 * run in the order they were made, so a later save never loses to an
 * earlier one.
 * @param {IDBFactory} idb
 * @param {string} [name] database name
 * @returns {KV}
 */
export function idbKV(idb, name = 'collabd') {
  const STORE = 'entries';
  let opened = null;
  const db = () => {
    if (!opened) {
      opened = new Promise((resolve, reject) => {
        const req = idb.open(name, 1);
        req.onupgradeneeded = () => req.result.createObjectStore(STORE);
        req.onsuccess = () => {
          const d = req.result;
          // Another page upgrading the database: let it.
          d.onversionchange = () => d.close();
          resolve(d);
        };
        req.onerror = () => reject(req.error);
        req.onblocked = () => reject(new Error('IndexedDB blocked'));
      });
    }
    return opened;
  };
  let handle = null;
  // run makes one request in its own transaction. Once the database is open
  // the request is made at once, so the entry is copied (structured clone)
  // during the caller's call, not in a later microtask.
  const run = (mode, fn) => {
    const go = (d) =>
      new Promise((resolve, reject) => {
        const tx = d.transaction(STORE, mode, { durability: 'relaxed' });
        const req = fn(tx.objectStore(STORE));
        tx.oncomplete = () => resolve(req.result);
        tx.onerror = () => reject(tx.error || req.error);
        tx.onabort = () => reject(tx.error || new Error('aborted'));
      });
    if (handle) {
      try {
        return go(handle);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return db().then((d) => {
      handle = d;
      return go(d);
    });
  };
  return {
    db,
    async keys(prefix) {
      const range = IDBKeyRange.bound(prefix, `${prefix}\uffff`);
      return /** @type {string[]} */ (await run('readonly', (st) => st.getAllKeys(range)));
    },
    get: (key) => run('readonly', (st) => st.get(key)),
    put: (key, value) => run('readwrite', (st) => st.put(value, key)).then(() => {}),
    del: (key) => run('readwrite', (st) => st.delete(key)).then(() => {}),
  };
}

/**
 * defaultKV returns IndexedDB when this browser has one that opens, else
 * Web Storage.
 * @param {Storage} local
 * @returns {Promise<KV>}
 */
async function defaultKV(local) {
  if (typeof indexedDB === 'undefined' || !indexedDB) return storageKV(local);
  const kv = idbKV(indexedDB);
  try {
    await kv.db();
    return kv;
  } catch {
    return storageKV(local);
  }
}

/**
 * Store reads and writes entries. The storages and lock manager are
 * parameters so tests can give their own.
 */
export class Store {
  /**
   * @param {object} [opts]
   * @param {Storage} [opts.local] localStorage (older entries to take over; the fallback storage)
   * @param {Storage} [opts.session] sessionStorage
   * @param {LockManager | null} [opts.locks] navigator.locks (null: none)
   * @param {KV | Promise<KV>} [opts.db] where entries live (default: IndexedDB, else local)
   * @param {() => string} opts.newId a fresh client id
   */
  constructor({ local = globalThis.localStorage, session = globalThis.sessionStorage, locks = globalThis.navigator?.locks ?? null, db, newId }) {
    this.local = local;
    this.session = session;
    this.locks = locks;
    this.newId = newId;
    /** @type {Promise<KV>} */
    this.kv = Promise.resolve(db || defaultKV(local));
    /** @type {KV | null} the storage once open */
    this.kvNow = null;
    /** how many entries were moved over from localStorage by this store */
    this.migrated = 0;
  }

  /**
   * takeOver moves the entries an older version kept in localStorage into
   * the store (once: they are removed from localStorage after the copy).
   */
  async takeOver() {
    const kv = await this.kv;
    this.kvNow = kv;
    if (!this.local || kv.storage === this.local) return;
    const old = [];
    for (let i = 0; i < this.local.length; i++) {
      const k = this.local.key(i);
      if (k && k.startsWith(`${PREFIX}doc:`)) old.push(k);
    }
    for (const k of old) {
      const raw = this.local.getItem(k);
      if (raw === null) continue;
      let v;
      try {
        v = JSON.parse(raw);
      } catch {
        this.local.removeItem(k); // unreadable
        continue;
      }
      try {
        // Never replace a newer state of the same tab (entry plus delta).
        const have = v && typeof v.doc === 'string' && typeof v.client === 'string' ? await this.read(v.doc, v.client) : null;
        if (!have || !(have.saved >= v.saved)) await kv.put(k, v);
      } catch {
        continue; // the store refused it: keep it for the next page
      }
      this.migrated++;
      this.local.removeItem(k);
    }
  }

  /**
   * claim picks this page's entry for doc: the tab's own one (a reload), else
   * the newest orphan (a tab closed earlier), else a new client id. It
   * returns the slot and the other orphans, locked, for resubmission.
   * @param {string} doc
   * @returns {Promise<{slot: Slot, orphans: Slot[]}>}
   */
  async claim(doc) {
    await this.takeOver();
    let own = null;
    const mine = this.session.getItem(tabKey(doc));
    if (mine) {
      const lock = await this.lock(doc, mine);
      if (lock) own = { client: mine, saved: await this.read(doc, mine), release: lock.release };
    }
    /** @type {Slot[]} */
    const orphans = [];
    for (const client of await this.clients(doc)) {
      if (client === mine) continue;
      const lock = await this.lock(doc, client);
      if (!lock) continue; // an open page holds it
      const saved = await this.read(doc, client);
      if (!saved) {
        await this.remove(doc, client); // unreadable
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
        await this.remove(doc, o.client);
        o.release();
      }
    }
    return { slot: own, orphans: busy };
  }

  /** clients lists the client ids with an entry for doc. */
  async clients(doc) {
    const prefix = `${PREFIX}doc:${doc}:`;
    return (await (await this.kv).keys(prefix)).map((k) => k.slice(prefix.length));
  }

  /** @returns {Promise<Saved | null>} */
  async read(doc, client) {
    let s;
    let d;
    try {
      const kv = await this.kv;
      s = await kv.get(entryKey(doc, client));
      d = await kv.get(deltaKey(doc, client));
    } catch {
      return null;
    }
    if (!(s && s.doc === doc && s.client === client && typeof s.text === 'string' && s.state)) return null;
    // The server's text at a revision, the base of the unsent edits (for a
    // rebase when the server no longer keeps that revision): saved with a
    // full write made while edits were unsent, or the text of a full write
    // made while synchronized. The reader uses it only when its rev is the
    // state's rev.
    if (!s.serverBase && !s.state.pending) s = { ...s, serverBase: { rev: s.state.rev, text: s.text } };
    if (d && d.base === s.saved && Array.isArray(d.delta) && d.state) {
      try {
        return { ...s, state: d.state, edits: d.edits, saved: d.saved, text: apply(s.text, d.delta) };
      } catch {
        // a delta that does not fit: the full entry is still consistent
      }
    }
    return s;
  }

  /**
   * writeNow saves a full entry into localStorage synchronously, as JSON: for
   * pagehide, when an IndexedDB transaction may not commit before the page
   * goes. The next page takes it over (takeOver) unless IndexedDB holds a
   * newer state of that tab.
   * @param {Saved} saved
   */
  writeNow(saved) {
    try {
      this.local.setItem(entryKey(saved.doc, saved.client), JSON.stringify(saved));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * writeDelta saves the state and the local edits made since a full
   * write, without the text.
   * @param {{doc: string, client: string, base: number, state: any, edits: number, saved: number, delta: any[]}} rec
   *   base is the `saved` of the full write the delta starts from
   * @returns {Promise<boolean>}
   */
  writeDelta(rec) {
    const key = deltaKey(rec.doc, rec.client);
    if (this.kvNow) return this.put(this.kvNow, key, rec);
    return this.kv.then((kv) => this.put(kv, key, rec));
  }

  /**
   * write saves an entry. When the storage is full it drops the entries
   * that hold no unsent edits (texts kept only for offline viewing) and
   * tries once more. It resolves with false when the storage still refuses.
   * After claim the entry is copied during the call (IndexedDB's
   * structured clone, or JSON for Web Storage); before it, in a later
   * microtask: pass a fresh object.
   * @param {Saved} saved
   * @returns {Promise<boolean>}
   */
  write(saved) {
    const key = entryKey(saved.doc, saved.client);
    // Once the storage is known (after claim) the entry is handed over
    // synchronously: the caller's time includes the copy.
    if (this.kvNow) return this.put(this.kvNow, key, saved);
    return this.kv.then((kv) => this.put(kv, key, saved));
  }

  async put(kv, key, saved) {
    try {
      await kv.put(key, saved);
      return true;
    } catch {
      await this.makeRoom(kv, key);
    }
    try {
      await kv.put(key, saved);
      return true;
    } catch {
      return false;
    }
  }

  // makeRoom removes every entry without unsent edits, but keep.
  async makeRoom(kv, keep) {
    for (const k of await kv.keys(`${PREFIX}doc:`)) {
      if (k === keep) continue;
      let unsent = false;
      try {
        unsent = hasUnsent(await kv.get(k));
      } catch {
        // unreadable: drop
      }
      if (!unsent) await kv.del(k).catch(() => {});
    }
  }

  /** remove deletes an entry (and its delta record). */
  async remove(doc, client) {
    try {
      const kv = await this.kv;
      await Promise.all([kv.del(entryKey(doc, client)), kv.del(deltaKey(doc, client))]);
    } catch {
      // gone already, or the storage is unavailable
    }
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
