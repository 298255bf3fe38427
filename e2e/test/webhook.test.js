// Webhooks, op writes over HTTP and tokens over time, against a real
// collabd: a real HTTP receiver checks every signature (the few lines of
// docs/operations.md), sees debounced events with the right revision
// ranges, gets an event again after answering 500, and gets the deliveries
// left pending by a stopped server after its restart.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';

import { Server, Editor, settle, sleep, connect, call, next } from '../lib/helpers.js';

const SECRET = 'e2e-webhook-secret';

// verify is the receiver's check of docs/operations.md.
function verify(secret, header, body, toleranceSec = 300) {
  const parts = Object.fromEntries((header || '').split(',').map((p) => p.split('=')));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSec) return false;
  const mac = createHmac('sha256', secret).update(`${parts.t}.`).update(body).digest();
  const got = Buffer.from(parts.v1 || '', 'hex');
  return got.length === mac.length && timingSafeEqual(got, mac);
}

// receiver runs an HTTP endpoint; status(n) answers the n-th request.
async function receiver(status = () => 200) {
  const r = { events: [], bad: 0, n: 0, status };
  r.server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (!verify(SECRET, req.headers['collabd-signature'], body)) {
        r.bad++;
        res.writeHead(400).end();
        return;
      }
      r.n++;
      const code = r.status(r.n);
      if (code === 200) {
        r.events.push({ ...JSON.parse(body), attempt: Number(req.headers['collabd-attempt']), at: Date.now() });
      }
      res.writeHead(code).end();
    });
  });
  await new Promise((resolve) => r.server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${r.server.address().port}/hook`;
  r.close = () => new Promise((resolve) => r.server.close(resolve));
  return r;
}

async function until(what, cond, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('webhooks: signed, debounced, right revision ranges, retried after a 500', async () => {
  // The first request (the created event) is answered 500.
  const r = await receiver((n) => (n === 1 ? 500 : 200));
  cleanups.push(r.close);
  const server = await Server.start({ args: ['--webhook-url', r.url, '--webhook-secret', SECRET, '--webhook-debounce', '400ms'] });
  cleanups.push(() => server.close());
  const doc = 'hooked';
  const editors = [new Editor(server.url, doc, 'w1'), new Editor(server.url, doc, 'w2')];
  try {
    await Promise.all(editors.map((e) => e.joined()));
    const start = Date.now();
    for (let j = 0; j < 10; j++) {
      for (const e of editors) e.edit([0, `<${e.id}.${j}>`]);
      await sleep(20);
    }
    const d = await settle(server, editors, doc);
    await until('change events up to the head', () => r.events.some((e) => e.type === 'doc.changed' && e.to_rev === d.rev));
    await sleep(600); // quiet: nothing more comes
    const changed = r.events.filter((e) => e.type === 'doc.changed');
    // Contiguous ranges from 1 to the head, each sent after a quiet 400 ms.
    let nextRev = 1;
    for (const e of changed) {
      assert.equal(e.doc, doc);
      assert.equal(e.from_rev, nextRev, JSON.stringify(changed));
      nextRev = e.to_rev + 1;
      assert.ok(e.at - start >= 400, `event ${e.at - start} ms after the first edit`);
    }
    assert.equal(nextRev, d.rev + 1);
    assert.ok(changed.length <= 3, `${changed.length} change events for one burst: not debounced`);
    assert.equal(changed.reduce((n, e) => n + e.ops, 0), d.rev);
    const created = r.events.filter((e) => e.type === 'doc.created');
    assert.equal(created.length, 1);
    assert.equal(created[0].attempt, 2, 'the created event came again after the 500');
    assert.equal(r.bad, 0);
  } finally {
    for (const e of editors) e.close();
  }

  // An op written over HTTP reaches the live editor as a normal record and
  // is reported too; its retry applies nothing.
  const ed = new Editor(server.url, 'hooked-http', 'live');
  try {
    await ed.joined();
    const body = JSON.stringify({ rev: 0, op: ['from http'], client: 'script', seq: 1 });
    for (let i = 0; i < 2; i++) {
      const res = await server.api('POST', '/api/docs/hooked-http/ops', { body, headers: { 'Content-Type': 'application/json' } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.rev, 1);
    }
    await until('editor sees the HTTP op', () => ed.text === 'from http');
    await until('change event of the HTTP op', () => r.events.some((e) => e.doc === 'hooked-http' && e.type === 'doc.changed' && e.to_rev === 1));
  } finally {
    ed.close();
  }
});

test('webhooks: deliveries pending at a stop are sent after the restart', async () => {
  const r = await receiver(() => 503);
  cleanups.push(r.close);
  const server = await Server.start({ args: ['--webhook-url', r.url, '--webhook-secret', SECRET, '--webhook-debounce', '100ms'] });
  cleanups.push(() => server.close());
  const res = await server.api('POST', '/api/docs/pending/append', { body: JSON.stringify({ text: 'kept' }) });
  assert.equal(res.status, 200, res.text);
  await until('a failed attempt', () => r.n >= 1);
  await server.stop('SIGTERM');
  r.status = () => 200;
  await server.restart('SIGTERM');
  await until('pending deliveries after the restart', () => r.events.some((e) => e.type === 'doc.changed' && e.doc === 'pending'));
  const ch = r.events.find((e) => e.type === 'doc.changed');
  assert.equal(ch.from_rev, 1);
  assert.equal(ch.to_rev, 1);
  assert.ok(r.events.some((e) => e.type === 'doc.created'));
});

test('tokens: expiry on an open connection, refresh keeps the op in flight', async () => {
  const secret = 'e2e-token-lifetime-secret-0123456789';
  const server = await Server.start({ secret });
  cleanups.push(() => server.close());
  const mint = async (ttl) => {
    const { execFile } = await import('node:child_process');
    const { collabdBinary } = await import('../lib/helpers.js');
    const bin = await collabdBinary();
    return new Promise((resolve, reject) => execFile(bin, ['token', '--auth-secret', secret, '--user', 'ann', '--edit', '*', '--ttl', ttl], (err, out) => (err ? reject(err) : resolve(out.trim()))));
  };
  const socket = await connect(server.url, { auth: { token: await mint('3s') } });
  try {
    let ack = await call(socket, 'doc:join', { doc: 'ttl', client: 'ann-1' });
    assert.ok(ack.ok, JSON.stringify(ack));
    // An op and, right behind it, a refresh: the op is acknowledged.
    const [opAck, refreshAck] = await Promise.all([
      call(socket, 'doc:op', { doc: 'ttl', client: 'ann-1', seq: 1, rev: 0, op: ['a'] }),
      call(socket, 'auth:refresh', { token: await mint('2s') }),
    ]);
    assert.ok(opAck.ok && opAck.rev === 1, JSON.stringify(opAck));
    assert.ok(refreshAck.ok && refreshAck.exp, JSON.stringify(refreshAck));
    const expired = await next(socket, 'auth:expired', 6000);
    assert.equal(expired.reason, 'expired');
    assert.deepEqual(expired.docs, ['ttl']);
    ack = await call(socket, 'doc:op', { doc: 'ttl', client: 'ann-1', seq: 2, rev: 1, op: [1, 'b'] });
    assert.equal(ack.error?.code, 'forbidden');
    ack = await call(socket, 'auth:refresh', { token: await mint('1h') });
    assert.ok(ack.ok, JSON.stringify(ack));
    ack = await call(socket, 'doc:join', { doc: 'ttl', client: 'ann-1', rev: 1 });
    assert.ok(ack.ok, JSON.stringify(ack));
    ack = await call(socket, 'doc:op', { doc: 'ttl', client: 'ann-1', seq: 2, rev: 1, op: [1, 'b'] });
    assert.ok(ack.ok && ack.rev === 2, JSON.stringify(ack));
  } finally {
    socket.close();
  }
});

test('tokens: a revocation through the admin endpoint reaches an open connection', async () => {
  const secret = 'e2e-token-revocation-secret-0123456789';
  const admin = 'e2e-admin-secret-0123456789';
  const server = await Server.start({ secret, args: ['--admin-secret', admin] });
  cleanups.push(() => server.close());
  const { execFile } = await import('node:child_process');
  const { collabdBinary } = await import('../lib/helpers.js');
  const bin = await collabdBinary();
  const mint = (user, jti) => new Promise((resolve, reject) => execFile(bin, ['token', '--auth-secret', secret, '--user', user, '--edit', '*', '--jti', jti], (err, out) => (err ? reject(err) : resolve(out.trim()))));
  const ann = await connect(server.url, { auth: { token: await mint('ann', 'ann-laptop') } });
  const bob = await connect(server.url, { auth: { token: await mint('bob', 'bob-phone') } });
  try {
    for (const [s, c] of [[ann, 'ann-1'], [bob, 'bob-1']]) {
      const ack = await call(s, 'doc:join', { doc: 'rv', client: c });
      assert.ok(ack.ok, JSON.stringify(ack));
    }
    const expired = next(ann, 'auth:expired', 5000);
    let bobExpired = false;
    bob.on('auth:expired', () => { bobExpired = true; });
    const res = await server.api('POST', '/admin/revocations', {
      body: JSON.stringify({ jti: ['ann-laptop'] }),
      headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
    });
    assert.equal(res.status, 200, res.text);
    const ev = await expired;
    assert.equal(ev.reason, 'revoked');
    let ack = await call(ann, 'doc:op', { doc: 'rv', client: 'ann-1', seq: 1, rev: 0, op: ['x'] });
    assert.equal(ack.error?.code, 'forbidden');
    ack = await call(ann, 'auth:refresh', { token: await mint('ann', 'ann-laptop') });
    assert.equal(ack.error?.code, 'unauthorized', 'the revoked token cannot refresh');
    ack = await call(bob, 'doc:op', { doc: 'rv', client: 'bob-1', seq: 1, rev: 0, op: ['y'] });
    assert.ok(ack.ok, JSON.stringify(ack));
    assert.equal(bobExpired, false);
    const list = await server.api('GET', '/admin/revocations', { headers: { Authorization: `Bearer ${admin}` } });
    assert.deepEqual(list.json.jti, ['ann-laptop']);
    assert.equal((await server.api('GET', '/admin/revocations')).status, 401);
  } finally {
    ann.close();
    bob.close();
  }
});
