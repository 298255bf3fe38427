import test from 'node:test';
import assert from 'node:assert/strict';

import { EditorState } from '@codemirror/state';

import { docIdFromPath, isDocId, readableId } from '../../src/app/ids.js';
import { remoteCursors, setRemote, unapplyIndex } from '../../src/app/presence.js';
import { Store, deltaKey, entryKey, hasUnsent, storageKV } from '../../src/app/store.js';
import { OTClient } from '../../src/ot/client.js';
import { apply, transform, transformIndex } from '../../src/ot/operation.js';
import { makeRandom, randomOp, randomText } from './helpers.js';

test('document ids and editor paths', () => {
  for (const [path, want] of [
    ['/d/notes', 'notes'],
    ['/d/team-notes.2026~x_y', 'team-notes.2026~x_y'],
    ['/d/notes/', 'notes'],
    ['/d/', null],
    ['/d/a/b', null],
    ['/d/a%20b', null],
    ['/d/%E0%A4', null],
    ['/', null],
    [`/d/${'x'.repeat(128)}`, 'x'.repeat(128)],
    [`/d/${'x'.repeat(129)}`, null],
  ]) {
    assert.equal(docIdFromPath(path), want, path);
  }
  const rnd = makeRandom(7);
  for (let i = 0; i < 50; i++) {
    const id = readableId(rnd.int);
    assert.match(id, /^[a-z]+-[a-z]+-\d{3}$/);
    assert.ok(isDocId(id));
  }
});

test('unapplyIndex maps positions after an op back to before it', () => {
  const cases = [
    // op, index after, index before
    [[2, 'abc'], 0, 0],
    [[2, 'abc'], 2, 2],
    [[2, 'abc'], 3, 2], // inside the insert: where it was inserted
    [[2, 'abc'], 5, 2],
    [[2, 'abc'], 6, 3],
    [[1, -2], 1, 1],
    [[1, -2], 2, 4],
    [['😀', 1, -1, 'x'], 1, 0],
    [['😀', 1, -1, 'x'], 2, 1],
    [['😀', 1, -1, 'x'], 3, 2], // after the insert that replaced the deleted one
  ];
  for (const [op, after, before] of cases) assert.equal(unapplyIndex(after, op), before, `${JSON.stringify(op)} ${after}`);

  // Property: the round trip gives the position back, except for positions
  // inside or at the end of deleted text, which come back at its start.
  const rnd = makeRandom(11);
  for (let n = 0; n < 2000; n++) {
    const text = randomText(rnd, rnd.int(30));
    const op = randomOp(rnd, text);
    const len = [...text].length;
    const i = rnd.int(len + 1);
    let deleted = false;
    let p = 0;
    for (const c of op) {
      if (typeof c === 'number' && c > 0) p += c;
      else if (typeof c === 'number') {
        if (i > p && i <= p - c) deleted = true;
        p -= c;
      }
    }
    const back = unapplyIndex(transformIndex(i, op, true), op);
    if (deleted) assert.ok(back < i, `${back} for ${i}, ${JSON.stringify(op)}`);
    else assert.equal(back, i, `${JSON.stringify(op)} at ${i}`);
  }
});

test('remote cursors move with the text', () => {
  let s = EditorState.create({ doc: 'hello world', extensions: [remoteCursors] });
  s = s.update({ effects: setRemote.of({ client: 'b', name: 'Bob', color: '#1a73e8', ranges: [{ anchor: 6, head: 11 }] }) }).state;
  s = s.update({ changes: { from: 0, insert: '😀 ' } }).state; // 3 UTF-16 units before
  assert.deepEqual(s.field(remoteCursors).members.get('b').ranges, [{ anchor: 9, head: 14 }]);
  s = s.update({ changes: { from: 9, to: 14 } }).state; // its selection deleted
  assert.deepEqual(s.field(remoteCursors).members.get('b').ranges, [{ anchor: 9, head: 9 }]);
  assert.equal(s.field(remoteCursors).decorations.size, 1); // the caret, no empty mark
  s = s.update({ effects: setRemote.of({ client: 'b', ranges: null }) }).state;
  assert.equal(s.field(remoteCursors).members.size, 0);
  assert.equal(s.field(remoteCursors).decorations.size, 0);
});

// MemoryStorage is the Web Storage interface over a Map (Node has none).
class MemoryStorage {
  constructor() {
    this.m = new Map();
  }
  get length() {
    return this.m.size;
  }
  key(i) {
    return [...this.m.keys()][i] ?? null;
  }
  getItem(k) {
    return this.m.has(k) ? this.m.get(k) : null;
  }
  setItem(k, v) {
    this.m.set(k, String(v));
  }
  removeItem(k) {
    this.m.delete(k);
  }
}

// MemoryLocks implements navigator.locks.request with ifAvailable, shared by
// the "tabs" of one test.
class MemoryLocks {
  constructor() {
    this.held = new Set();
  }
  async request(name, opts, cb) {
    if (this.held.has(name)) return cb(null);
    this.held.add(name);
    try {
      return await cb({ name });
    } finally {
      this.held.delete(name);
    }
  }
}

function savedState(client, { rev = 3, pending = null, text = 'abc', saved = 1 } = {}) {
  const c = new OTClient({ client, rev, seq: pending ? 1 : 0 });
  if (pending) c.pending = { seq: 1, op: pending, sent: true };
  return { doc: 'd', client, state: c.toJSON(), text, edits: pending ? 1 : 0, saved };
}

test('Store: a reload reclaims its entry, a duplicated tab gets a new id', async () => {
  const local = new MemoryStorage();
  const locks = new MemoryLocks();
  let n = 0;
  const newId = () => `id${++n}`;
  const tab1 = new MemoryStorage();
  const a = await new Store({ local, session: tab1, locks, newId }).claim('d');
  assert.equal(a.slot.client, 'id1');
  assert.equal(a.slot.saved, null);
  await new Store({ local, session: tab1, locks, newId }).write(savedState('id1', { pending: [3, 'x'], text: 'abcx' }));

  // A duplicate of tab1 (sessionStorage copied) while tab1 is open.
  const dup = new MemoryStorage();
  dup.setItem('collabd:v1:tab:d', 'id1');
  const b = await new Store({ local, session: dup, locks, newId }).claim('d');
  assert.equal(b.slot.client, 'id2');
  assert.equal(b.orphans.length, 0, 'an open tab\'s entry is no orphan');

  // tab1 reloads: its page released the lock; it gets its state back.
  a.slot.release();
  await new Promise((r) => setTimeout(r, 0));
  const c = await new Store({ local, session: tab1, locks, newId }).claim('d');
  assert.equal(c.slot.client, 'id1');
  assert.equal(c.slot.saved.text, 'abcx');
  assert.ok(hasUnsent(c.slot.saved));
});

test('Store: closed tabs are adopted once, flushed once, or dropped', async () => {
  const local = new MemoryStorage();
  const locks = new MemoryLocks();
  const store = new Store({ local, session: new MemoryStorage(), locks, newId: () => 'fresh' });
  await store.write(savedState('old-pending', { pending: [1, 'p'], saved: 1 }));
  await store.write(savedState('new-pending', { pending: [2, 'q'], saved: 2 }));
  await store.write(savedState('synced', { saved: 3 }));
  local.setItem(entryKey('d', 'broken'), '{not json');
  local.setItem(entryKey('other', 'x'), JSON.stringify(savedState('x')));

  const tabs = [new MemoryStorage(), new MemoryStorage()];
  const [one, two] = await Promise.all(tabs.map((session) => new Store({ local, session, locks, newId: () => `n${Math.random()}` }).claim('d')));
  // Each orphan goes to one tab only: adopted (the newest first) or to flush.
  const adopted = [one.slot.client, two.slot.client].filter((c) => !/^n0\./.test(c));
  const flushed = [...one.orphans, ...two.orphans].map((o) => o.client);
  const handled = [...adopted, ...flushed];
  assert.equal(new Set(handled).size, handled.length, `handled twice: ${handled}`);
  for (const c of ['new-pending', 'old-pending']) assert.ok(handled.includes(c), `${c} not handled: ${JSON.stringify({ one, two })}`);
  assert.ok(adopted.includes('synced'), 'the newest entry is adopted');
  for (const o of [...one.orphans, ...two.orphans]) assert.ok(hasUnsent(o.saved), 'only entries with edits are flushed');
  assert.equal(local.getItem(entryKey('d', 'broken')), null, 'unreadable entries are removed');
  assert.notEqual(local.getItem(entryKey('other', 'x')), null, 'other documents are left alone');
});

test('diffsToOp and textsToOp', async () => {
  const { diffsToOp, textsToOp } = await import('../../src/app/recover.js');
  assert.deepEqual(diffsToOp([[0, 'ab😀'], [-1, 'c漢'], [1, 'x'], [0, 'd']]), [3, 'x', -2]);
  assert.deepEqual(diffsToOp([[1, 'new']]), ['new']);
  const rnd = makeRandom(5);
  for (let n = 0; n < 300; n++) {
    const a = randomText(rnd, rnd.int(20));
    const b = apply(a, randomOp(rnd, a));
    assert.equal(apply(a, textsToOp(a, b)), b);
  }
  assert.deepEqual(textsToOp('a😀b', 'a😁b'), [1, '😁', -1]); // same high surrogate: whole code points
});

test('gone: a 3-way rebase keeps every local edit; insertsOnly keeps the insertions without the base', async () => {
  const { insertsOnly, textsToOp } = await import('../../src/app/recover.js');
  const { cpLength } = await import('../../src/ot/codepoints.js');
  assert.deepEqual(insertsOnly([2, 'X', -1, 1, 'Y'], 'abXdY'), { base: 'abd', op: [2, 'X', 1, 'Y'], dropped: true });
  assert.deepEqual(insertsOnly(['😀'], '😀abc'), { base: 'abc', op: ['😀'], dropped: false });
  const rnd = makeRandom(14);
  for (let n = 0; n < 300; n++) {
    const base = randomText(rnd, rnd.int(30));
    const local = randomOp(rnd, base);
    const mine = apply(base, local);
    const kept = insertsOnly(local, mine);
    assert.equal(apply(kept.base, kept.op), mine);
    assert.equal(cpLength(kept.base) + kept.op.filter((c) => typeof c === 'string').reduce((x, c) => x + cpLength(c), 0), cpLength(mine));

    // The client's base revision is folded: it rejoins, its pending op (sent
    // or not, never applied) goes out rebased over base -> server text, with
    // a new seq.
    const server = apply(base, randomOp(rnd, base));
    const c = new OTClient({ client: 'me', rev: 7, seq: 3 });
    c.join();
    c.resetTo(7);
    c.edit(local);
    c.disconnect();
    c.join();
    const out = c.rebase(40, textsToOp(base, server), false, true);
    const merged = out.apply ? apply(mine, out.apply) : mine;
    if (c.pending) {
      assert.equal(c.pending.seq, 5, 'a new seq after gone');
      assert.equal(out.send.rev, 40);
      assert.equal(apply(server, out.send.op), merged, 'the page and the server reach the same text');
    } else assert.equal(merged, server);
    for (const ins of local.filter((x) => typeof x === 'string')) assert.ok(merged.includes(ins), `local insertion ${JSON.stringify(ins)} kept`);
  }
});

test('OTClient.rebase: local edits survive a rejoin answered with the text', async () => {
  const { textsToOp } = await import('../../src/app/recover.js');
  const rnd = makeRandom(99);
  for (let n = 0; n < 400; n++) {
    const base = randomText(rnd, 1 + rnd.int(15));
    const c = new OTClient({ client: 'me', rev: 10 });
    c.join();
    c.resume([]);
    let local = base;
    const edit = () => {
      const op = randomOp(rnd, local);
      local = apply(local, op);
      c.edit(op);
    };
    edit();
    const sentOp = c.pending ? c.pending.op : null;
    const sentSeq = c.pending ? c.pending.seq : 0;
    if (rnd.chance(0.6)) edit(); // buffered behind the pending op
    c.disconnect();
    if (rnd.chance(0.5)) edit(); // offline
    // The server: some other ops, maybe ours among them, more ops.
    let server = base;
    let rev = 10;
    const applied = sentOp !== null && rnd.chance(0.5);
    let ours = sentOp;
    for (let k = rnd.int(4); k > 0; k--) {
      const op = randomOp(rnd, server);
      server = apply(server, op);
      rev++;
      if (ours) ours = transform(op, ours)[1];
    }
    if (applied) {
      server = apply(server, ours);
      rev++;
    }
    for (let k = rnd.int(3); k > 0; k--) {
      server = apply(server, randomOp(rnd, server));
      rev++;
    }
    c.join();
    if (c.pending === null) continue; // everything was emptied meanwhile
    const missed = applied ? textsToOp(apply(base, sentOp), server) : textsToOp(base, server);
    const out = c.rebase(rev, missed, applied);
    local = out.apply ? apply(local, out.apply) : local;
    assert.equal(c.rev, rev);
    if (out.send) {
      assert.equal(out.send.rev, rev);
      assert.equal(apply(server, out.send.op), local, 'the resent op on the server text gives the local text');
      if (!applied) assert.equal(out.send.seq, sentSeq || 1, 'the same seq goes out again');
      else assert.ok(out.send.seq > sentSeq);
    } else {
      assert.equal(local, server);
    }
  }
});

test('history entries group one author\'s consecutive revisions', async () => {
  const { groupRevs } = await import('../../src/app/history.js');
  const t = (s) => `2026-11-26T01:${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}Z`;
  const revs = [
    { rev: 9, client: 'a', user: 'Ann', time: t(600), ins: 1, del: 0 },
    { rev: 8, client: 'a', user: 'Ann', time: t(590), ins: 2, del: 1 },
    { rev: 7, client: 'a', user: 'Ann', time: t(400), ins: 1, del: 0 }, // more than 2 min before rev 8
    { rev: 6, client: 'b', user: 'Bob', time: t(390), ins: 5, del: 0 },
    { rev: 5, client: 'b', user: 'Bob', time: t(380), ins: 0, del: 3 },
    { rev: 3, client: 'b', user: 'Bob', time: t(370), ins: 1, del: 0 }, // a hole (rev 4 not loaded)
  ];
  assert.deepEqual(
    groupRevs(revs).map((g) => [g.first, g.rev, g.user, g.ins, g.del, g.count]),
    [
      [8, 9, 'Ann', 3, 1, 2],
      [7, 7, 'Ann', 1, 0, 1],
      [5, 6, 'Bob', 5, 3, 2],
      [3, 3, 'Bob', 1, 0, 1],
    ],
  );
  assert.deepEqual(groupRevs([]), []);
});

test('history: the folded range is one line of its own; a folded revision says so', async () => {
  const { groupRevs, loadError } = await import('../../src/app/history.js');
  const t = '2026-11-26T01:00:00Z';
  const revs = [
    { rev: 20, client: 'a', user: 'Ann', time: t, ins: 1, del: 0 },
    { rev: 19, client: 'a', user: 'Ann', time: t, ins: 1, del: 0 },
    { rev: 18, from: 1, folded: true, client: '', user: '', time: '', ins: 0, del: 0 },
  ];
  assert.deepEqual(
    groupRevs(revs).map((g) => [g.first, g.rev, !!g.folded]),
    [
      [19, 20, false],
      [1, 18, true],
    ],
  );
  assert.match(loadError(Object.assign(new Error('x'), { code: 'gone', earliest: 18 })), /folded by the retention policy.*#18/);
  assert.equal(loadError(Object.assign(new Error('boom'), { code: 'internal' })), 'Could not load: boom');
});

test('Store.write makes room by dropping entries without unsent edits', async () => {
  // A storage that holds at most 3 items.
  class Small extends MemoryStorage {
    setItem(k, v) {
      if (!this.m.has(k) && this.m.size >= 3) throw new Error('QuotaExceededError');
      super.setItem(k, v);
    }
  }
  const local = new Small();
  const store = new Store({ local, session: new MemoryStorage(), locks: null, newId: () => 'x' });
  assert.ok(await store.write({ ...savedState('a', { pending: [1, 'p'] }) }));
  assert.ok(await store.write({ ...savedState('b') }));
  local.setItem('collabd:user', '{}'); // not ours: never dropped
  assert.ok(await store.write({ ...savedState('c', { pending: [1, 'q'] }) }), 'room made');
  assert.equal(local.getItem(entryKey('d', 'b')), null, 'the synchronized entry went');
  assert.notEqual(local.getItem(entryKey('d', 'a')), null, 'unsent edits stay');
  assert.notEqual(local.getItem('collabd:user'), null);
  assert.equal(await store.write({ ...savedState('e', { pending: [1, 'r'] }) }), false, 'full of unsent edits');
});

test('token patterns follow Go path.Match; tokenClaims decodes the payload', async () => {
  const { access, pathMatch, tokenClaims } = await import('../../src/app/api.js');
  for (const [pattern, name, want] of [
    ['*', 'anything.at-all', true],
    ['team-*', 'team-notes', true],
    ['team-*', 'teamnotes', false],
    ['notes.2026', 'notes.2026', true],
    ['notes.2026', 'notesX2026', false],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['[a-c]x', 'bx', true],
    ['[^a-c]x', 'bx', false],
    ['[^a-c]x', 'dx', true],
    ['a\\*', 'a*', true],
    ['a\\*', 'ab', false],
    ['[', 'x', false],
    ['x-~', 'x-~', true],
  ]) {
    assert.equal(pathMatch(pattern, name), want, `${pattern} ${name}`);
  }
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const tok = `${b64({ alg: 'HS256' })}.${b64({ sub: 'Zoë', edit: ['team-*'], view: ['*'] })}.sig`;
  const claims = tokenClaims(tok);
  assert.equal(claims.sub, 'Zoë');
  assert.equal(access('team-a', claims), 'edit');
  assert.equal(access('other', claims), 'view');
  assert.equal(access('other', { sub: 'x', edit: ['team-*'] }), 'none');
  assert.equal(access('x', null), 'edit');
  assert.equal(tokenClaims('garbage'), null);
});

// MemoryKV is an asynchronous entry store over a Map that keeps copies, as
// IndexedDB does.
class MemoryKV {
  constructor() {
    this.m = new Map();
  }
  async keys(prefix) {
    return [...this.m.keys()].filter((k) => k.startsWith(prefix));
  }
  async get(k) {
    return this.m.has(k) ? structuredClone(this.m.get(k)) : undefined;
  }
  async put(k, v) {
    this.m.set(k, structuredClone(v));
  }
  async del(k) {
    this.m.delete(k);
  }
}

test('Store over an asynchronous store: entries written there, localStorage entries taken over once', async () => {
  const local = new MemoryStorage();
  const db = new MemoryKV();
  const locks = new MemoryLocks();
  // Entries an older version left in localStorage: a closed tab with unsent
  // edits, one without, an unreadable one, and one whose newer copy is
  // already in the store; plus things that are not entries.
  local.setItem(entryKey('d', 'old'), JSON.stringify(savedState('old', { pending: [3, 'x'], text: 'abcx', saved: 5 })));
  local.setItem(entryKey('d', 'synced'), JSON.stringify(savedState('synced', { saved: 1 })));
  local.setItem(entryKey('d', 'broken'), '{not json');
  local.setItem(entryKey('e', 'tab'), JSON.stringify({ ...savedState('tab', { saved: 1, text: 'stale' }), doc: 'e' }));
  await db.put(entryKey('e', 'tab'), { ...savedState('tab', { saved: 9, text: 'newer' }), doc: 'e' });
  local.setItem('collabd:user', '{"name":"A","color":"#188038"}');

  const store = new Store({ local, session: new MemoryStorage(), locks, db, newId: () => 'fresh' });
  const { slot, orphans } = await store.claim('d');
  assert.equal(store.migrated, 3);
  assert.deepEqual(Object.keys(Object.fromEntries(local.m)), ['collabd:user'], 'localStorage keeps no entry');
  // The closed tab's entry is adopted with its unsent edit.
  assert.equal(slot.client, 'old');
  assert.equal(slot.saved.text, 'abcx');
  assert.ok(hasUnsent(slot.saved));
  assert.equal(orphans.length, 0);
  assert.equal(await db.get(entryKey('d', 'synced')), undefined, 'an orphan with nothing unsent is dropped');
  assert.equal((await db.get(entryKey('e', 'tab'))).text, 'newer', 'a newer entry in the store is not replaced');
  // Taken over once: a second store finds nothing more to move.
  const again = new Store({ local, session: new MemoryStorage(), locks, db, newId: () => 'fresh2' });
  await again.claim('e');
  assert.equal(again.migrated, 0);
  // Writes go to the store, not to localStorage.
  assert.equal(await store.write(savedState('fresh', { pending: [1, 'y'], text: 'aybc' })), true);
  assert.equal((await db.get(entryKey('d', 'fresh'))).text, 'aybc');
  assert.equal(local.getItem(entryKey('d', 'fresh')), null);
});

test('Store: a store that refuses every write reports false; storageKV is the fallback', async () => {
  const full = new MemoryKV();
  full.put = async () => {
    throw new Error('QuotaExceededError');
  };
  const store = new Store({ local: new MemoryStorage(), session: new MemoryStorage(), locks: null, db: full, newId: () => 'x' });
  assert.equal(await store.write(savedState('x', { pending: [1, 'p'] })), false);
  const local = new MemoryStorage();
  const kv = storageKV(local);
  await kv.put('k', { a: 1 });
  assert.deepEqual(await kv.get('k'), { a: 1 });
  assert.deepEqual(await kv.keys('k'), ['k']);
  await kv.del('k');
  assert.equal(await kv.get('k'), undefined);
});

test('Store: a delta record after a full write gives the current text; a stale one is ignored', async () => {
  const { compose } = await import('../../src/ot/operation.js');
  const db = new MemoryKV();
  const store = new Store({ local: new MemoryStorage(), session: new MemoryStorage(), locks: null, db, newId: () => 'x' });
  await store.write(savedState('t', { pending: [3, 'x'], text: 'abcx', saved: 10 }));
  // Two local edits since, composed as the session does (from the empty op).
  let delta = compose([], [4, '😀']);
  delta = compose(delta, [1, -1]);
  assert.deepEqual(delta, [1, -1, 2, '😀']);
  const state = { ...savedState('t', { pending: [3, 'x'] }).state, buffer: [1, -1, 2, '😀'] };
  assert.equal(await store.writeDelta({ doc: 'd', client: 't', base: 10, state, edits: 3, saved: 11, delta }), true);
  let got = await store.read('d', 't');
  assert.equal(got.text, 'acx😀');
  assert.equal(got.saved, 11);
  assert.equal(got.edits, 3);
  assert.deepEqual(got.state.buffer, [1, -1, 2, '😀']);
  // A newer full write makes the old delta stale.
  await store.write(savedState('t', { pending: [3, 'y'], text: 'abcy', saved: 12 }));
  got = await store.read('d', 't');
  assert.equal(got.text, 'abcy');
  // A delta that does not fit its base falls back to the full entry.
  await store.writeDelta({ doc: 'd', client: 't', base: 12, state, edits: 1, saved: 13, delta: [100, 'z'] });
  assert.equal((await store.read('d', 't')).text, 'abcy');
  await store.remove('d', 't');
  assert.equal(await db.get(entryKey('d', 't')), undefined);
  assert.equal(await db.get(deltaKey('d', 't')), undefined);
});

test('Store: the base of unsent edits (serverBase) comes from a synchronized full write or is saved with the entry', async () => {
  const db = new MemoryKV();
  const store = new Store({ local: new MemoryStorage(), session: new MemoryStorage(), locks: null, db, newId: () => 'x' });
  // A full write while synchronized at rev 3, then offline edits as a delta.
  await store.write(savedState('t', { text: 'abc', saved: 10 }));
  await store.writeDelta({ doc: 'd', client: 't', base: 10, state: savedState('t', { pending: [3, 'x'] }).state, edits: 1, saved: 11, delta: [3, 'x'] });
  let got = await store.read('d', 't');
  assert.equal(got.text, 'abcx');
  assert.deepEqual(got.serverBase, { rev: 3, text: 'abc' });
  // A full write with unsent edits keeps the base it was given.
  await store.write({ ...savedState('t', { pending: [1, 'y'], text: 'aybcx', saved: 12 }), serverBase: { rev: 3, text: 'abcx' } });
  got = await store.read('d', 't');
  assert.deepEqual(got.serverBase, { rev: 3, text: 'abcx' });
  // Without one, nothing is made up.
  await store.write(savedState('t', { pending: [1, 'y'], text: 'aybc', saved: 13 }));
  assert.equal((await store.read('d', 't')).serverBase, undefined);
});

test('Store: the synchronous pagehide copy is taken over when newer than entry plus delta, dropped when older', async () => {
  const local = new MemoryStorage();
  const db = new MemoryKV();
  const store = new Store({ local, session: new MemoryStorage(), locks: null, db, newId: () => 'x' });
  await store.claim('d');
  await store.write(savedState('t', { pending: [3, 'x'], text: 'abcx', saved: 10 }));
  await store.writeDelta({ doc: 'd', client: 't', base: 10, state: savedState('t', { pending: [3, 'xy'] }).state, edits: 2, saved: 30, delta: [4, 'y'] });
  // An older copy (saved 20 < 30): IndexedDB's state wins, the copy goes.
  assert.ok(store.writeNow(savedState('t', { pending: [3, 'x'], text: 'abcx-old', saved: 20 })));
  const s2 = new Store({ local, session: new MemoryStorage(), locks: null, db, newId: () => 'y' });
  await s2.takeOver();
  assert.equal((await s2.read('d', 't')).text, 'abcxy');
  assert.equal(local.getItem(entryKey('d', 't')), null);
  // A newer copy (saved 40): it replaces entry and delta.
  assert.ok(store.writeNow(savedState('t', { pending: [3, 'xyz'], text: 'abcxyz', saved: 40 })));
  await s2.takeOver();
  const got = await s2.read('d', 't');
  assert.equal(got.text, 'abcxyz');
  assert.equal(got.saved, 40);
  assert.equal(local.getItem(entryKey('d', 't')), null);
});
