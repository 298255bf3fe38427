// Rooms and broadcasts with several clients: who receives and who does not.
import { describe, it, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, call, collect, payload, closeAll, sleep, TRANSPORTS } from "../lib/helpers.js";

// settle waits long enough for any stray delivery to show up.
const settle = () => sleep(300);

describe("rooms and broadcasts", () => {
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
      it("join and leave change the rooms whoami reports (sorted, without the id room)", async () => {
        const s = await connect(server.url, mode);
        assert.deepEqual(await call(s, "join", "zeta"), ["zeta"]);
        assert.deepEqual(await call(s, "join", "alpha"), ["alpha"]);
        assert.deepEqual(await call(s, "join", "alpha"), ["alpha"]);
        assert.deepEqual((await call(s, "whoami"))[0].rooms, ["alpha", "zeta"]);
        assert.deepEqual(await call(s, "leave", "zeta"), ["zeta"]);
        assert.deepEqual((await call(s, "whoami"))[0].rooms, ["alpha"]);
        assert.deepEqual(await call(s, "leave", "never-joined"), ["never-joined"]);
        assert.deepEqual((await call(s, "whoami"))[0].rooms, ["alpha"]);
      });

      it("broadcast reaches every socket of the namespace but the sender", async () => {
        const [a, b, c] = await Promise.all([0, 1, 2].map(() => connect(server.url, mode)));
        const other = await connect(server.url, mode, { nsp: "/chat" });
        const got = [a, b, c, other].map((s) => collect(s, "broadcast-message"));
        assert.deepEqual(await call(a, "broadcast", { hello: "<all>" }), []);
        await settle();
        assert.equal(got[0].length, 0, "the sender does not receive its broadcast");
        for (const g of [got[1], got[2]]) {
          assert.equal(g.length, 1);
          assert.deepEqual(payload(g[0], 1)[0], { from: a.id, data: { hello: "<all>" } });
        }
        assert.equal(got[3].length, 0, "a socket of another namespace does not receive it");
      });

      it("broadcast without an ack and with binary data", async () => {
        const [a, b] = await Promise.all([0, 1].map(() => connect(server.url, mode)));
        const got = collect(b, "broadcast-message");
        a.emit("broadcast", { bin: Buffer.from([1, 2, 3]) });
        await call(a, "whoami"); // handled after the broadcast on the same connection
        await settle();
        assert.equal(got.length, 1);
        const [msg] = payload(got[0], 1);
        assert.equal(msg.from, a.id);
        assert.deepEqual(Buffer.from(msg.data.bin), Buffer.from([1, 2, 3]));
      });

      it("broadcast-room reaches the room's members but the sender, and only them", async () => {
        const [a, b, c, d] = await Promise.all([0, 1, 2, 3].map(() => connect(server.url, mode)));
        await Promise.all([a, b, c].map((s) => call(s, "join", "r")));
        await call(d, "join", "elsewhere");
        const got = [a, b, c, d].map((s) => collect(s, "room-message"));
        assert.deepEqual(await call(a, "broadcast-room", "r", [1, "two"]), []);
        await settle();
        assert.equal(got[0].length, 0, "not the sender");
        for (const g of [got[1], got[2]]) {
          assert.equal(g.length, 1);
          assert.deepEqual(payload(g[0], 1)[0], { from: a.id, room: "r", data: [1, "two"] });
        }
        assert.equal(got[3].length, 0, "not a socket outside the room");

        // after leaving, c no longer receives
        await call(c, "leave", "r");
        await call(b, "broadcast-room", "r", "again");
        await settle();
        assert.equal(got[0].length, 1, "a is a member and b is the sender now");
        assert.equal(got[1].length, 1);
        assert.equal(got[2].length, 1, "c left the room");
      });

      it("a sender outside the room reaches every member", async () => {
        const [a, b, c] = await Promise.all([0, 1, 2].map(() => connect(server.url, mode)));
        await Promise.all([b, c].map((s) => call(s, "join", "members")));
        const got = [b, c].map((s) => collect(s, "room-message"));
        await call(a, "broadcast-room", "members", null);
        await settle();
        assert.deepEqual(got.map((g) => g.length), [1, 1]);
      });

      it("to-id reaches exactly the target socket", async () => {
        const [a, b, c] = await Promise.all([0, 1, 2].map(() => connect(server.url, mode)));
        const got = [a, b, c].map((s) => collect(s, "direct-message"));
        assert.deepEqual(await call(a, "to-id", c.id, { secret: 1 }), []);
        await settle();
        assert.equal(got[0].length, 0);
        assert.equal(got[1].length, 0);
        assert.equal(got[2].length, 1);
        assert.deepEqual(payload(got[2][0], 1)[0], { from: a.id, data: { secret: 1 } });
        // an unknown id reaches nobody and still acks
        assert.deepEqual(await call(a, "to-id", "no-such-socket", 1), []);
      });

      it("rooms are per namespace", async () => {
        const a = await connect(server.url, mode, { nsp: "/chat" });
        const b = await connect(server.url, mode, { nsp: "/chat" });
        const c = await connect(server.url, mode);
        await call(b, "join", "shared");
        await call(c, "join", "shared");
        const got = [b, c].map((s) => collect(s, "room-message"));
        await call(a, "broadcast-room", "shared", "chat only");
        await settle();
        assert.equal(got[0].length, 1);
        assert.equal(got[1].length, 0, "a room of / is not a room of /chat");
      });
    });
  }
});
