// The HTTP API next to socket editors: a PUT concurrent with socket edits is
// transformed, not lost, and everyone converges.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Server, Editor, settle, rng, sleep } from '../lib/helpers.js';

// boundaries are the positions between whole tokens (<...> and [...]).
function boundaries(text) {
  const out = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '>' || text[i] === ']') out.push(i + 1);
  return out;
}

let server;
before(async () => {
  server = await Server.start();
});
after(async () => {
  await server?.close();
});

test('PUTs concurrent with socket edits converge', async () => {
  const doc = 'http-put';
  const editors = [];
  try {
    for (let k = 0; k < 3; k++) editors.push(new Editor(server.url, doc, `h${k}`));
    await Promise.all(editors.map((e) => e.joined()));
    const puts = [];
    const tokens = [];
    const editing = Promise.all(editors.map(async (e, k) => {
      const r = rng(500 + k);
      for (let j = 0; j < 40; j++) {
        // Whole tokens between whole tokens: each stays in one piece.
        const token = `<${e.id}-${j}>`;
        tokens.push(token);
        e.edit([r.pick(boundaries(e.text)), token]);
        await sleep(r.int(10));
      }
    }));
    for (let i = 0; i < 5; i++) {
      await sleep(40);
      const d = await server.doc(doc);
      const marker = `[PUT ${i}]`;
      // A stale base on purpose: the socket edits go on meanwhile.
      await sleep(20);
      const r = await server.api('PUT', `/api/docs/${doc}`, { body: marker + d.text, headers: { 'If-Match': `"${d.rev}"` } });
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.rev > d.rev);
      puts.push(marker);
    }
    await editing;
    const d = await settle(server, editors, doc);
    for (const e of editors) assert.equal(e.text, d.text, `${e.id} diverged`);
    for (const m of [...puts, ...tokens]) assert.equal(d.text.split(m).length - 1, 1, `${m} in ${JSON.stringify(d.text)}`);
    assert.equal(d.text.length, [...puts, ...tokens].reduce((n, t) => n + t.length, 0));

    const stale = await server.api('PUT', `/api/docs/${doc}`, { body: 'x', headers: { 'If-Match': String(d.rev + 5) } });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.error.code, 'conflict');
    const missing = await server.api('PUT', `/api/docs/${doc}`, { body: 'x' });
    assert.equal(missing.status, 428);
  } finally {
    editors.forEach((e) => e.close());
  }
});

test('DELETE while editors are joined: they rejoin the new, empty document', async () => {
  const doc = 'http-delete';
  const editors = [];
  try {
    for (let k = 0; k < 2; k++) editors.push(new Editor(server.url, doc, `d${k}`));
    await Promise.all(editors.map((e) => e.joined()));
    editors[0].edit(['before delete']);
    await settle(server, editors, doc);
    const joins = editors.map((e) => e.joins);
    const del = await server.api('DELETE', `/api/docs/${doc}`);
    assert.equal(del.status, 204, del.text);
    // Their connections are closed; they reconnect and get the text form.
    const end = Date.now() + 10000;
    while (editors.some((e, i) => e.joins <= joins[i] || !e.settled)) {
      assert.ok(Date.now() < end, 'editors did not rejoin after the delete');
      await sleep(20);
    }
    for (const e of editors) assert.equal(e.text, '');
    editors[1].edit(['after']);
    const d = await settle(server, editors, doc);
    assert.deepEqual([d.rev, d.text], [1, 'after']);
    for (const e of editors) assert.equal(e.text, 'after');
  } finally {
    editors.forEach((e) => e.close());
  }
});
