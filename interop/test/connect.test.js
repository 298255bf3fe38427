// Connecting: auth payloads, namespaces multiplexed on one engine connection,
// the /secure middleware (accept, reject with CONNECT_ERROR data), an invalid
// namespace, over polling, websocket and upgrade.
import { describe, it, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Manager } from "socket.io-client";
import { startServer, connect, call, closeAll, TRANSPORTS, withTimeout } from "../lib/helpers.js";

describe("connect", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });
  afterEach(closeAll);

  for (const mode of Object.keys(TRANSPORTS)) {
    describe(mode, () => {
      it("connects to / with an auth payload that whoami reports", async () => {
        const auth = { user: "ada", n: 1, nested: { ok: true } };
        const s = await connect(server.url, mode, { auth });
        assert.equal(typeof s.id, "string");
        assert.equal(s.recovered, false);
        const [me] = await call(s, "whoami");
        assert.deepEqual(me, { id: s.id, nsp: "/", auth, rooms: [], recovered: false });
        assert.equal(s.io.engine.transport.name, mode === "polling" ? "polling" : "websocket");
      });

      it("reports {} as auth when none is sent", async () => {
        const s = await connect(server.url, mode);
        const [me] = await call(s, "whoami");
        assert.deepEqual(me.auth, {});
      });

      it("multiplexes /, /chat and /secure on one engine connection", async () => {
        const manager = new Manager(server.url, { ...TRANSPORTS[mode], reconnection: false, autoConnect: true });
        try {
          const main = await connect(server.url, mode, { manager, nsp: "/" });
          const chat = await connect(server.url, mode, { manager, nsp: "/chat" });
          const secure = await connect(server.url, mode, { manager, nsp: "/secure", auth: { token: "letmein" } });
          const engineId = manager.engine.id;
          assert.ok(engineId);
          const [a] = await call(main, "whoami");
          const [b] = await call(chat, "whoami");
          const [c] = await call(secure, "whoami");
          assert.equal(a.nsp, "/");
          assert.equal(b.nsp, "/chat");
          assert.equal(c.nsp, "/secure");
          assert.deepEqual(c.auth, { token: "letmein" });
          assert.equal(new Set([a.id, b.id, c.id]).size, 3, "each namespace socket has its own id");
          assert.equal(manager.engine.id, engineId, "still the same engine connection");
        } finally {
          manager.engine?.close();
        }
      });

      it("/secure refuses a bad token with CONNECT_ERROR message and data", async () => {
        for (const auth of [{ token: "nope" }, undefined]) {
          await assert.rejects(connect(server.url, mode, { nsp: "/secure", auth }), (err) => {
            assert.equal(err.message, "unauthorized");
            assert.deepEqual(err.data, { reason: "invalid token" });
            return true;
          });
        }
      });

      it("refuses an unknown namespace and keeps the engine connection", async () => {
        const manager = new Manager(server.url, { ...TRANSPORTS[mode], reconnection: false });
        try {
          const main = await connect(server.url, mode, { manager, nsp: "/" });
          const engineId = manager.engine.id;
          await assert.rejects(connect(server.url, mode, { manager, nsp: "/nope" }), (err) => {
            assert.equal(err.message, "Invalid namespace");
            return true;
          });
          // the main namespace socket still works on the same engine connection
          assert.deepEqual(await call(main, "echo-ack", "still", "here"), ["still", "here"]);
          assert.equal(manager.engine.id, engineId);
          assert.equal(main.connected, true);
        } finally {
          manager.engine?.close();
        }
      });
    });
  }

  it("the engine connection is closed if it never connects to a namespace", async () => {
    // interop mode keeps the default connect timeout (45 s); the official mode uses 1 s
    const official = await startServer({ official: true });
    try {
      const manager = new Manager(official.url, { transports: ["websocket"], reconnection: false, autoConnect: false });
      await withTimeout(
        new Promise((resolve, reject) => {
          manager.open((err) => (err ? reject(err) : resolve()));
        }),
        5000,
        "engine open",
      );
      const closed = await withTimeout(new Promise((resolve) => manager.engine.on("close", (reason) => resolve(reason))), 5000, "engine close");
      assert.equal(closed, "transport close");
    } finally {
      await official.stop();
    }
  });
});
