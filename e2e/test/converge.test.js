// Concurrent editors over each transport converge to the server's text.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';

import { Server, Editor, transportModes, settle, randomEdit, rng, sleep } from '../lib/helpers.js';

let server;
before(async () => {
  server = await Server.start();
});
after(async () => {
  await server?.close();
});

for (const [i, mode] of transportModes.entries()) {
  for (const n of [2, 5, 8]) {
    test(`${n} editors converge (${mode.name})`, async () => {
      const seed = 1000 * i + n;
      const doc = `conv-${i}-${n}`;
      const editors = [];
      try {
        for (let k = 0; k < n; k++) editors.push(new Editor(server.url, doc, `e${k}-${seed}`, mode.opts));
        await Promise.all(editors.map((e) => e.joined()));
        const want = mode.opts.transports?.length === 1 ? mode.opts.transports[0] : null;
        for (const e of editors) {
          if (want) assert.equal(e.socket.io.engine.transport.name, want);
        }
        const edits = 40;
        await Promise.all(editors.map(async (e, k) => {
          const r = rng(seed * 31 + k);
          for (let j = 0; j < edits; j++) {
            e.edit(randomEdit(r, e.length));
            await sleep(r.int(15));
          }
        }));
        const d = await settle(server, editors, doc);
        for (const e of editors) {
          assert.equal(e.text, d.text, `${e.id} diverged (seed ${seed})`);
          assert.equal(e.ownBroadcasts, 0, `${e.id} got its own ops back`);
        }
        const acked = editors.reduce((s, e) => s + e.ackedOps, 0);
        assert.equal(acked, d.rev, 'every revision is one acked op');
        assert.ok(d.rev >= n, `only ${d.rev} revisions`);
      } finally {
        editors.forEach((e) => e.close());
      }
    });
  }
}
