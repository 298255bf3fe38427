// The Node baseline for `collabd-load sockets -server-cmd`: socket.io's own
// server with the bench events of `collabd-load serve-sockets`
// (cmd/collabd-load/serve.go), with the same semantics, so that the same
// scenarios measure both. Run it directly (node --expose-gc server.mjs), not
// through a wrapper: the load program reads the memory and CPU time of the
// process it started.
//
// Events (namespace "/"):
//
//	bench-join (room, ack)        join room, then ack()
//	bench-bcast (room, a, b, ack?) emit bench-msg (a, b) to room's members but the sender, then ack()
//	bench-echo (args..., ack)     ack(args...)
//	bench-stats (ack)             ack({reasons: {socketId: server-side disconnect reason}})
//	bench-gc (ack)                global.gc() 3 times when exposed, then ack(memory figures)
import { createServer } from "node:http";
import process from "node:process";
import { parseArgs } from "node:util";
import { Server } from "socket.io";

const { values: opts } = parseArgs({
  options: { addr: { type: "string", default: "127.0.0.1:0" } },
});

// The port of --addr, which is like the Go bench server's -addr but only
// on 127.0.0.1 (port 0: any free port).
function parsePort(addr) {
  const m = /^(127\.0\.0\.1)?:(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[2]) : -1;
  if (port < 0 || port > 65535) {
    console.error(`server.mjs: --addr ${addr}: want 127.0.0.1:PORT`);
    process.exit(2);
  }
  return port;
}

const MAX_REASONS = 1_000_000; // bounds the reason table, as in serve.go
const reasons = new Map(); // socket id -> disconnect reason

// The last argument is the ack callback when the client asked for one.
function takeAck(args) {
  return typeof args.at(-1) === "function" ? args.pop() : undefined;
}

// The handlers are shared by every socket (`this` is the socket) rather than
// closures made per connection: the Go server registers its handlers once too.
function onJoin(room, ack) {
  if (typeof room !== "string") return;
  this.join(room);
  if (typeof ack === "function") ack();
}

function onBroadcast(...args) {
  const ack = takeAck(args);
  const [room, a, b] = args;
  if (typeof room !== "string") return;
  // Re-encoded, unlike the Go server's raw arguments: the load program's
  // nanosecond timestamp becomes a double, off by at most 128 ns.
  this.to(room).emit("bench-msg", a, b);
  ack?.();
}

function onEcho(...args) {
  const ack = takeAck(args);
  ack?.(...args);
}

function onStats(ack) {
  if (typeof ack === "function") ack({ reasons: Object.fromEntries(reasons) });
}

// Three cycles, as the Go server runs; gcCycles tells the load program
// whether any ran (global.gc exists only under node --expose-gc).
function onGC(ack) {
  let gcCycles = 0;
  if (typeof globalThis.gc === "function") {
    for (; gcCycles < 3; gcCycles++) globalThis.gc();
  }
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  if (typeof ack === "function") ack({ rss, heapUsed, heapTotal, external, arrayBuffers, gcCycles });
}

function onDisconnect(reason) {
  if (reasons.size < MAX_REASONS) reasons.set(this.id, reason);
}

const httpServer = createServer();
const io = new Server(httpServer, {
  // as the Go bench server: its defaults, and no connection state recovery
  pingInterval: 25_000,
  pingTimeout: 20_000,
  maxHttpBufferSize: 1e6,
  transports: ["polling", "websocket"],
  serveClient: false,
});

io.on("connection", (socket) => {
  socket.on("disconnect", onDisconnect);
  socket.on("bench-join", onJoin);
  socket.on("bench-bcast", onBroadcast);
  socket.on("bench-echo", onEcho);
  socket.on("bench-stats", onStats);
  socket.on("bench-gc", onGC);
});

httpServer.listen(parsePort(opts.addr), "127.0.0.1", () => {
  const { address, port } = httpServer.address();
  console.log(`listening on http://${address}:${port}`);
});

function shutdown() {
  // io.close disconnects every socket and closes the HTTP server.
  io.close(() => process.exit(0));
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
