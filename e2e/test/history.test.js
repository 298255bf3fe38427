// doc:history, doc:revision, doc:diff and doc:restore return what was written.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Server, connect, call, next } from '../lib/helpers.js';

let server;
before(async () => {
  server = await Server.start();
});
after(async () => {
  await server?.close();
});

test('history, revision, diff and restore', async () => {
  const a = await connect(server.url, { transports: ['websocket'] });
  const b = await connect(server.url, { transports: ['polling'], upgrade: false });
  try {
    let ack = await call(a, 'doc:join', { doc: 'hist', client: 'ann', user: { name: 'Ann', color: '#ff0000' } });
    assert.deepEqual(ack, { ok: true, rev: 0, text: '', members: [] });
    ack = await call(b, 'doc:join', { doc: 'hist', client: 'bob' });
    assert.equal(ack.members.length, 1);
    assert.deepEqual(ack.members[0], { client: 'ann', user: { name: 'Ann', color: '#ff0000' } });
    const written = [['hello'], [5, ' world'], [-6], ['😀']];
    for (const [i, op] of written.entries()) {
      const got = await call(a, 'doc:op', { doc: 'hist', client: 'ann', seq: i + 1, rev: i, op });
      assert.deepEqual(got, { ok: true, rev: i + 1 });
    }
    const h = await call(b, 'doc:history', { doc: 'hist' });
    assert.equal(h.ok, true);
    assert.deepEqual(h.revs.map((r) => [r.rev, r.client, r.user, r.ins, r.del]), [
      [4, 'ann', 'Ann', 1, 0],
      [3, 'ann', 'Ann', 0, 6],
      [2, 'ann', 'Ann', 6, 0],
      [1, 'ann', 'Ann', 5, 0],
    ]);
    for (const r of h.revs) assert.match(r.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const page = await call(b, 'doc:history', { doc: 'hist', before: 3, limit: 1 });
    assert.deepEqual(page.revs.map((r) => r.rev), [2]);

    const texts = ['', 'hello', 'hello world', 'world', '😀world'];
    for (const [rev, text] of texts.entries()) {
      assert.deepEqual(await call(b, 'doc:revision', { doc: 'hist', rev }), { ok: true, rev, text });
    }
    for (const [from, to] of [[1, 4], [2, 4], [4, 0], [3, 3]]) {
      const d = await call(b, 'doc:diff', { doc: 'hist', from, to });
      assert.equal(d.ok, true);
      const side = (keep) => d.diffs.filter(([op]) => op === 0 || op === keep).map(([, t]) => t).join('');
      assert.equal(side(-1), texts[from], `diff ${from}..${to} source`);
      assert.equal(side(1), texts[to], `diff ${from}..${to} target`);
    }

    // A third socket reads without joining.
    const c = await connect(server.url);
    try {
      assert.equal((await call(c, 'doc:revision', { doc: 'hist', rev: 2 })).text, 'hello world');
      assert.equal((await call(c, 'doc:restore', { doc: 'hist', rev: 2 })).error.code, 'forbidden');
    } finally {
      c.close();
    }

    // Restore: a new revision, broadcast to every member, the requester too.
    const seenA = next(a, 'doc:op');
    const seenB = next(b, 'doc:op');
    const r = await call(b, 'doc:restore', { doc: 'hist', rev: 2 });
    assert.deepEqual(r, { ok: true, rev: 5 });
    for (const rec of [await seenA, await seenB]) {
      assert.equal(rec.doc, 'hist');
      assert.equal(rec.rev, 5);
      assert.notEqual(rec.client, 'bob');
    }
    assert.deepEqual(await server.doc('hist'), { id: 'hist', rev: 5, text: 'hello world' });
    assert.equal((await call(b, 'doc:revision', { doc: 'hist', rev: 9 })).error.code, 'not_found');
  } finally {
    a.close();
    b.close();
  }
});

test('named versions: the other members hear of a change (doc:versions:changed), from a socket and from the HTTP API', async () => {
  const a = await connect(server.url, { transports: ['websocket'] });
  const b = await connect(server.url, { transports: ['polling'], upgrade: false });
  try {
    const seenA = [];
    a.on('doc:versions:changed', (e) => seenA.push(e.action));
    await call(a, 'doc:join', { doc: 'vers', client: 'ann', user: { name: 'Ann' } });
    await call(b, 'doc:join', { doc: 'vers', client: 'bob', user: { name: 'Bob' } });
    assert.deepEqual(await call(a, 'doc:op', { doc: 'vers', client: 'ann', seq: 1, rev: 0, op: ['draft'] }), { ok: true, rev: 1 });

    let heard = next(b, 'doc:versions:changed');
    const created = await call(a, 'doc:version:create', { doc: 'vers', name: 'Sent' });
    assert.equal(created.ok, true);
    assert.deepEqual(await heard, { doc: 'vers', action: 'create', name: 'Sent', version: created.version });
    assert.equal(created.version.user, 'Ann');

    // Bob renames: Ann hears it.
    heard = next(a, 'doc:versions:changed');
    const renamed = await call(b, 'doc:version:rename', { doc: 'vers', name: 'Sent', to: 'v1' });
    assert.deepEqual(await heard, { doc: 'vers', action: 'rename', name: 'Sent', version: renamed.version });

    // A deletion through the HTTP API reaches both.
    const heardA = next(a, 'doc:versions:changed');
    const heardB = next(b, 'doc:versions:changed');
    const res = await fetch(`${server.url}/api/docs/vers/versions/v1`, { method: 'DELETE' });
    assert.equal(res.status, 204);
    for (const e of [await heardA, await heardB]) assert.deepEqual(e, { doc: 'vers', action: 'delete', name: 'v1' });
    // Ann's socket was not told of her own create: it has its ack.
    assert.deepEqual(seenA, ['rename', 'delete']);
  } finally {
    a.close();
    b.close();
  }
});

test('presence and doc:member', async () => {
  const a = await connect(server.url);
  const b = await connect(server.url);
  try {
    await call(a, 'doc:join', { doc: 'pres', client: 'ann', user: { name: 'Ann' } });
    const joined = next(a, 'doc:member');
    await call(b, 'doc:join', { doc: 'pres', client: 'bob', user: { name: 'Bob', color: '#00f' } });
    assert.deepEqual(await joined, { doc: 'pres', client: 'bob', user: { name: 'Bob', color: '#00f' }, joined: true });
    const p = next(b, 'doc:presence');
    assert.deepEqual(await call(a, 'doc:presence', { doc: 'pres', rev: 0, sel: [{ anchor: 0, head: 0 }] }), { ok: true });
    const got = await p;
    assert.equal(got.client, 'ann');
    assert.equal(got.user.name, 'Ann');
    assert.deepEqual(got.sel, [{ anchor: 0, head: 0 }]);
    const left = next(b, 'doc:member');
    a.close();
    const l = await left;
    assert.equal(l.client, 'ann');
    assert.equal(l.joined, false);
  } finally {
    a.close();
    b.close();
  }
});

test('bad input gets an error ack and leaves the connection usable', async () => {
  const a = await connect(server.url);
  try {
    await call(a, 'doc:join', { doc: 'bad', client: 'ann' });
    const cases = [
      ['doc:join', { doc: 'a b', client: 'x' }, 'bad_request'],
      ['doc:join', { doc: 'bad' }, 'bad_request'],
      ['doc:op', { doc: 'bad', client: 'ann', seq: 1, rev: 0, op: [5, 'x'] }, 'bad_request'],
      ['doc:op', { doc: 'bad', client: 'ann', seq: 1, rev: 3, op: ['x'] }, 'conflict'],
      ['doc:op', { doc: 'bad', client: 'ann', seq: '1', rev: 0, op: ['x'] }, 'bad_request'],
      ['doc:op', { doc: 'other', client: 'ann', seq: 1, rev: 0, op: ['x'] }, 'forbidden'],
      ['doc:op', { doc: 'bad', client: 'ann', seq: 1, rev: 0, op: ['\ud800'] }, 'bad_request'],
      ['doc:presence', { doc: 'bad', rev: 0, sel: 'x' }, 'bad_request'],
      ['doc:nope', { doc: 'bad' }, 'bad_request'],
      ['doc:history', 'bad', 'bad_request'],
    ];
    for (const [event, payload, code] of cases) {
      const ack = await call(a, event, payload);
      assert.equal(ack.ok, false, `${event} ${JSON.stringify(payload)}`);
      assert.equal(ack.error.code, code, `${event} ${JSON.stringify(payload)}: ${JSON.stringify(ack)}`);
    }
    assert.deepEqual(await call(a, 'doc:op', { doc: 'bad', client: 'ann', seq: 1, rev: 0, op: ['ok'] }), { ok: true, rev: 1 });
    assert.equal((await server.doc('bad')).text, 'ok');
  } finally {
    a.close();
  }
});
