// Server-to-client acknowledgements: request-ack makes the server emit
// "ack-me" with an ack; the client's answer (or its silence) comes back as
// "ack-result".
import { describe, it, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, once, payload, closeAll, TRANSPORTS } from "../lib/helpers.js";

describe("server-to-client acks", () => {
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
      it("the client's JSON answer comes back in ack-result", async () => {
        const s = await connect(server.url, mode);
        let asked;
        s.on("ack-me", (...args) => {
          const ack = args.pop();
          assert.equal(typeof ack, "function", "ack-me asks for an acknowledgement");
          asked = args;
          ack({ answer: 42, tag: args[0] });
        });
        const result = once(s, "ack-result");
        s.emit("request-ack", "t1");
        const [res] = payload(await result, 1);
        assert.deepEqual(asked, ["t1"]);
        assert.deepEqual(res, { tag: "t1", reply: { answer: 42, tag: "t1" } });
      });

      it("a binary answer stays binary", async () => {
        const s = await connect(server.url, mode);
        s.on("ack-me", (tag, ack) => ack(Buffer.from([7, 7, 7])));
        const result = once(s, "ack-result");
        s.emit("request-ack", { n: 2 });
        const [res] = payload(await result, 1);
        assert.deepEqual(res.tag, { n: 2 });
        assert.deepEqual(Buffer.from(res.reply), Buffer.from([7, 7, 7]));
      });
    });
  }

  it("an unanswered ack times out after 3 s, on every transport at once", async () => {
    const sockets = await Promise.all(Object.keys(TRANSPORTS).map((mode) => connect(server.url, mode)));
    const results = sockets.map((s, i) => {
      s.on("ack-me", () => {}); // never calls the ack
      const r = once(s, "ack-result", 6000);
      s.emit("request-ack", `silent-${i}`);
      return r;
    });
    const start = Date.now();
    for (const [i, r] of results.entries()) {
      const [res] = payload(await r, 1);
      assert.equal(res.tag, `silent-${i}`);
      assert.equal(typeof res.error, "string");
      assert.ok(!("reply" in res));
    }
    const waited = Date.now() - start;
    assert.ok(waited >= 2500, `ack-result after ${waited} ms, before the 3 s timeout`);
  });
});
