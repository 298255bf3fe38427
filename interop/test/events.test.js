// Events and acknowledgements with JSON and binary arguments, over polling,
// websocket and upgrade.
import { describe, it, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, call, once, payload, closeAll, TRANSPORTS } from "../lib/helpers.js";

// JSON arguments that must come back exactly as sent.
const JSON_CASES = [
  ["no arguments", []],
  ["numbers", [1, 0, -7, 1.5, 1e21, Number.MAX_SAFE_INTEGER]],
  ["strings with HTML characters and unicode", ["<a href='x'>&amp;</a>", "é€😀", "\u2028\u2029", "", "line\nbreak\t\"quoted\""]],
  ["null, booleans, arrays, objects", [null, true, false, [], {}, [1, [2, [3, { four: 4 }]]], { a: { b: { c: [null] } } }]],
  ["many arguments", Array.from({ length: 12 }, (_, i) => ({ i }))],
];

function bytes(...b) {
  return Buffer.from(b);
}

describe("events", () => {
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
      for (const [name, args] of JSON_CASES) {
        it(`echo-ack returns ${name} unchanged`, async () => {
          const s = await connect(server.url, mode);
          assert.deepEqual(await call(s, "echo-ack", ...args), args);
        });
      }

      it("echo emits echo-back with the same arguments", async () => {
        const s = await connect(server.url, mode);
        const args = [{ text: "<b>&</b>" }, 42, [true, null]];
        const got = once(s, "echo-back");
        s.emit("echo", ...args);
        assert.deepEqual(payload(await got, args.length), args);
      });

      it("echo-ack returns a binary argument as binary (BINARY_ACK)", async () => {
        const s = await connect(server.url, mode);
        const [b] = await call(s, "echo-ack", bytes(1, 2, 3));
        assert.ok(Buffer.isBuffer(b) || b instanceof ArrayBuffer, "binary stays binary");
        assert.deepEqual(Buffer.from(b), bytes(1, 2, 3));
      });

      it("echo-ack returns nested binary anywhere in the arguments", async () => {
        const s = await connect(server.url, mode);
        const arg = { a: [bytes(1), { b: bytes(2, 2), text: "x" }], c: bytes() };
        const [got, second, third] = await call(s, "echo-ack", arg, "plain", [bytes(255, 0, 7)]);
        assert.deepEqual(Buffer.from(got.a[0]), bytes(1));
        assert.deepEqual(Buffer.from(got.a[1].b), bytes(2, 2));
        assert.equal(got.a[1].text, "x");
        assert.deepEqual(Buffer.from(got.c), bytes());
        assert.equal(second, "plain");
        assert.deepEqual(Buffer.from(third[0]), bytes(255, 0, 7));
      });

      it("echo emits echo-back with binary arguments as binary", async () => {
        const s = await connect(server.url, mode);
        const got = once(s, "echo-back");
        s.emit("echo", { data: bytes(9, 8, 7) }, bytes(6));
        const [obj, b] = payload(await got, 2);
        assert.deepEqual(Buffer.from(obj.data), bytes(9, 8, 7));
        assert.deepEqual(Buffer.from(b), bytes(6));
      });

      it("a large JSON argument survives the round trip", async () => {
        const s = await connect(server.url, mode);
        const big = "x".repeat(200_000);
        const [got] = await call(s, "echo-ack", { big });
        assert.equal(got.big.length, big.length);
      });

      it("many acks in flight come back to the right callbacks", async () => {
        const s = await connect(server.url, mode);
        const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => call(s, "echo-ack", i, `n${i}`)));
        replies.forEach((r, i) => assert.deepEqual(r, [i, `n${i}`]));
      });
    });
  }
});
