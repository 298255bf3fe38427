// Cluster mode: several collabd processes on one nats-server (JetStream on a
// temporary store), every node serving every document. Editors on different
// nodes converge; a node killed mid-run or nats-server killed and restarted
// loses and duplicates nothing; nodes started at once all come up; a token
// revoked through one node is refused by all.
//
// The whole file is skipped while the collabd binary has no --nats flag
// (cluster mode not wired yet).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';

import { Server, NatsServer, Balancer, Editor, clusterMode, connect, call, next, settle, randomEdit, rng, sleep } from '../lib/helpers.js';

let haveCluster = false;
before(async () => {
  haveCluster = await clusterMode();
});

// Everything started by a test, stopped in reverse order by its cleanup.
function cleanup() {
  const items = [];
  return {
    add(x) {
      items.push(x);
      return x;
    },
    async run() {
      for (const x of items.reverse()) await x.close().catch(() => {});
    },
  };
}

function skipWithoutCluster(t) {
  if (haveCluster) return false;
  t.skip('collabd has no --nats flag: cluster mode (branch wiring) is not merged');
  return true;
}

// startNodes starts n collabd nodes on nats, one after the other or (atOnce)
// all at the same moment.
async function startNodes(nats, n, { atOnce = false, prefix = 'node' } = {}) {
  const start = (k) => Server.start({ args: ['--nats', nats.url, '--node-name', `${prefix}${k}`] });
  if (atOnce) return Promise.all(Array.from({ length: n }, (_, k) => start(k)));
  const nodes = [];
  for (let k = 0; k < n; k++) nodes.push(await start(k));
  return nodes;
}

// sameEverywhere waits (bounded) until GET /api/docs/{id} on every node
// answers want's text and revision, and fails with the last answers.
async function sameEverywhere(nodes, doc, want, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await Promise.all(nodes.map((s) => s.doc(doc)));
    if (got.every((d) => d.text === want.text && d.rev === want.rev)) return;
    if (Date.now() > end) {
      assert.fail(`nodes disagree on ${doc}: want rev ${want.rev}, got ${got.map((d, k) => `node${k} rev ${d.rev} (${d.text.length} chars)`).join(', ')}`);
    }
    await sleep(50);
  }
}

// readyz returns the status of GET /readyz, or 0 when the node does not answer.
async function readyz(server) {
  try {
    return (await server.api('GET', '/readyz')).status;
  } catch {
    return 0;
  }
}

// untilReady waits (bounded) until every node's /readyz answers status.
async function untilReady(nodes, status, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await Promise.all(nodes.map(readyz));
    if (got.every((s) => s === status)) return;
    if (Date.now() > end) assert.fail(`/readyz did not turn ${status} within ${timeoutMs} ms: ${got.join(', ')}`);
    await sleep(50);
  }
}

// boundaries are the positions between tokens (tokens are ASCII <...>), where
// an insert keeps every token whole.
function boundaries(text) {
  const out = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '>') out.push(i + 1);
  return out;
}

// checkTokens asserts that every token is in text exactly once and that
// nothing else is: the length is the initial text's plus the tokens'.
function checkTokens(text, initial, tokens, seed) {
  for (const tok of tokens) {
    const count = text.split(tok).length - 1;
    assert.equal(count, 1, `${tok} appears ${count} times (seed ${seed})`);
  }
  assert.equal(text.length, initial.length + tokens.reduce((s, x) => s + x.length, 0), `length (seed ${seed})`);
}

// memberEvent resolves with the first doc:member about client on socket, or
// null after timeoutMs.
function memberEvent(socket, client, timeoutMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off('doc:member', on);
      resolve(null);
    }, timeoutMs);
    const on = (m) => {
      if (m?.client !== client) return;
      clearTimeout(timer);
      socket.off('doc:member', on);
      resolve(m);
    };
    socket.on('doc:member', on);
  });
}

// presenceAcrossNodes joins a watcher on nodes[0] and checks that the
// editors on the other nodes get its doc:member, and that its join ack
// lists every editor.
async function presenceAcrossNodes(nodes, editors, doc, onNode) {
  const remote = editors.filter((e, k) => onNode[k] !== 0);
  const heard = Promise.all(remote.map((e) => memberEvent(e.socket, 'watcher', 5000)));
  const watcher = await connect(nodes[0].url, { transports: ['websocket'] });
  try {
    const ack = await call(watcher, 'doc:join', { doc, client: 'watcher' });
    assert.ok(ack.ok, JSON.stringify(ack));
    const got = await heard;
    for (const [k, m] of got.entries()) {
      assert.ok(m, `${remote[k].id} got no doc:member for a joiner on another node`);
      assert.equal(m.joined, true);
    }
    for (const e of editors) assert.ok(ack.members.some((m) => m.client === e.id), `members of the join ack lack ${e.id}: ${JSON.stringify(ack.members)}`);
  } finally {
    watcher.close();
  }
}

for (const [n, transports] of [[2, null], [3, ['websocket']]]) {
  test(`${n} nodes on one nats-server: editors on different nodes converge`, async (t) => {
    if (skipWithoutCluster(t)) return;
    const seed = 9100 + n;
    const c = cleanup();
    const editors = [];
    try {
      const nats = c.add(await NatsServer.start());
      const nodes = (await startNodes(nats, n)).map((s) => c.add(s));
      const doc = `cluster-conv-${n}`;
      const count = 2 * n;
      const onNode = [];
      for (let k = 0; k < count; k++) {
        onNode.push(k % n);
        editors.push(new Editor(nodes[k % n].url, doc, `c${k}-${seed}`, transports ? { transports } : {}));
      }
      await Promise.all(editors.map((e) => e.joined()));
      await presenceAcrossNodes(nodes, editors, doc, onNode);
      const edits = 30;
      await Promise.all(editors.map(async (e, k) => {
        const r = rng(seed * 31 + k);
        for (let j = 0; j < edits; j++) {
          e.edit(randomEdit(r, e.length));
          await sleep(r.int(20));
        }
      }));
      const d = await settle(nodes[0], editors, doc, 60000);
      for (const e of editors) {
        assert.equal(e.text, d.text, `${e.id} diverged (seed ${seed})`);
        assert.equal(e.ownBroadcasts, 0, `${e.id} got its own ops back (seed ${seed})`);
      }
      await sameEverywhere(nodes, doc, d);
      const acked = editors.reduce((s, e) => s + e.ackedOps, 0);
      assert.equal(acked, d.rev, `every revision is one acked op (seed ${seed})`);
      assert.ok(d.rev >= count, `only ${d.rev} revisions`);
    } finally {
      editors.forEach((e) => e.close());
      await c.run();
    }
  });
}

test('a node SIGKILLed mid-run: its editors go on through the balancer, nothing lost or doubled', async (t) => {
  if (skipWithoutCluster(t)) return;
  const seed = 9201;
  const c = cleanup();
  const editors = [];
  try {
    const nats = c.add(await NatsServer.start());
    const nodes = (await startNodes(nats, 3)).map((s) => c.add(s));
    const lb = c.add(await Balancer.start(nodes.map((s) => s.port)));
    const doc = 'cluster-kill';
    const initial = '<init>';
    const put = await nodes[0].api('PUT', `/api/docs/${doc}`, { body: initial, headers: { 'If-Match': '0', 'Content-Type': 'text/plain' } });
    assert.equal(put.status, 200, put.text);
    const n = 6;
    for (let k = 0; k < n; k++) editors.push(new Editor(lb.url, doc, `k${k}`, { transports: ['websocket'] }));
    await Promise.all(editors.map((e) => e.joined()));
    for (const s of nodes) assert.ok(lb.counts[s.port] > 0, `no editor on node port ${s.port}: ${JSON.stringify(lb.counts)}`);
    const victim = nodes[1];
    const before = lb.counts[victim.port];
    const edits = 30;
    const tokens = [];
    let kill = null;
    await Promise.all(editors.map(async (e, k) => {
      const r = rng(seed * 17 + k);
      for (let j = 0; j < edits; j++) {
        const token = `<${e.id}-${j}>`;
        tokens.push(token);
        if (kill === null && tokens.length >= (n * edits) / 2) kill = victim.stop('SIGKILL');
        e.edit([r.pick(boundaries(e.text)), token]);
        await sleep(r.int(25));
      }
    }));
    await kill;
    const alive = [nodes[0], nodes[2]];
    const d = await settle(alive[0], editors, doc, 60000);
    for (const e of editors) assert.equal(e.text, d.text, `${e.id} diverged (seed ${seed})`);
    checkTokens(d.text, initial, tokens, seed);
    await sameEverywhere(alive, doc, d);
    assert.equal(lb.counts[victim.port], before, 'the balancer sent a connection to the dead node');
    assert.ok(editors.filter((e) => e.joins >= 2).length >= 1, 'no editor rejoined after the kill');
  } finally {
    editors.forEach((e) => e.close());
    await c.run();
  }
});

test('nats-server SIGKILLed and restarted: nodes recover, nothing acknowledged is lost', async (t) => {
  if (skipWithoutCluster(t)) return;
  const seed = 9301;
  const c = cleanup();
  const editors = [];
  try {
    const nats = c.add(await NatsServer.start({ syncAlways: true }));
    const nodes = (await startNodes(nats, 2)).map((s) => c.add(s));
    await untilReady(nodes, 200, 10000);
    const doc = 'cluster-nats-restart';
    const initial = '<init>';
    const put = await nodes[0].api('PUT', `/api/docs/${doc}`, { body: initial, headers: { 'If-Match': '0', 'Content-Type': 'text/plain' } });
    assert.equal(put.status, 200, put.text);
    const n = 4;
    for (let k = 0; k < n; k++) {
      editors.push(new Editor(nodes[k % 2].url, doc, `n${k}`, { transports: ['websocket'] }, { retry: ['unavailable', 'internal'] }));
    }
    await Promise.all(editors.map((e) => e.joined()));
    const retried = () => editors.reduce((s, e) => s + (e.retries.unavailable ?? 0), 0);
    const edits = 30;
    const tokens = [];
    let outage = null;
    let during503 = false;
    const outageRun = async () => {
      await nats.stop('SIGKILL');
      // Keep it down until every node says it is not ready and an op was
      // refused as unavailable (the store waits 2 s for the connection,
      // docs/operations.md). Bounded: the check below fails otherwise.
      await untilReady(nodes, 503, 20000);
      during503 = true;
      const end = Date.now() + 60000;
      while (retried() === 0 && Date.now() < end) await sleep(50);
      await nats.restart();
      await untilReady(nodes, 200, 30000);
    };
    await Promise.all(editors.map(async (e, k) => {
      const r = rng(seed * 13 + k);
      for (let j = 0; j < edits; j++) {
        const token = `<${e.id}-${j}>`;
        tokens.push(token);
        if (outage === null && tokens.length >= (n * edits) / 3) outage = outageRun();
        e.edit([r.pick(boundaries(e.text)), token]);
        await sleep(20 + r.int(30));
      }
    }));
    await outage;
    assert.ok(during503, '/readyz never answered 503 during the outage');
    const d = await settle(nodes[0], editors, doc, 60000);
    for (const e of editors) assert.equal(e.text, d.text, `${e.id} diverged (seed ${seed})`);
    checkTokens(d.text, initial, tokens, seed);
    await sameEverywhere(nodes, doc, d);
    const codes = editors.map((e) => `${e.id}: ${JSON.stringify(e.retries)}`).join('; ');
    t.diagnostic(`retried errors: ${codes}`);
    assert.ok(retried() > 0, `no op was answered unavailable during the outage (${codes})`);
  } finally {
    editors.forEach((e) => e.close());
    await c.run();
  }
});

test('three nodes started at the same moment on a fresh JetStream all come up and share documents', async (t) => {
  if (skipWithoutCluster(t)) return;
  const c = cleanup();
  const editors = [];
  try {
    const nats = c.add(await NatsServer.start());
    const nodes = (await startNodes(nats, 3, { atOnce: true })).map((s) => c.add(s));
    await untilReady(nodes, 200, 10000);
    const doc = 'cluster-at-once';
    for (const [k, s] of nodes.entries()) editors.push(new Editor(s.url, doc, `o${k}`, { transports: ['websocket'] }));
    await Promise.all(editors.map((e) => e.joined()));
    for (const [k, e] of editors.entries()) e.edit([0, `<${k}>`]);
    const d = await settle(nodes[0], editors, doc, 30000);
    assert.equal(d.rev, 3);
    for (const k of [0, 1, 2]) assert.ok(d.text.includes(`<${k}>`), `edit of node ${k} missing: ${d.text}`);
    await sameEverywhere(nodes, doc, d);
  } finally {
    editors.forEach((e) => e.close());
    await c.run();
  }
});


test('a token revoked through one node: its socket on another node loses access, and no node accepts it', async (t) => {
  if (skipWithoutCluster(t)) return;
  const c = cleanup();
  const sockets = [];
  try {
    const nats = c.add(await NatsServer.start());
    const secret = 'e2e-cluster-auth-secret-0123456789';
    const admin = 'e2e-cluster-admin-secret-0123456789';
    const nodes = [];
    for (let k = 0; k < 2; k++) {
      nodes.push(c.add(await Server.start({ secret, args: ['--nats', nats.url, '--node-name', `rev${k}`, '--admin-secret', admin] })));
    }
    const tok = await nodes[0].token({ user: 'bob', edit: ['*'], jti: 'bob-e2e' });
    const bob = await connect(nodes[1].url, { transports: ['websocket'], auth: { token: tok } });
    sockets.push(bob);
    assert.equal((await call(bob, 'doc:join', { doc: 'cluster-revoked', client: 'bob-c' })).ok, true);
    const expired = next(bob, 'auth:expired', 10000);
    const res = await nodes[0].api('POST', '/admin/revocations', {
      body: JSON.stringify({ jti: ['bob-e2e'] }),
      headers: { Authorization: `Bearer ${admin}` },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal((await expired).reason, 'revoked');
    const op = await call(bob, 'doc:op', { doc: 'cluster-revoked', client: 'bob-c', seq: 1, rev: 0, op: ['x'] });
    assert.equal(op.error?.code, 'forbidden');
    for (const n of nodes) {
      await assert.rejects(connect(n.url, { transports: ['websocket'], auth: { token: tok }, reconnection: false }), `node ${n.url} accepted the revoked token`);
    }
  } finally {
    sockets.forEach((s) => s.close());
    await c.run();
  }
});
