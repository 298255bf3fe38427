// Clients drop their transport at random moments while editing, and the
// server is restarted once mid-run: every edit is present exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Server, Editor, transportModes, settle, rng, sleep } from '../lib/helpers.js';

// boundaries are the positions between tokens (tokens are ASCII <...>), where
// an insert keeps every token whole.
function boundaries(text) {
  const out = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '>') out.push(i + 1);
  return out;
}

for (const [i, mode] of transportModes.entries()) {
  const signal = i === 1 ? 'SIGTERM' : 'SIGKILL';
  test(`drops and a ${signal} restart lose and duplicate nothing (${mode.name})`, async () => {
    const seed = 7000 + i;
    const server = await Server.start();
    const doc = `reconnect-${i}`;
    const editors = [];
    try {
      const initial = '<init>';
      const put = await server.api('PUT', `/api/docs/${doc}`, { body: initial, headers: { 'If-Match': '0', 'Content-Type': 'text/plain' } });
      assert.equal(put.status, 200, put.text);
      const n = 4;
      for (let k = 0; k < n; k++) editors.push(new Editor(server.url, doc, `r${k}`, mode.opts));
      await Promise.all(editors.map((e) => e.joined()));
      const edits = 40;
      const tokens = [];
      let drops = 0;
      let restart = null;
      await Promise.all(editors.map(async (e, k) => {
        const r = rng(seed * 17 + k);
        for (let j = 0; j < edits; j++) {
          const token = `<${e.id}-${j}>`;
          tokens.push(token);
          if (restart === null && tokens.length >= (n * edits) / 2) restart = server.restart(signal);
          e.edit([r.pick(boundaries(e.text)), token]);
          if (r.int(12) === 0 && e.socket.connected) {
            drops++;
            e.socket.io.engine.close();
          }
          await sleep(r.int(25));
        }
      }));
      await restart;
      const d = await settle(server, editors, doc, 60000);
      for (const e of editors) assert.equal(e.text, d.text, `${e.id} diverged (seed ${seed})`);
      for (const t of tokens) {
        const count = d.text.split(t).length - 1;
        assert.equal(count, 1, `${t} appears ${count} times (seed ${seed})`);
      }
      assert.equal(d.text.length, initial.length + tokens.reduce((s, t) => s + t.length, 0));
      assert.ok(drops > 0, 'no transport was dropped');
      assert.ok(editors.every((e) => e.joins >= 2), 'every editor rejoined after the restart');
    } finally {
      editors.forEach((e) => e.close());
      await server.close();
    }
  });
}
