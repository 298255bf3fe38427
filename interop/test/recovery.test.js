// Connection state recovery: csr-drop closes the engine connection, the
// server emits csr-missed packets while the client is away, and the client,
// reconnecting with its pid and offset, gets its id, its rooms and every
// missed packet once and in order, with recovered = true on both sides.
import { describe, it, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startServer, call, once, collect, payload, closeAll, sleep, withTimeout, serverReason, connect, waitUpgraded, TRANSPORTS } from "../lib/helpers.js";

// connectRecoverable opens a socket that reconnects by itself (quickly).
async function connectRecoverable(url, mode, { nsp = "/", auth } = {}) {
  const s = io(url + nsp, {
    ...TRANSPORTS[mode],
    forceNew: true,
    reconnection: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
    randomizationFactor: 0,
    reconnectionAttempts: 20,
    ...(auth ? { auth } : {}),
  });
  await withTimeout(
    new Promise((resolve, reject) => {
      s.once("connect", resolve);
      s.once("connect_error", reject);
    }),
    8000,
    "connect",
  );
  if (mode === "upgrade") await waitUpgraded(s);
  return s;
}

// nextConnect resolves at the socket's next "connect".
function nextConnect(s) {
  return withTimeout(new Promise((resolve) => s.once("connect", resolve)), 4000, "reconnect");
}

describe("connection state recovery", () => {
  let server;
  const own = [];
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    for (const s of own) s.disconnect();
    await server?.stop();
  });
  afterEach(() => {
    for (const s of own.splice(0)) s.disconnect();
    closeAll();
  });

  for (const mode of Object.keys(TRANSPORTS)) {
    describe(mode, () => {
      it("replays the missed packets once and in order, keeps id and rooms", async () => {
        const observer = await connect(server.url, "websocket");
        const s = await connectRecoverable(server.url, mode);
        own.push(s);
        assert.equal(s.recovered, false);
        const id = s.id;
        await call(s, "join", "r1");
        await call(s, "join", "r2");

        const before = collect(s, "csr-before");
        const missed = collect(s, "csr-missed");
        const disconnected = once(s, "disconnect");
        const reconnected = nextConnect(s);
        s.emit("csr-drop", { count: 5, room: "r1" });

        const [reason] = await disconnected;
        assert.equal(reason, "transport close");
        assert.equal(before.length, 1, "csr-before arrives before the close");
        assert.deepEqual(payload(before[0], 1)[0], { id });
        assert.equal(typeof before[0][1], "string", "csr-before carries the offset the client recovers from");
        assert.equal(await serverReason(observer, id, "forced close"), "forced close");

        await reconnected;
        assert.equal(s.recovered, true, "client side: recovered");
        assert.equal(s.id, id, "same socket id");
        await sleep(300); // anything replayed twice would show up by now
        const seqs = missed.map((args) => payload(args, 1)[0]);
        assert.deepEqual(seqs, [
          { seq: 1, via: "id" },
          { seq: 2, via: "id" },
          { seq: 3, via: "id" },
          { seq: 4, via: "id" },
          { seq: 5, via: "id" },
          { seq: 6, via: "room" },
        ]);
        const [me] = await call(s, "whoami");
        assert.equal(me.recovered, true, "server side: recovered");
        assert.equal(me.id, id);
        assert.deepEqual(me.rooms, ["r1", "r2"]);
        assert.deepEqual(await call(observer, "disconnect-reason", id), [null], "connected again");

        // the recovered socket still receives broadcasts to its rooms, once
        const roomMsgs = collect(s, "room-message");
        await call(observer, "broadcast-room", "r2", "after");
        await sleep(200);
        assert.equal(roomMsgs.length, 1);
      });

      it("a second drop recovers again, from the newer offset", async () => {
        const s = await connectRecoverable(server.url, mode);
        own.push(s);
        const id = s.id;
        const missed = collect(s, "csr-missed");
        for (const round of [1, 2]) {
          const again = nextConnect(s);
          s.emit("csr-drop", { count: 2 });
          await again;
          assert.equal(s.recovered, true, `round ${round}`);
          assert.equal(s.id, id);
        }
        await sleep(200);
        assert.deepEqual(
          missed.map((a) => payload(a, 1)[0].seq),
          [1, 2, 1, 2],
        );
      });

      it("skips the middleware of /secure for a recovered session", async () => {
        const s = await connectRecoverable(server.url, mode, { nsp: "/secure", auth: { token: "letmein" } });
        own.push(s);
        const id = s.id;
        await call(s, "join", "vault");
        const again = nextConnect(s);
        const refused = [];
        s.on("connect_error", (err) => refused.push(err));
        s.auth = { token: "wrong" }; // the middleware would refuse this
        s.emit("csr-drop", { count: 1 });
        await again;
        assert.deepEqual(refused, []);
        assert.equal(s.recovered, true);
        assert.equal(s.id, id);
        const [me] = await call(s, "whoami");
        assert.equal(me.recovered, true);
        assert.deepEqual(me.rooms, ["vault"]);
        // and a fresh connection with the same wrong token is still refused
        await assert.rejects(connect(server.url, mode, { nsp: "/secure", auth: { token: "wrong" } }), /unauthorized/);
      });

      it("a client-initiated disconnect is not recovered", async () => {
        const s = await connectRecoverable(server.url, mode);
        own.push(s);
        const id = s.id;
        await call(s, "echo-ack", 1);
        s.emit("csr-drop", { count: 0 }); // sets an offset on the client
        await nextConnect(s);
        s.disconnect();
        s.connect();
        await nextConnect(s);
        assert.equal(s.recovered, false);
        assert.notEqual(s.id, id);
      });
    });
  }
});
