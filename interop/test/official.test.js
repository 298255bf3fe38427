// socket.io-client against the --official setup (recovery off: events carry
// exactly their arguments, no offset).
import { describe, it, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startServer, call, once, closeAll, withTimeout, TRANSPORTS } from "../lib/helpers.js";

describe("--official mode", () => {
  let server;
  const own = [];
  before(async () => {
    server = await startServer({ official: true });
  });
  after(async () => {
    for (const s of own) s.disconnect();
    await server?.stop();
  });
  afterEach(closeAll);

  // open connects and resolves to [socket, args of the first "auth" event].
  async function open(mode, nsp, auth) {
    const s = io(server.url + nsp, { ...TRANSPORTS[mode], forceNew: true, reconnection: false, ...(auth ? { auth } : {}) });
    own.push(s);
    const first = withTimeout(new Promise((resolve) => s.onAny((ev, ...args) => resolve([ev, ...args]))), 5000, "first event");
    await withTimeout(new Promise((resolve, reject) => { s.once("connect", resolve); s.once("connect_error", reject); }), 5000, "connect");
    return [s, await first];
  }

  for (const mode of Object.keys(TRANSPORTS)) {
    describe(mode, () => {
      it("the first event is auth with the CONNECT payload, on / and /custom", async () => {
        const [, first] = await open(mode, "/", { token: "123" });
        assert.deepEqual(first, ["auth", { token: "123" }]);
        const [, custom] = await open(mode, "/custom");
        assert.deepEqual(custom, ["auth", {}]);
      });

      it("message comes back as message-back with exactly the same arguments", async () => {
        const [s] = await open(mode, "/");
        const back = once(s, "message-back");
        s.emit("message", 1, "2", { 3: [true] }, Buffer.from([4, 5]));
        const args = await back;
        assert.equal(args.length, 4, "no recovery offset in --official mode");
        assert.deepEqual(args.slice(0, 3), [1, "2", { 3: [true] }]);
        assert.deepEqual(Buffer.from(args[3]), Buffer.from([4, 5]));
      });

      it("message-with-ack is acknowledged with the same arguments", async () => {
        const [s] = await open(mode, "/");
        assert.deepEqual(await call(s, "message-with-ack", 1, "2", { 3: [false] }), [1, "2", { 3: [false] }]);
        const [b] = await call(s, "message-with-ack", Buffer.from([1, 2, 3]));
        assert.deepEqual(Buffer.from(b), Buffer.from([1, 2, 3]));
      });

      it("/custom does not answer message", async () => {
        const [s] = await open(mode, "/custom");
        let got = 0;
        s.on("message-back", () => got++);
        s.emit("message", "x");
        const [main] = await open(mode, "/");
        await call(main, "message-with-ack", "sync");
        assert.equal(got, 0);
      });
    });
  }
});
