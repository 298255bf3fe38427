// Randomized simulation of the OT client against a reference server model.
//
// The reference server keeps one ordered log: a submission is dropped if the
// same (client, seq) is among the records after its base revision (the ack
// then names the first revision), else it is transformed over every record
// after its base revision (those were sequenced first), applied and appended.
// Between the server and each connection run two FIFO queues, so acks and
// broadcasts reach a client in the order the server sent them, while the
// steps of all parties interleave at random. Connections drop at random:
// what the client had in flight may still reach the server (and be applied)
// or be lost; what the server had in flight to the client is lost. The client
// rejoins with its revision and resends; sometimes it "reloads" instead,
// rebuilt from its saved state. A join may be answered late, after broadcasts
// already reached the new connection (the socket joined the room before the
// log was read). Broadcasts skip the author's socket or, in the other server
// mode, every socket of the author's client id.
//
// Checked: after every step each client's text equals the server text at the
// client's revision with its unacknowledged edits applied; at the end every
// client has converged to the server's text and revision, and every
// submission (client, seq) is in the log exactly once, with no seq missing.

import test from 'node:test';
import assert from 'node:assert/strict';

import { OTClient, RevisionGapError, SYNCHRONIZED, ONLINE } from '../../src/ot/client.js';
import { changesToOp, opToChanges } from '../../src/ot/changes.js';
import { apply, transform } from '../../src/ot/operation.js';
import { makeRandom, randomOp, randomText } from './helpers.js';

class RefServer {
  constructor(text, mode) {
    this.mode = mode; // 'socket' or 'client': whom a broadcast skips
    this.texts = [text]; // texts[rev]
    this.log = []; // log[rev - 1] is the record that produced rev
    /** @type {Set<Conn>} connections in the document's room */
    this.members = new Set();
    /** @type {Array<{conn: Conn, rev: number}>} joins whose answer is not sent yet */
    this.joins = [];
  }

  get rev() {
    return this.log.length;
  }

  get text() {
    return this.texts[this.texts.length - 1];
  }

  /** handle processes one message from a connection (alive or not). */
  handle(conn, msg) {
    if (msg.type === 'join') {
      if (conn.alive) {
        this.members.add(conn);
        this.joins.push({ conn, rev: msg.rev });
      }
      return;
    }
    const { client, seq, rev, op } = msg.sub;
    assert.ok(rev <= this.rev, `submission based on future revision ${rev} > ${this.rev}`);
    const since = this.log.slice(rev);
    const dup = since.find((r) => r.client === client && r.seq === seq);
    if (dup) {
      conn.send({ type: 'ack', seq, rev: dup.rev });
      return;
    }
    let o = op;
    for (const r of since) o = transform(r.op, o)[1];
    const text = apply(this.text, o); // throws if the op does not fit
    const record = { rev: this.rev + 1, op: o, client, seq };
    this.log.push(record);
    this.texts.push(text);
    conn.send({ type: 'ack', seq, rev: record.rev });
    for (const m of this.members) {
      if (!m.alive || m === conn) continue;
      if (this.mode === 'client' && m.client === client) continue;
      m.send({ type: 'record', record: structuredClone(record) });
    }
  }

  /** answerJoin answers the i-th pending join with the records after its rev. */
  answerJoin(i) {
    const [{ conn, rev }] = this.joins.splice(i, 1);
    conn.send({ type: 'joined', records: structuredClone(this.log.slice(rev)) });
  }
}

class Conn {
  constructor(client) {
    this.client = client;
    this.alive = true;
    this.toServer = [];
    this.toClient = [];
  }

  send(msg) {
    if (this.alive) this.toClient.push(msg);
  }
}

class SimClient {
  constructor(id, rev, text) {
    this.id = id;
    this.ot = new OTClient({ client: id, rev });
    this.text = text;
    /** @type {Conn | null} */
    this.conn = null;
    this.reloads = 0;
  }

  submit(sub) {
    if (!sub) return;
    assert.ok(this.conn && this.conn.alive, 'the client sends only when online');
    this.conn.toServer.push({ type: 'op', sub: structuredClone(sub) });
  }

  applyOp(op) {
    if (op) this.text = apply(this.text, op);
  }
}

function simulate(seed) {
  const rnd = makeRandom(seed);
  const mode = rnd.chance(0.5) ? 'socket' : 'client';
  const server = new RefServer(randomText(rnd, rnd.int(8)), mode);
  const nClients = 2 + rnd.int(4);
  const clients = [];
  /** @type {Conn[]} dead connections whose messages may still reach the server */
  let limbo = [];
  const stats = { edits: 0, gaps: 0, disconnects: 0, reloads: 0, early: 0 };

  const connect = (c) => {
    c.conn = new Conn(c.id);
    const { client, rev } = c.ot.join();
    c.conn.toServer.push({ type: 'join', client, rev });
  };
  const disconnect = (c, reload) => {
    c.conn.alive = false;
    c.conn.toClient = [];
    server.members.delete(c.conn);
    server.joins = server.joins.filter((j) => j.conn !== c.conn);
    // What was in flight to the server may still arrive, or not.
    c.conn.toServer = c.conn.toServer.filter(() => rnd.chance(0.5));
    if (c.conn.toServer.length > 0) limbo.push(c.conn);
    c.conn = null;
    c.ot.disconnect();
    stats.disconnects++;
    if (reload) {
      // The page reloads: only the saved state and the saved text survive.
      const saved = JSON.parse(JSON.stringify({ ot: c.ot, text: c.text }));
      c.ot = OTClient.fromJSON(saved.ot);
      c.text = saved.text;
      stats.reloads++;
    }
  };
  const deliverToClient = (c) => {
    const msg = c.conn.toClient.shift();
    try {
      if (msg.type === 'ack') {
        c.submit(c.ot.ack(msg.seq, msg.rev));
      } else if (msg.type === 'record') {
        if (c.ot.connection !== ONLINE) stats.early++;
        const out = c.ot.receive(msg.record);
        c.applyOp(out.apply);
        c.submit(out.send);
      } else if (msg.type === 'joined') {
        const out = c.ot.resume(msg.records);
        c.applyOp(out.apply);
        c.submit(out.send);
      }
    } catch (err) {
      if (!(err instanceof RevisionGapError)) throw err;
      // Something was missed: rejoin to catch up.
      stats.gaps++;
      disconnect(c, false);
      connect(c);
    }
  };
  const check = (c, where) => {
    const base = server.texts[c.ot.rev];
    assert.equal(c.text, apply(base, c.ot.localOp()), `seed ${seed}, ${where}: client ${c.id} text != server text at rev ${c.ot.rev} + local edits`);
  };

  for (let i = 0; i < nClients; i++) {
    const c = new SimClient(`c${i}`, 0, server.text);
    connect(c);
    clients.push(c);
  }

  // Each seed draws its own weather: how often clients type, how fast each
  // side is, how often connections drop.
  const w = {
    edit: 1 + rnd.int(6),
    toClient: 1 + rnd.int(6),
    toServer: 1 + rnd.int(6),
    join: 1 + rnd.int(3),
    drop: rnd.int(3),
    reconnect: 1 + rnd.int(3),
  };
  const kinds = Object.keys(w);
  const weightSum = kinds.reduce((n, k) => n + w[k], 0);
  const pickKind = () => {
    let x = rnd.int(weightSum);
    for (const k of kinds) {
      if (x < w[k]) return k;
      x -= w[k];
    }
    throw new Error('unreachable');
  };

  const steps = 150 + rnd.int(150);
  for (let step = 0; step < steps; step++) {
    const c = rnd.pick(clients);
    const kind = pickKind();
    if (kind === 'edit') {
      // A local edit, made as an editor makes it: UTF-16 changes.
      const changes = opToChanges(c.text, randomOp(rnd, c.text));
      const op = changesToOp(c.text, changes);
      c.applyOp(op);
      stats.edits++;
      c.submit(c.ot.edit(op));
    } else if (kind === 'toClient') {
      if (c.conn && c.conn.toClient.length > 0) deliverToClient(c);
    } else if (kind === 'toServer') {
      const conns = clients.filter((x) => x.conn && x.conn.toServer.length > 0).map((x) => x.conn);
      const from = rnd.chance(0.5) && limbo.length > 0 ? rnd.pick(limbo) : rnd.pick(conns);
      if (from && from.toServer.length > 0) server.handle(from, from.toServer.shift());
      limbo = limbo.filter((x) => x.toServer.length > 0);
    } else if (kind === 'join') {
      if (server.joins.length > 0) server.answerJoin(rnd.int(server.joins.length));
    } else if (kind === 'drop') {
      if (c.conn && rnd.chance(0.3)) disconnect(c, rnd.chance(0.3));
    } else if (kind === 'reconnect') {
      if (!c.conn) connect(c);
    }
    for (const x of clients) check(x, `step ${step}`);
  }

  // Heal: everyone reconnects, every message is delivered.
  for (const c of clients) if (!c.conn) connect(c);
  for (let round = 0; ; round++) {
    assert.ok(round < 100000, `seed ${seed}: no quiescence`);
    let busy = false;
    for (const conn of limbo) {
      while (conn.toServer.length > 0) server.handle(conn, conn.toServer.shift());
    }
    limbo = [];
    while (server.joins.length > 0) server.answerJoin(0);
    for (const c of clients) {
      if (c.conn.toServer.length > 0) {
        server.handle(c.conn, c.conn.toServer.shift());
        busy = true;
      }
      if (c.conn.toClient.length > 0) {
        deliverToClient(c);
        busy = true;
      }
      check(c, `heal round ${round}`);
    }
    if (!busy && server.joins.length === 0) break;
  }

  for (const c of clients) {
    assert.equal(c.ot.state, SYNCHRONIZED, `seed ${seed}: client ${c.id} still has unacknowledged edits`);
    assert.equal(c.ot.connection, ONLINE, `seed ${seed}: client ${c.id} not online`);
    assert.equal(c.ot.rev, server.rev, `seed ${seed}: client ${c.id} at rev ${c.ot.rev}, server at ${server.rev}`);
    assert.equal(c.text, server.text, `seed ${seed}: client ${c.id} diverged`);
    // Exactly once: seqs 1..n, each in the log once.
    const seqs = server.log.filter((rec) => rec.client === c.id).map((rec) => rec.seq);
    const want = Array.from({ length: c.ot.seq }, (_, k) => k + 1);
    assert.deepEqual(seqs, want, `seed ${seed}: client ${c.id} submissions in the log`);
  }
  return stats;
}

test('simulation: clients converge with the reference server', () => {
  const total = { edits: 0, gaps: 0, disconnects: 0, reloads: 0, early: 0 };
  const seeds = 400;
  // Seeds 1..400, plus seeds found (by running 4000) to produce a revision
  // gap: an op from a dropped connection applied after the client rejoined,
  // with broadcasts skipping the author's client id. Rare, so named here.
  const gapSeeds = [601, 675, 750, 1183];
  const all = [...Array.from({ length: seeds }, (_, i) => i + 1), ...gapSeeds];
  for (const seed of all) {
    const s = simulate(seed);
    for (const k of Object.keys(total)) total[k] += s[k];
  }
  if (process.env.SIM_STATS) console.log(total);
  // The scenarios the simulation is for did happen.
  assert.ok(total.edits > seeds * 40, `edits: ${total.edits}`);
  assert.ok(total.disconnects > seeds, `disconnects: ${total.disconnects}`);
  assert.ok(total.reloads > seeds / 4, `reloads: ${total.reloads}`);
  assert.ok(total.gaps > 0, `gaps: ${total.gaps}`);
  assert.ok(total.early > 0, `records while joining: ${total.early}`);
});
