// Shared helpers of the interop tests: build and start the Go conformance
// server (cmd/socketio-conformance), connect the real socket.io-client to it,
// and small promise utilities with timeouts so that no test can hang.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import assert from "node:assert/strict";
import { io } from "socket.io-client";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

let binDir;
let binPath;

// buildServer compiles the conformance program once per test file (the Go
// build cache makes the later builds cheap).
export function buildServer() {
  if (binPath) return binPath;
  binDir = mkdtempSync(join(tmpdir(), "collabd-interop-"));
  binPath = join(binDir, "socketio-conformance");
  execFileSync("go", ["build", "-o", binPath, "./cmd/socketio-conformance"], {
    cwd: repoRoot,
    stdio: ["ignore", "inherit", "inherit"],
  });
  process.on("exit", () => rmSync(binDir, { recursive: true, force: true }));
  return binPath;
}

// startServer starts the conformance program on a free loopback port and
// resolves to { url, stop }. stop() sends SIGTERM and asserts a clean exit.
export async function startServer({ official = false } = {}) {
  const bin = buildServer();
  const args = ["--addr", "127.0.0.1:0"];
  if (official) args.push("--official");
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: child.stdout });
  const url = await withTimeout(
    new Promise((resolve, reject) => {
      lines.on("line", (line) => {
        const m = /^listening on (http:\/\/\S+)$/.exec(line);
        if (m) resolve(m[1]);
      });
      exited.then(({ code }) => reject(new Error(`server exited early with code ${code}`)));
    }),
    15000,
    "server start",
  );
  let stopped = false;
  return {
    url,
    pid: child.pid,
    async stop() {
      if (stopped) return;
      stopped = true;
      child.kill("SIGTERM");
      const { code, signal } = await withTimeout(exited, 20000, "server shutdown");
      assert.equal(signal, null, "server killed by a signal instead of shutting down");
      assert.equal(code, 0, "server exit code after SIGTERM");
    },
  };
}

// The three ways a client can reach the server.
export const TRANSPORTS = {
  polling: { transports: ["polling"] },
  websocket: { transports: ["websocket"] },
  upgrade: { transports: ["polling", "websocket"], upgrade: true },
};

// sockets opened by connect(), closed by closeAll().
const opened = new Set();

// connect opens a socket.io-client socket on namespace nsp and resolves once it
// is connected (for the "upgrade" mode: once the engine has upgraded to
// WebSocket). It rejects with the connect_error.
export async function connect(url, mode, { nsp = "/", auth, manager, ...opts } = {}) {
  const options = {
    ...TRANSPORTS[mode],
    forceNew: !manager,
    reconnection: false,
    timeout: 5000,
    ...opts,
  };
  if (auth !== undefined) options.auth = auth;
  const socket = manager ? manager.socket(nsp, auth !== undefined ? { auth } : {}) : io(url + nsp, options);
  opened.add(socket);
  if (manager) socket.connect();
  await withTimeout(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", (err) => {
        reject(err);
      });
    }),
    8000,
    `connect ${nsp} over ${mode}`,
  );
  if (mode === "upgrade") await waitUpgraded(socket);
  return socket;
}

// waitUpgraded resolves once the socket's engine runs over WebSocket.
export async function waitUpgraded(socket) {
  const engine = socket.io.engine;
  if (engine.transport.name === "websocket") return;
  await withTimeout(new Promise((resolve) => engine.once("upgrade", resolve)), 5000, "upgrade to websocket");
  assert.equal(engine.transport.name, "websocket");
}

export function closeAll() {
  for (const s of opened) s.disconnect();
  opened.clear();
}

// call emits ev with args and an acknowledgement callback; it resolves to the
// array of the ack's arguments, captured synchronously inside the callback.
export function call(socket, ev, ...args) {
  return withTimeout(
    new Promise((resolve) => {
      socket.emit(ev, ...args, (...reply) => resolve(reply));
    }),
    5000,
    `ack of ${ev}`,
  );
}

// once resolves to the arguments of the next ev on socket.
export function once(socket, ev, ms = 5000) {
  return withTimeout(new Promise((resolve) => socket.once(ev, (...args) => resolve(args))), ms, `event ${ev}`);
}

// collect records every ev on socket into the returned array.
export function collect(socket, ev) {
  const got = [];
  socket.on(ev, (...args) => got.push(args));
  return got;
}

// payload strips the recovery offset the server may append to its events
// (a trailing string argument beyond the n expected ones).
export function payload(args, n) {
  if (args.length > n) {
    assert.equal(args.length, n + 1, `unexpected extra arguments: ${JSON.stringify(args)}`);
    assert.equal(typeof args[n], "string", "the extra argument must be the recovery offset");
  }
  return args.slice(0, n);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms waiting for ${what}`)), ms);
  });
  const p = Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  // A test that fails early leaves its other waits pending: mark them handled
  // so their later timeouts are not reported as unhandled rejections (awaiting
  // p still throws).
  p.catch(() => {});
  return p;
}

// serverReason asks the server, through a helper socket, which disconnect
// reason it recorded for socket id; it polls briefly since the server may
// learn of a close slightly after the client.
export async function serverReason(helper, id, want) {
  let reason = null;
  for (let i = 0; i < 40; i++) {
    [reason] = await call(helper, "disconnect-reason", id);
    if (reason !== null && (want === undefined || reason === want)) break;
    await sleep(50);
  }
  return reason;
}
