// Bursts: many events emitted at once (socket.io-client then writes several
// frames in one TCP segment, or one polling POST), each with an ack, every
// ack arriving, over every transport and during the upgrade from polling to
// WebSocket. A server reader that waits for new bytes while frames it has
// already received sit unread stalls such bursts for a second per frame.
import { describe, it, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startServer, connect, closeAll, withTimeout, TRANSPORTS } from "../lib/helpers.js";

// The conformance server's maxPayload is 1,000,000 bytes; the largest event
// leaves room for the packet's header, event name and ack id.
const MAX = 1_000_000 - 64;
const SIZES = [100, 1000, 5000, 20_000, 65_536];

// arg is the i-th event's argument: a string of n bytes, or a Buffer when
// binary, starting with its index so that a mixed-up reply shows.
function arg(i, n, binary) {
  const head = `${i}:`;
  const s = head + "x".repeat(Math.max(0, n - head.length));
  return binary ? Buffer.from(s) : s;
}

// burst emits every size at once, each as echo-ack with its own ack timeout,
// and checks every reply.
async function burst(socket, sizes, ackTimeout) {
  const args = sizes.map((n, i) => arg(i, n, i % 7 === 3));
  const replies = await Promise.all(args.map((a) => socket.timeout(ackTimeout).emitWithAck("echo-ack", a)));
  replies.forEach((r, i) => {
    const want = args[i];
    if (Buffer.isBuffer(want)) {
      assert.ok(Buffer.from(r).equals(want), `event ${i}: binary reply differs (${Buffer.from(r).length} bytes, want ${want.length})`);
    } else {
      assert.equal(typeof r, "string", `event ${i}: reply type`);
      assert.ok(r === want, `event ${i}: reply of ${r.length} bytes starting ${JSON.stringify(r.slice(0, 8))}, want ${want.length} bytes`);
    }
  });
}

const TWELVE = [100, 1000, 5000, 20_000, 65_536, 100, 5000, 1000, 20_000, 65_536, 100, MAX];
const HUNDRED = Array.from({ length: 100 }, (_, i) => (i === 50 || i === 99 ? MAX : SIZES[i % SIZES.length]));

describe("bursts", () => {
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
      it("12 events of 100 B to the max payload, all acked", async () => {
        const s = await connect(server.url, mode);
        await burst(s, TWELVE, 3000);
      });

      it("100 events of 100 B to the max payload, all acked", async () => {
        const s = await connect(server.url, mode);
        await burst(s, HUNDRED, 10_000);
      });

      it("bursts one after another on the same connection", async () => {
        const s = await connect(server.url, mode);
        for (let round = 0; round < 3; round++) await burst(s, TWELVE, 3000);
      });

      it("100 small events, all acked", async () => {
        const s = await connect(server.url, mode);
        await burst(s, Array(100).fill(100), 3000);
      });
    });
  }

  it("bursts emitted before the connection and during the upgrade to WebSocket, all acked", async () => {
    const s = io(server.url, { transports: ["polling", "websocket"], forceNew: true, reconnection: false, timeout: 5000 });
    try {
      // Emitted before the connection: socket.io-client buffers them and
      // sends them all over polling once connected.
      const early = burst(s, HUNDRED, 10_000);
      // Emitted once the probe succeeded, while the engine still runs on
      // polling: they wait in the client's buffer and cross the upgrade.
      let during;
      let transportThen;
      const upgraded = new Promise((resolve) =>
        s.io.on("open", () => {
          s.io.engine.once("upgrading", () => {
            transportThen = s.io.engine.transport.name;
            during = burst(s, TWELVE, 3000);
          });
          s.io.engine.once("upgrade", resolve);
        }),
      );
      await withTimeout(upgraded, 8000, "upgrade");
      assert.equal(transportThen, "polling");
      await early;
      await during;
      assert.equal(s.io.engine.transport.name, "websocket");
      await burst(s, TWELVE, 3000);
    } finally {
      s.disconnect();
    }
  });
});
