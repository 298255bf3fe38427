// Auth: viewer, editor, bad token, against a server started with --auth-secret.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Server, connect, call, next } from '../lib/helpers.js';

let server;
before(async () => {
  server = await Server.start({ secret: 'e2e-secret-0123456789abcdef' });
});
after(async () => {
  await server?.close();
});

test('a missing or bad token is refused at CONNECT', async () => {
  for (const auth of [undefined, { token: 'not.a.token' }, { token: 42 }]) {
    await assert.rejects(connect(server.url, { auth, reconnection: false }), (err) => {
      assert.equal(err.message, 'unauthorized');
      assert.equal(err.data.code, 'unauthorized');
      assert.equal(typeof err.data.reason, 'string');
      return true;
    });
  }
  const other = new Server({ dataDir: '/nonexistent', port: 1, secret: 'another-secret-0123456789' });
  const forged = await other.token({ user: 'mallory', edit: ['*'] });
  await assert.rejects(connect(server.url, { auth: { token: forged }, reconnection: false }), /unauthorized/);
});

test('an editor edits its documents only; a viewer reads and gets broadcasts', async () => {
  const editorToken = await server.token({ user: 'eddie', edit: ['team-*'] });
  const viewerToken = await server.token({ user: 'vera', view: ['team-*'] });
  const ed = await connect(server.url, { auth: { token: editorToken } });
  const vi = await connect(server.url, { auth: { token: viewerToken }, transports: ['polling'], upgrade: false });
  try {
    assert.equal((await call(ed, 'doc:join', { doc: 'secret', client: 'e1' })).error.code, 'forbidden');
    assert.equal((await call(vi, 'doc:join', { doc: 'secret', client: 'v1' })).error.code, 'forbidden');
    assert.equal((await call(ed, 'doc:join', { doc: 'team-a', client: 'e1', user: { name: 'spoofed' } })).ok, true);
    const j = await call(vi, 'doc:join', { doc: 'team-a', client: 'v1' });
    assert.equal(j.ok, true);
    assert.equal(j.members[0].user.name, 'eddie', 'the name comes from the token');
    const rec = next(vi, 'doc:op');
    assert.deepEqual(await call(ed, 'doc:op', { doc: 'team-a', client: 'e1', seq: 1, rev: 0, op: ['hi'] }), { ok: true, rev: 1 });
    assert.equal((await rec).user, 'eddie');
    const denied = await call(vi, 'doc:op', { doc: 'team-a', client: 'v1', seq: 1, rev: 1, op: ['no'] });
    assert.equal(denied.error.code, 'forbidden');
    assert.equal((await call(vi, 'doc:restore', { doc: 'team-a', rev: 0 })).error.code, 'forbidden');
    assert.equal((await call(vi, 'doc:history', { doc: 'team-a' })).revs.length, 1);
    assert.equal((await call(vi, 'doc:presence', { doc: 'team-a', rev: 1, sel: [] })).ok, true);

    // The HTTP API applies the same rules.
    const get = (token) => server.api('GET', '/api/docs/team-a', { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    assert.equal((await get(viewerToken)).json.text, 'hi');
    assert.equal((await get(null)).status >= 400, true);
    const put = await server.api('PUT', '/api/docs/team-a', { body: 'x', headers: { Authorization: `Bearer ${viewerToken}`, 'If-Match': '1' } });
    assert.equal(put.status, 403);
  } finally {
    ed.close();
    vi.close();
  }
});
