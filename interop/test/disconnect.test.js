// Disconnections and their reasons, seen from both sides: the client's
// "disconnect" reason and the server's, asked with disconnect-reason from
// another socket.
import { describe, it, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Manager } from "socket.io-client";
import { startServer, connect, call, once, closeAll, serverReason, sleep, TRANSPORTS } from "../lib/helpers.js";

describe("disconnect reasons", () => {
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
      it("server-disconnect: 'io server disconnect' / 'server namespace disconnect', engine kept", async () => {
        const observer = await connect(server.url, "websocket");
        const manager = new Manager(server.url, { ...TRANSPORTS[mode], reconnection: false });
        try {
          const main = await connect(server.url, mode, { manager, nsp: "/" });
          const chat = await connect(server.url, mode, { manager, nsp: "/chat" });
          const id = main.id;
          const gone = once(main, "disconnect");
          main.emit("server-disconnect");
          const [reason] = await gone;
          assert.equal(reason, "io server disconnect");
          assert.equal(await serverReason(observer, id), "server namespace disconnect");
          // the other namespace on the same engine connection is still there
          assert.equal(chat.connected, true);
          assert.deepEqual(await call(chat, "echo-ack", "alive"), ["alive"]);
        } finally {
          manager.engine?.close();
        }
      });

      it("client disconnect: 'io client disconnect' / 'client namespace disconnect'", async () => {
        const observer = await connect(server.url, "websocket");
        const s = await connect(server.url, mode);
        const id = s.id;
        const gone = once(s, "disconnect");
        s.disconnect();
        assert.equal((await gone)[0], "io client disconnect");
        assert.equal(await serverReason(observer, id), "client namespace disconnect");
      });

      it("drop: 'transport close' on the client / 'forced close' on the server", async () => {
        const observer = await connect(server.url, "websocket");
        const s = await connect(server.url, mode);
        const id = s.id;
        const gone = once(s, "disconnect");
        s.emit("drop");
        assert.equal((await gone)[0], "transport close");
        assert.equal(await serverReason(observer, id), "forced close");
      });

      it("the client closing its transport: 'transport close' on the server", async () => {
        const observer = await connect(server.url, "websocket");
        const s = await connect(server.url, mode);
        const id = s.id;
        const gone = once(s, "disconnect");
        s.io.engine.close();
        assert.equal((await gone)[0], "forced close", "socket.io-client's reason for closing its own engine");
        assert.equal(await serverReason(observer, id), "transport close");
      });

      it("disconnect-reason answers null for a connected socket and an unknown id", async () => {
        const a = await connect(server.url, mode);
        const b = await connect(server.url, mode);
        assert.deepEqual(await call(a, "disconnect-reason", b.id), [null]);
        assert.deepEqual(await call(a, "disconnect-reason", "no-such-id"), [null]);
      });
    });
  }

  it("ping timeout: a client that stops answering is dropped with 'ping timeout'", async () => {
    const observer = await connect(server.url, "websocket");
    const results = await Promise.all(
      Object.keys(TRANSPORTS).map(async (mode) => {
        const s = await connect(server.url, mode);
        const id = s.id;
        const gone = once(s, "disconnect", 8000);
        // Stop every packet to the server (pongs included) from now on.
        const transport = s.io.engine.transport;
        transport.send = () => {};
        const start = Date.now();
        const [clientReason] = await gone;
        return { mode, id, clientReason, after: Date.now() - start };
      }),
    );
    for (const r of results) {
      // pingInterval 1000 + pingTimeout 1000 in interop mode
      assert.ok(r.after >= 1000, `${r.mode}: disconnected after ${r.after} ms`);
      assert.ok(["transport close", "ping timeout", "transport error"].includes(r.clientReason), `${r.mode}: client reason ${r.clientReason}`);
      assert.equal(await serverReason(observer, r.id), "ping timeout", `${r.mode}: server reason`);
    }
  });

  it("server shutdown: clients see the connection end and the server exits cleanly", async () => {
    const own = await startServer();
    const sockets = await Promise.all(Object.keys(TRANSPORTS).map((mode) => connect(own.url, mode)));
    const gone = sockets.map((s) => once(s, "disconnect", 8000));
    await own.stop(); // asserts exit code 0 after SIGTERM
    for (const g of gone) {
      const [reason] = await g;
      assert.equal(reason, "transport close");
    }
    await sleep(10);
  });
});
