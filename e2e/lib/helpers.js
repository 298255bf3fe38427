// Helpers of the end-to-end tests: build and run a real collabd binary on
// loopback, connect the real socket.io-client, and drive the client-side OT
// state machine of frontend/src/ot (imported by relative path: pure modules).

import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { io } from 'socket.io-client';

import { OTClient, SYNCHRONIZED, ONLINE } from '../../frontend/src/ot/client.js';
import { apply, normalize } from '../../frontend/src/ot/operation.js';
import { cpLength } from '../../frontend/src/ot/codepoints.js';

const execFileP = promisify(execFile);
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** sleep resolves after ms milliseconds. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * rng is a small seeded PRNG (mulberry32): the tests are reproducible for a
 * given seed, printed on failure.
 */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)] };
}

const built = new Map(); // package -> promise of its binary's path

/**
 * goBinary builds the Go package pkg (a path inside the module, or a module
 * package such as the nats-server tool) into a file named name, once per
 * test run, and returns its path. The binaries live in one folder per
 * checkout (no pile-up across runs); a stamp per binary with the test
 * runner's pid (test files run one after the other, each in a child of the
 * runner) tells a later file of the same run to reuse it.
 */
function goBinary(name, pkg) {
  if (!built.has(pkg)) {
    built.set(pkg, (async () => {
      const tag = createHash('sha256').update(repoRoot).digest('hex').slice(0, 12);
      const dir = path.join(tmpdir(), `collabd-e2e-${tag}`);
      await mkdir(dir, { recursive: true });
      const bin = path.join(dir, name);
      const stamp = path.join(dir, name === 'collabd' ? 'run' : `${name}.run`);
      const run = String(process.ppid);
      const current = await readFile(stamp, 'utf8').catch(() => '');
      if (current !== run) {
        await execFileP('go', ['build', '-o', bin + '.tmp', pkg], { cwd: repoRoot, maxBuffer: 16 << 20 });
        await rename(bin + '.tmp', bin);
        await writeFile(stamp, run);
      }
      return bin;
    })());
  }
  return built.get(pkg);
}

/** collabdBinary builds cmd/collabd once per test run and returns its path. */
export function collabdBinary() {
  return goBinary('collabd', './cmd/collabd');
}

/**
 * natsServerBinary builds nats-server from the Go module (the tool line of
 * go.mod, at the version go.mod requires) once per test run and returns its
 * path. It is never linked into collabd.
 */
export function natsServerBinary() {
  return goBinary('nats-server', 'github.com/nats-io/nats-server/v2');
}

/**
 * clusterMode reports whether the collabd binary has cluster mode (its
 * serve flags list --nats).
 */
export async function clusterMode() {
  const bin = await collabdBinary();
  const out = await execFileP(bin, ['serve', '-h']).catch((err) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }));
  return /^\s*-nats\b/m.test(out.stdout + out.stderr);
}

// Servers still running when the process exits (a failed test) are killed.
const running = new Set();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/** freePort asks the kernel for a free loopback port. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** tempDir makes a fresh data directory, removed by the returned cleanup. */
export async function tempDir() {
  return mkdtemp(path.join(tmpdir(), 'collabd-e2e-data-'));
}

export async function removeDir(dir) {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Server runs the collabd binary with a data dir and a fixed port, so that it
 * can be restarted on the same address.
 */
export class Server {
  constructor({ dataDir, port, secret, args = [] }) {
    this.dataDir = dataDir;
    this.port = port;
    this.secret = secret;
    this.args = args;
    this.proc = null;
    this.output = '';
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(opts = {}) {
    const s = new Server({
      dataDir: opts.dataDir ?? (await tempDir()),
      port: opts.port ?? (await freePort()),
      secret: opts.secret,
      args: opts.args,
    });
    s.ownDir = !opts.dataDir;
    try {
      await s.launch();
    } catch (err) {
      if (s.ownDir) await removeDir(s.dataDir);
      throw err;
    }
    return s;
  }

  async launch() {
    const bin = await collabdBinary();
    const args = ['serve', '--addr', `127.0.0.1:${this.port}`, '--data', this.dataDir, '--log-level', 'warn', '--log-format', 'json', ...this.args];
    if (this.secret) args.push('--auth-secret', this.secret);
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    running.add(proc);
    proc.once('exit', () => running.delete(proc));
    const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.exited = exited;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`collabd did not start:\n${this.output}`)), 20000);
      const onData = (chunk) => {
        this.output += chunk;
        if (this.output.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', (chunk) => { this.output += chunk; });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`collabd exited (${code ?? signal}) while starting:\n${this.output}`));
      });
    });
  }

  /** stop sends signal and waits for the exit; returns {code, signal}. */
  async stop(signal = 'SIGTERM') {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill(signal);
    const res = await this.exited;
    return res;
  }

  /** restart stops the server (with signal) and starts it again on the same port and data. */
  async restart(signal = 'SIGKILL') {
    await this.stop(signal);
    for (let i = 0; ; i++) {
      try {
        await this.launch();
        return;
      } catch (err) {
        if (i >= 20) throw err;
        await sleep(100);
      }
    }
  }

  async close() {
    await this.stop('SIGTERM');
    if (this.ownDir) await removeDir(this.dataDir);
  }

  /** token mints a token with `collabd token` (jti: its id, else a random one). */
  async token({ user, edit = [], view = [], jti }) {
    const bin = await collabdBinary();
    const args = ['token', '--auth-secret', this.secret, '--user', user];
    if (jti) args.push('--jti', jti);
    for (const p of edit) args.push('--edit', p);
    for (const p of view) args.push('--view', p);
    const { stdout } = await execFileP(bin, args);
    return stdout.trim();
  }

  async api(method, p, { body, headers = {} } = {}) {
    const res = await fetch(this.url + p, { method, body, headers });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, json, text };
  }

  async doc(id) {
    const r = await this.api('GET', `/api/docs/${id}`);
    if (r.status !== 200) throw new Error(`GET /api/docs/${id}: ${r.status} ${r.text}`);
    return r.json;
  }
}

/**
 * NatsServer runs nats-server (built from the Go module) with JetStream on
 * its own temporary store directory, from a config file, on a fixed
 * loopback port so that it can be killed and restarted on the same address
 * and store. syncAlways sets `sync_interval: always` (every write fsynced
 * before it is acknowledged: a SIGKILL loses nothing acknowledged).
 */
export class NatsServer {
  constructor({ dir, port, syncAlways }) {
    this.dir = dir;
    this.port = port;
    this.syncAlways = syncAlways;
    this.proc = null;
    this.output = '';
    this.url = `nats://127.0.0.1:${port}`;
  }

  static async start(opts = {}) {
    const n = new NatsServer({
      dir: await mkdtemp(path.join(tmpdir(), 'collabd-e2e-nats-')),
      port: opts.port ?? (await freePort()),
      syncAlways: !!opts.syncAlways,
    });
    const conf = [
      `listen: "127.0.0.1:${n.port}"`,
      'jetstream {',
      `  store_dir: ${JSON.stringify(path.join(n.dir, 'js'))}`,
      ...(n.syncAlways ? ['  sync_interval: always'] : []),
      '}',
      '',
    ].join('\n');
    n.conf = path.join(n.dir, 'nats.conf');
    await writeFile(n.conf, conf);
    try {
      await n.launch();
    } catch (err) {
      await removeDir(n.dir);
      throw err;
    }
    return n;
  }

  async launch() {
    const bin = await natsServerBinary();
    this.output = '';
    const proc = spawn(bin, ['-c', this.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    running.add(proc);
    proc.once('exit', () => running.delete(proc));
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${this.output}`)), 20000);
      const onData = (chunk) => {
        this.output += chunk;
        if (this.output.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited (${code ?? signal}) while starting:\n${this.output}`));
      });
    });
  }

  async stop(signal = 'SIGTERM') {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill(signal);
    return this.exited;
  }

  /** restart starts it again on the same port and store (after stop). */
  async restart() {
    await this.stop('SIGKILL');
    for (let i = 0; ; i++) {
      try {
        await this.launch();
        return;
      } catch (err) {
        if (i >= 20) throw err;
        await sleep(100);
      }
    }
  }

  async close() {
    await this.stop('SIGTERM');
    await removeDir(this.dir);
  }
}

/**
 * Balancer is a round-robin TCP load balancer on loopback in front of
 * backend ports: each accepted connection goes to the next backend that
 * accepts a connection (dead ones are skipped). It is not sticky, so
 * clients behind it use the WebSocket transport only (one TCP connection
 * per Engine.IO session). counts[port] says how many connections went where.
 */
export class Balancer {
  constructor(ports) {
    this.ports = ports;
    this.nextIdx = 0;
    this.counts = Object.fromEntries(ports.map((p) => [p, 0]));
    this.conns = new Set();
  }

  static async start(ports) {
    const b = new Balancer(ports);
    b.server = createServer((c) => b.handle(c));
    await new Promise((resolve, reject) => {
      b.server.once('error', reject);
      b.server.listen(0, '127.0.0.1', resolve);
    });
    b.url = `http://127.0.0.1:${b.server.address().port}`;
    return b;
  }

  handle(client) {
    client.pause();
    this.conns.add(client);
    client.on('error', () => client.destroy());
    client.once('close', () => this.conns.delete(client));
    const attempt = (left) => {
      if (left === 0 || client.destroyed) {
        client.destroy();
        return;
      }
      const port = this.ports[this.nextIdx++ % this.ports.length];
      const up = tcpConnect({ host: '127.0.0.1', port });
      const failed = () => {
        up.destroy();
        attempt(left - 1);
      };
      up.once('error', failed);
      up.once('connect', () => {
        up.removeListener('error', failed);
        this.counts[port]++;
        this.conns.add(up);
        up.on('error', () => up.destroy());
        up.once('close', () => {
          this.conns.delete(up);
          client.destroy();
        });
        client.once('close', () => up.destroy());
        client.pipe(up);
        up.pipe(client);
        client.resume();
      });
    };
    attempt(this.ports.length);
  }

  async close() {
    for (const c of this.conns) c.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** transports are the three ways a client may connect. */
export const transportModes = [
  { name: 'polling only', opts: { transports: ['polling'], upgrade: false } },
  { name: 'websocket only', opts: { transports: ['websocket'] } },
  { name: 'polling upgraded to websocket', opts: {} },
];

/** connect opens a socket and resolves once connected (rejects on connect_error). */
export function connect(url, opts = {}) {
  const socket = io(url, { forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 300, ...opts });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

/** call emits an event with an ack and resolves with the ack payload. */
export function call(socket, event, payload, timeoutMs = 10000) {
  return socket.timeout(timeoutMs).emitWithAck(event, payload);
}

/** next resolves with the next event named name on socket. */
export function next(socket, name, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} within ${timeoutMs} ms`)), timeoutMs);
    socket.once(name, (v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

/**
 * Editor is one collaborating client: a socket.io-client socket, the OT state
 * machine, and the local text. Acks and broadcasts are handled synchronously
 * inside their callbacks. It rejoins by itself after every reconnect.
 */
export class Editor {
  /**
   * retry lists error codes (e.g. unavailable) after which the editor
   * rejoins on the same socket a little later, resending its pending op with
   * the same seq; retries counts them by code.
   */
  constructor(url, doc, id, ioOpts = {}, { retry = [] } = {}) {
    this.doc = doc;
    this.retry = new Set(retry);
    this.retries = {};
    this.retryTimer = null;
    this.joinGen = 0;
    this.id = id;
    this.ot = new OTClient({ client: id, rev: 0 });
    this.text = '';
    this.joinedOnce = false;
    this.errors = [];
    this.joins = 0;
    this.ackedOps = 0;
    this.ownBroadcasts = 0; // records of this client's own ops received as broadcasts
    this.socket = io(url, { forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 300, ...ioOpts });
    this.socket.on('connect', () => this.join());
    this.socket.on('disconnect', () => this.ot.disconnect());
    this.socket.on('connect_error', (err) => {
      if (!this.socket.active) this.errors.push(`connect_error: ${err.message}`);
    });
    this.socket.on('doc:op', (rec) => this.guard(() => {
      if (rec.doc !== this.doc) return;
      if (rec.client === this.id) this.ownBroadcasts++;
      const out = this.ot.receive(rec);
      if (out.apply) this.text = apply(this.text, out.apply);
      if (out.send) this.emitOp(out.send);
    }));
  }

  guard(fn) {
    try {
      fn();
    } catch (err) {
      this.errors.push(`${this.id}: ${err.stack || err}`);
    }
  }

  join() {
    const first = !this.joinedOnce;
    const gen = ++this.joinGen;
    const { client, rev } = this.ot.join();
    const payload = { doc: this.doc, client };
    if (!first) payload.rev = rev;
    this.socket.emit('doc:join', payload, (ack) => this.guard(() => {
      if (gen !== this.joinGen) return; // a later join superseded it
      if (!ack.ok) {
        if (this.retryLater(ack.error)) return;
        this.errors.push(`join: ${JSON.stringify(ack.error)}`);
        return;
      }
      this.joins++;
      if (ack.ops) {
        const out = this.ot.resume(ack.ops);
        if (out.apply) this.text = apply(this.text, out.apply);
        if (out.send) this.emitOp(out.send);
      } else {
        this.text = ack.text;
        const out = this.ot.resetTo(ack.rev);
        if (out.apply) this.text = apply(this.text, out.apply);
      }
      this.joinedOnce = true;
    }));
  }

  /** joined resolves once the first join is answered. */
  async joined(timeoutMs = 10000) {
    const end = Date.now() + timeoutMs;
    while (!this.joinedOnce) {
      if (this.errors.length) throw new Error(this.errors.join('\n'));
      if (Date.now() > end) throw new Error(`${this.id}: no join within ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  emitOp(sub) {
    this.socket.emit('doc:op', { doc: this.doc, ...sub }, (ack) => this.guard(() => {
      if (!ack.ok) {
        if (this.ot.pending?.seq !== sub.seq && this.retry.has(ack.error?.code)) return; // already resent
        if (this.retryLater(ack.error)) return;
        this.errors.push(`op seq ${sub.seq}: ${JSON.stringify(ack.error)}`);
        return;
      }
      const wasPending = this.ot.pending && this.ot.pending.seq === sub.seq;
      const nextSub = this.ot.ack(sub.seq, ack.rev);
      if (wasPending) this.ackedOps++;
      if (nextSub) this.emitOp(nextSub);
    }));
  }

  /**
   * retryLater counts an error whose code is in this.retry and schedules a
   * rejoin on the same socket (one at a time), which resends the pending op
   * with its seq; it returns false for other errors.
   */
  retryLater(error) {
    const code = error?.code;
    if (!this.retry.has(code)) return false;
    this.retries[code] = (this.retries[code] ?? 0) + 1;
    if (this.retryTimer) return true;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.closed || !this.socket.connected) return; // the reconnect rejoins
      this.ot.disconnect();
      this.join();
    }, 100 + Math.floor(Math.random() * 100));
    return true;
  }

  /** edit applies op (code points, on the local text) and sends or buffers it. */
  edit(op) {
    op = normalize(op);
    this.text = apply(this.text, op);
    const sub = this.ot.edit(op);
    if (sub) this.emitOp(sub);
  }

  get length() {
    return cpLength(this.text);
  }

  get settled() {
    return this.socket.connected && this.ot.connection === ONLINE && this.ot.state === SYNCHRONIZED;
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.socket.close();
  }
}

/**
 * settle waits until every editor is online and synchronized at the server's
 * revision, and returns the server's document.
 */
export async function settle(server, editors, doc, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (const e of editors) {
      if (e.errors.length) throw new Error(`${e.id}: ${e.errors.join('\n')}`);
    }
    const d = await server.doc(doc);
    if (editors.every((e) => e.settled && e.ot.rev === d.rev)) return d;
    if (Date.now() > end) {
      const states = editors.map((e) => `${e.id}: connected=${e.socket.connected} ${e.ot.connection} ${e.ot.state} rev=${e.ot.rev}`);
      throw new Error(`editors did not settle at rev ${d.rev}:\n${states.join('\n')}`);
    }
    await sleep(50);
  }
}

/** randomEdit is an insert or delete at a random place of a text of n code points. */
export function randomEdit(r, n) {
  if (n > 0 && r.int(3) === 0) {
    const pos = r.int(n);
    const len = 1 + r.int(Math.min(4, n - pos));
    return [pos, -len];
  }
  const words = ['a', 'bc', 'é', '😀', '中文', 'x y', '\n', '👍🏽'];
  return [r.int(n + 1), r.pick(words)];
}
