// Browser tests of what the editor does with named versions (issue 15),
// revisions folded by the retention policy (`gone`, issue 14) and tokens
// that end (`auth:expired`, issue 16), against a real collabd.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

import { buildServer, converge, goOffline, launch, openDoc, startServer, tempDir, text, typeAtLineEnd, waitOnline, withShots } from './harness.js';

const built = buildServer();
const skip = built.error ? `collabd cannot be built (go build ./cmd/collabd): ${built.error.split('\n')[0]}` : false;
if (skip) console.log(`# SKIP browser tests: ${skip}`);
else after(() => rmSync(built.dir, { recursive: true, force: true }));

// apiText returns the server's text of doc.
async function apiText(server, doc) {
  return (await (await fetch(`${server.url}/api/docs/${doc}`)).json()).text;
}

describe('named versions in the history panel', { skip, concurrency: false }, () => {
  /** @type {import('playwright-core').Browser} */
  let browser;
  let server;
  let data;

  before(async () => {
    data = tempDir('collabd-e2e-data-');
    server = await startServer(built.bin, data);
    browser = await launch();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
    rmSync(data, { recursive: true, force: true });
  });

  test('page A names a version; page B lists it, shows and diffs it, restores it; both converge on its text', async () => {
    const doc = 'e2e-versions';
    const ctxA = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    const ctxB = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    const pages = [];
    try {
      await withShots('versions', pages, async () => {
        const a = await openDoc(ctxA, server.url, doc, 'Alice');
        pages.push(a);
        await typeAtLineEnd(a, 1, 'the draft we sent');
        await waitOnline(a);
        const v1 = await text(a);
        const b = await openDoc(ctxB, server.url, doc, 'Bob');
        pages.push(b);
        await b.getByRole('button', { name: 'History' }).click();
        await b.locator('.version-note', { hasText: 'No named versions yet.' }).waitFor();

        // A names the current version.
        await a.getByRole('button', { name: 'History' }).click();
        await a.getByRole('button', { name: 'Name current version' }).click();
        await a.locator('#version-name').fill('Sent to client');
        await a.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
        const va = a.locator('.versions .version', { hasText: 'Sent to client' });
        await va.waitFor();
        assert.match(await va.textContent(), /Alice/);
        const named = await a.evaluate(() => window.collabd.session.client.rev);
        assert.equal(await va.getAttribute('data-rev'), String(named));
        // B's open panel hears of it (doc:versions:changed) without a refresh.
        await b.locator('.versions .version', { hasText: 'Sent to client' }).waitFor();
        await b.locator('.version-note', { hasText: `Alice named revision #${named} “Sent to client”.` }).waitFor();

        // The text moves on (both pages edit).
        await a.locator('.cm-content').click();
        await a.keyboard.press('Control+a');
        await a.keyboard.type('a rewrite by Alice');
        await typeAtLineEnd(b, 1, ', and Bob adds this');
        const later = await converge([a, b]);
        assert.notEqual(later, v1);

        // After a refresh too, the version is there, with author and revision.
        await b.locator('.panel-head').getByRole('button', { name: 'Refresh' }).click();
        const vb = b.locator('.versions .version', { hasText: 'Sent to client' });
        await vb.waitFor();
        assert.match(await vb.textContent(), /Alice/);
        assert.match(await vb.textContent(), new RegExp(`#${named}`));
        await vb.click();
        // Changes: from the version to now.
        await b.locator('.rev-detail pre.diff ins').first().waitFor();
        assert.match(await b.locator('.rev-detail pre.diff').textContent(), /the draft we sent/);
        // Its text.
        await b.getByRole('button', { name: 'Full text' }).click();
        await b.locator('.rev-detail pre.rev-text').waitFor();
        assert.equal(await b.locator('.rev-detail pre.rev-text').textContent(), v1);

        // Restore it: both pages and the server hold the version's text.
        await b.getByRole('button', { name: 'Restore this version' }).click();
        await b.getByRole('dialog').getByRole('button', { name: 'Restore' }).click();
        await a.waitForFunction((w) => window.collabd.editor.text() === w, v1, { timeout: 15_000 });
        assert.equal(await converge([a, b]), v1);
        assert.equal(await apiText(server, doc), v1);

        // Rename, then a second version of a chosen revision, then delete.
        await b.locator('.rev-actions').getByRole('button', { name: 'Rename' }).click();
        await b.locator('#version-name').fill('v1 final');
        await b.getByRole('dialog').getByRole('button', { name: 'Rename' }).click();
        await b.locator('.versions .version', { hasText: 'v1 final' }).waitFor();
        assert.equal(await b.locator('.versions .version', { hasText: 'Sent to client' }).count(), 0);
        // A's open panel follows the rename.
        await a.locator('.versions .version', { hasText: 'v1 final' }).waitFor();
        await a.locator('.version-note', { hasText: '“Sent to client” was renamed to “v1 final”.' }).waitFor();
        assert.equal(await a.locator('.versions .version', { hasText: 'Sent to client' }).count(), 0);
        const list = await (await fetch(`${server.url}/api/docs/${doc}/versions`)).json();
        assert.deepEqual(list.versions.map((v) => [v.name, v.rev]), [['v1 final', named]]);

        // A revision chosen in the list gets a name of its own; the same name twice is refused.
        const first = b.locator('.revs .rev').last();
        await first.waitFor();
        const chosen = await first.getAttribute('data-rev');
        assert.notEqual(chosen, String(named));
        await first.click();
        await b.getByRole('button', { name: 'Name this revision' }).click();
        await b.locator('#version-name').fill('v1 final');
        await b.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
        await b.locator('.version-note', { hasText: 'There is already a version named “v1 final”' }).waitFor();
        await b.getByRole('button', { name: 'Name this revision' }).click();
        await b.locator('#version-name').fill('first keystroke');
        await b.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
        await b.locator(`.versions .version[data-rev="${chosen}"]`, { hasText: 'first keystroke' }).waitFor();

        await b.locator('.versions .version', { hasText: 'v1 final' }).click();
        await b.locator('.rev-actions').getByRole('button', { name: 'Delete' }).click();
        await b.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
        await b.locator('.version-note', { hasText: 'Deleted the version “v1 final”' }).waitFor();
        assert.equal(await b.locator('.versions .version').count(), 1);
        const after = await (await fetch(`${server.url}/api/docs/${doc}/versions`)).json();
        assert.deepEqual(after.versions.map((v) => v.name), ['first keystroke']);
        // A deletion through the HTTP API reaches both pages.
        const del = await fetch(`${server.url}/api/docs/${doc}/versions/${encodeURIComponent('first keystroke')}`, { method: 'DELETE' });
        assert.equal(del.status, 204);
        for (const p of [a, b]) {
          await p.locator('.version-note', { hasText: 'The version “first keystroke” was deleted.' }).waitFor();
          assert.equal(await p.locator('.versions .version').count(), 0);
        }
      });
    } finally {
      await ctxA.close();
      await ctxB.close();
    }
  });
});

describe('revisions folded by the retention policy (gone)', { skip, concurrency: false }, () => {
  /** @type {import('playwright-core').Browser} */
  let browser;
  let server;
  let data;

  before(async () => {
    data = tempDir('collabd-e2e-data-');
    // Keep only the last 5 revisions of each document, folding every 100 ms.
    server = await startServer(built.bin, data, '127.0.0.1:0', ['--retain-revisions', '5', '--retention-interval', '100ms']);
    browser = await launch();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
    rmSync(data, { recursive: true, force: true });
  });

  // folded waits until the server answers 410 gone for revision rev of doc.
  async function folded(doc, rev) {
    const end = Date.now() + 15_000;
    for (;;) {
      const res = await fetch(`${server.url}/api/docs/${doc}/revisions/${rev}`);
      if (res.status === 410) return (await res.json()).error.earliest;
      if (Date.now() > end) throw new Error(`revision ${rev} of ${doc} not folded: ${res.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // caughtUp waits until the background fold has reached the retention
  // horizon of page p's head (5 revisions kept): only then is the folded
  // range on the history's first page. folded(doc, rev) alone can return
  // while the fold trails the head by a tick of revisions, more than a page.
  async function caughtUp(p, doc) {
    const head = await p.evaluate(() => window.collabd.session.client.rev);
    return folded(doc, head - 6);
  }

  // manyRevisions makes n revisions from page p: an "x" at the end of line
  // 2, one acknowledged op at a time.
  function manyRevisions(p, n) {
    return p.evaluate(async (n) => {
      const { session, editor } = window.collabd;
      for (let i = 0; i < n; i++) {
        const line = editor.view.state.doc.line(2);
        editor.view.dispatch({ changes: { from: line.to, insert: 'x' }, userEvent: 'input.type' });
        await new Promise((resolve) => {
          const off = session.onChange(() => {
            if (session.pendingEdits === 0) {
              off();
              resolve();
            }
          });
        });
      }
    }, n);
  }

  test('offline edits whose base was folded meanwhile are rebased, not lost; the page says so; the history shows the fold', async () => {
    const doc = 'e2e-gone';
    const ctxA = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    const ctxB = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    const pages = [];
    try {
      await withShots('gone', pages, async () => {
        const a = await openDoc(ctxA, server.url, doc, 'Alice');
        pages.push(a);
        const b = await openDoc(ctxB, server.url, doc, 'Bob');
        pages.push(b);
        await typeAtLineEnd(a, 1, 'top\nmiddle\nbottom');
        await converge([a, b]);
        assert.equal(await a.locator('#sync-notice').isVisible(), false);

        // A goes offline and edits (a deletion and insertions at two places).
        await goOffline(ctxA, a);
        const base = await a.evaluate(() => window.collabd.session.client.rev);
        await typeAtLineEnd(a, 1, ' (Alice, offline)');
        await a.keyboard.press('Backspace');
        await a.keyboard.press('Backspace');
        await typeAtLineEnd(a, 3, ' end');
        assert.equal(await text(a), 'top (Alice, offlin\nmiddle\nbottom end');

        // B's edits push A's base revision past the retention horizon, and
        // past the server's in-memory log of recent ops (128 to 160 per
        // document), which would still let A's join resume: B types, then
        // adds 200 characters one acknowledged op at a time.
        await typeAtLineEnd(b, 2, ' and more from Bob', 40);
        await waitOnline(b);
        await manyRevisions(b, 200);
        assert.ok((await b.evaluate(() => window.collabd.session.client.rev)) > base + 200);
        const earliest = await folded(doc, base);
        assert.ok(earliest > base);

        await ctxA.setOffline(false);
        const final = await converge([a, b]);
        assert.equal(final, `top (Alice, offlin\nmiddle and more from Bob${'x'.repeat(200)}\nbottom end`);
        assert.equal(await apiText(server, doc), final);
        assert.equal(await a.evaluate(() => JSON.stringify([window.collabd.session.goneRebases, window.collabd.session.recovered])), "[1,1]");
        const notice = a.locator('#sync-notice');
        await notice.waitFor();
        assert.match(await notice.textContent(), new RegExp(`based on revision #${base}, which the server no longer keeps`));
        assert.equal(await a.locator('#banner').isVisible(), false, 'no error banner');
        await notice.getByRole('button', { name: 'Dismiss' }).click();
        await notice.waitFor({ state: 'hidden' });

        // The history: one line for the folded range; a folded revision's text says why it is missing.
        await caughtUp(b, doc);
        await b.getByRole('button', { name: 'History' }).click();
        const line = b.locator('.revs li.folded');
        await line.waitFor();
        assert.match(await line.textContent(), /^Revisions 1–\d+, folded$/);
        // The oldest revision kept: its changes show; once more edits have
        // folded it, comparing with the revision before it says why not.
        const oldest = b.locator('.revs .rev').last();
        const oldestRev = Number(await oldest.getAttribute('data-rev'));
        await oldest.click();
        await b.locator('.rev-detail .legend').waitFor();
        assert.equal(await b.locator('.rev-detail .error').count(), 0);
        await manyRevisions(b, 10);
        await folded(doc, oldestRev);
        await b.locator('#compare-with').selectOption('before');
        await b.locator('.rev-detail .error', { hasText: 'folded by the retention policy' }).waitFor();
      });
    } finally {
      await ctxA.close();
      await ctxB.close();
    }
  });

  test('a named version outlives the fold: its text, its changes and a restore still work', async () => {
    const doc = 'e2e-gone-version';
    const ctxA = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    const ctxB = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    const pages = [];
    try {
      await withShots('gone-version', pages, async () => {
        const a = await openDoc(ctxA, server.url, doc, 'Alice');
        pages.push(a);
        const b = await openDoc(ctxB, server.url, doc, 'Bob');
        pages.push(b);
        await typeAtLineEnd(a, 1, 'kept text\nline two');
        const v = await converge([a, b]);
        const named = await a.evaluate(() => window.collabd.session.client.rev);
        await a.getByRole('button', { name: 'History' }).click();
        await a.getByRole('button', { name: 'Name current version' }).click();
        await a.locator('#version-name').fill('before the flood');
        await a.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
        await a.locator('.versions .version', { hasText: 'before the flood' }).waitFor();

        await manyRevisions(b, 200);
        await folded(doc, named - 1);
        await converge([a, b]);
        await caughtUp(a, doc);
        await a.locator('.panel-head').getByRole('button', { name: 'Refresh' }).click();
        await a.locator('.revs li.folded').waitFor();
        await a.locator('.versions .version', { hasText: 'before the flood' }).click();
        await a.locator('.rev-detail pre.diff ins').first().waitFor();
        await a.getByRole('button', { name: 'Full text' }).click();
        await a.locator('.rev-detail pre.rev-text').waitFor();
        assert.equal(await a.locator('.rev-detail pre.rev-text').textContent(), v);
        await a.getByRole('button', { name: 'Restore this version' }).click();
        await a.getByRole('dialog').getByRole('button', { name: 'Restore' }).click();
        await a.locator('.version-note', { hasText: 'Restored “before the flood”' }).waitFor();
        await b.waitForFunction((w) => window.collabd.editor.text() === w, v, { timeout: 15_000 });
        assert.equal(await converge([a, b]), v);
        assert.equal(await apiText(server, doc), v);
        // It went in as doc:restore of the folded revision: the server reads its text from the version.
        const h = await (await fetch(`${server.url}/api/docs/${doc}/history?limit=1`)).json();
        assert.match(h.revs[0].client, /^~restore\./);
      });
    } finally {
      await ctxA.close();
      await ctxB.close();
    }
  });

  test('after a reload offline: the base saved with the edits still gives an exact rebase', async () => {
    const doc = 'e2e-gone-reload';
    const ctxA = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    const ctxB = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    const pages = [];
    try {
      await withShots('gone-reload', pages, async () => {
        const a = await openDoc(ctxA, server.url, doc, 'Alice');
        pages.push(a);
        const b = await openDoc(ctxB, server.url, doc, 'Bob');
        pages.push(b);
        await typeAtLineEnd(a, 1, 'top\nmiddle\nbottom');
        await converge([a, b]);
        // The service worker keeps the page loadable offline.
        await a.evaluate(() => navigator.serviceWorker.ready.then(() => true));

        await goOffline(ctxA, a);
        const base = await a.evaluate(() => window.collabd.session.client.rev);
        await typeAtLineEnd(a, 1, ' (offline)');
        await typeAtLineEnd(a, 3, '');
        for (let i = 0; i < 3; i++) await a.keyboard.press('Backspace');
        await a.reload();
        await a.waitForFunction(() => window.collabd && window.collabd.session && window.collabd.session.pendingEdits > 0);
        assert.equal(await text(a), 'top (offline)\nmiddle\nbot');
        assert.equal(await a.evaluate(() => JSON.stringify([window.collabd.session.base && window.collabd.session.base.rev, window.collabd.session.status])), JSON.stringify([base, 'offline']), 'the base came back with the entry');

        await manyRevisions(b, 200);
        await folded(doc, base);
        await ctxA.setOffline(false);
        const final = await converge([a, b]);
        // The insertion and the deletion are both there.
        assert.equal(final, `top (offline)\nmiddle${'x'.repeat(200)}\nbot`);
        assert.equal(await a.evaluate(() => window.collabd.session.goneRebases), 1);
        const notice = a.locator('#sync-notice');
        await notice.waitFor();
        assert.match(await notice.textContent(), /no longer keeps.*Please check the result/);
      });
    } finally {
      await ctxA.close();
      await ctxB.close();
    }
  });
});

describe('tokens that end (auth:expired, auth:refresh)', { skip, concurrency: false }, () => {
  const SECRET = 'e2e-expiry-secret-0123456789abcdef';
  /** @type {import('playwright-core').Browser} */
  let browser;
  let server;
  let data;

  before(async () => {
    data = tempDir('collabd-e2e-data-');
    server = await startServer(built.bin, data, '127.0.0.1:0', ['--auth-secret', SECRET]);
    browser = await launch();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
    rmSync(data, { recursive: true, force: true });
  });

  function mint(...args) {
    const res = spawnSync(built.bin, ['token', '--auth-secret', SECRET, ...args], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    return res.stdout.trim();
  }

  async function serverText(doc, token) {
    const res = await fetch(`${server.url}/api/docs/${doc}`, { headers: { Authorization: `Bearer ${token}` } });
    return (await res.json()).text;
  }

  test('embedded with getToken: the token ends, the editor renews it, rejoins and sends the edits made meanwhile', async () => {
    const doc = 'exp-embedded';
    const long = mint('--user', 'ann', '--edit', 'exp-*', '--ttl', '1h');
    const ctx = await browser.newContext();
    const pages = [];
    try {
      await withShots('expiry-embedded', pages, async () => {
        const p = await ctx.newPage();
        pages.push(p);
        let renewals = 0;
        await p.exposeFunction('mintToken', () => {
          renewals++;
          return mint('--user', 'ann', '--edit', 'exp-*', '--ttl', '1h');
        });
        await p.goto(`${server.url}/`);
        await p.waitForFunction(() => window.collabd && typeof window.collabd.open === 'function');
        const short = mint('--user', 'ann', '--edit', 'exp-*', '--ttl', '5s');
        await p.evaluate(
          async ({ doc, token }) => {
            const el = document.createElement('div');
            el.id = 'embed';
            el.style.height = '200px';
            document.body.append(el);
            // The embedding page's way to a fresh token: its backend (here the test), after a while.
            const getToken = async () => {
              await new Promise((r) => setTimeout(r, 1500));
              return window.mintToken();
            };
            window.embedded = await window.collabd.open({ parent: el, doc, user: { name: 'ann', color: '#1a73e8' }, token, getToken });
          },
          { doc, token: short },
        );
        const synced = () => p.waitForFunction(() => window.embedded.session.status === 'online' && window.embedded.session.pendingEdits === 0, null, { timeout: 20_000 });
        await synced();
        await p.locator('#embed .cm-content').click();
        await p.keyboard.type('before expiry', { delay: 10 });
        await synced();
        assert.equal(await serverText(doc, long), 'before expiry');

        // The server ends the token (auth:expired); while the page renews it, the person keeps typing.
        await p.waitForFunction(() => window.embedded.session.expired, null, { timeout: 15_000 });
        assert.match(await p.evaluate(() => window.embedded.session.notice), /expired; renewing it/);
        await p.keyboard.type(', during renewal', { delay: 10 });
        assert.ok((await p.evaluate(() => window.embedded.session.pendingEdits)) > 0, 'edits wait while the token is renewed');
        await synced();
        assert.equal(await p.evaluate(() => window.embedded.editor.text()), 'before expiry, during renewal');
        assert.equal(await serverText(doc, long), 'before expiry, during renewal');
        assert.equal(renewals, 1);
        assert.match(await p.evaluate(() => window.embedded.session.notice), /expired and was renewed; your edits were kept/);
        // Still live after the renewal.
        await p.keyboard.type('!', { delay: 10 });
        await synced();
        assert.equal(await serverText(doc, long), 'before expiry, during renewal!');
      });
    } finally {
      await ctx.close();
    }
  });

  test('embedded with getToken: the token ends while offline; the refused reconnect renews it and sends the offline edits', async () => {
    const doc = 'exp-offline';
    const long = mint('--user', 'ann', '--edit', 'exp-*', '--ttl', '1h');
    const ctx = await browser.newContext();
    const pages = [];
    try {
      await withShots('expiry-offline', pages, async () => {
        const p = await ctx.newPage();
        pages.push(p);
        let renewals = 0;
        await p.exposeFunction('mintToken', () => {
          renewals++;
          return mint('--user', 'ann', '--edit', 'exp-*', '--ttl', '1h');
        });
        await p.goto(`${server.url}/`);
        await p.waitForFunction(() => window.collabd && typeof window.collabd.open === 'function');
        const short = mint('--user', 'ann', '--edit', 'exp-*', '--ttl', '4s');
        await p.evaluate(
          async ({ doc, token }) => {
            const el = document.createElement('div');
            el.id = 'embed';
            el.style.height = '200px';
            document.body.append(el);
            window.embedded = await window.collabd.open({ parent: el, doc, user: { name: 'ann', color: '#1a73e8' }, token, getToken: () => window.mintToken() });
          },
          { doc, token: short },
        );
        const synced = () => p.waitForFunction(() => window.embedded.session.status === 'online' && window.embedded.session.pendingEdits === 0, null, { timeout: 20_000 });
        await synced();
        await p.locator('#embed .cm-content').click();
        await p.keyboard.type('online', { delay: 10 });
        await synced();

        await ctx.setOffline(true);
        await p.evaluate(() => window.embedded.session.socket.io.engine.close());
        await p.keyboard.type(', offline', { delay: 10 });
        // Past the token's end, still offline.
        await new Promise((r) => setTimeout(r, 4500));
        assert.equal(renewals, 0);
        await ctx.setOffline(false);
        await synced();
        assert.equal(renewals, 1, 'one renewal after the refused reconnect');
        assert.equal(await serverText(doc, long), 'online, offline');
        assert.equal(await p.evaluate(() => window.embedded.session.error), null);
      });
    } finally {
      await ctx.close();
    }
  });

  test('the editor page without a way to renew: read-only with a notice; a token opened in another tab renews it', async () => {
    const doc = 'exp-page';
    const long = mint('--user', 'bob', '--edit', 'exp-*', '--ttl', '1h');
    const ctx = await browser.newContext();
    const pages = [];
    try {
      await withShots('expiry-page', pages, async () => {
        const a = await ctx.newPage();
        pages.push(a);
        await a.goto(`${server.url}/d/${doc}#token=${mint('--user', 'bob', '--edit', 'exp-*', '--ttl', '4s')}`);
        await waitOnline(a);
        await typeAtLineEnd(a, 1, 'typed by bob');
        await waitOnline(a);

        await a.locator('#status[data-state="expired"]').waitFor({ timeout: 15_000 });
        assert.match(await a.locator('#status').textContent(), /Access expired/);
        const notice = a.locator('#sync-notice');
        await notice.waitFor();
        assert.match(await notice.textContent(), /expired: the document is read-only until you open it with a new token/);
        assert.equal(await a.locator('.cm-content').getAttribute('contenteditable'), 'false');

        // Another tab of the same browser opens the document with a new token: this one goes on.
        const b = await ctx.newPage();
        pages.push(b);
        await b.goto(`${server.url}/d/${doc}#token=${long}`);
        await waitOnline(b);
        await a.locator('#status[data-state="online"]').waitFor({ timeout: 15_000 });
        assert.equal(await a.locator('.cm-content').getAttribute('contenteditable'), 'true');
        assert.match(await notice.textContent(), /renewed with the token opened in another tab/);
        await typeAtLineEnd(a, 1, ', and more');
        assert.equal(await converge([a, b]), 'typed by bob, and more');
        assert.equal(await serverText(doc, long), 'typed by bob, and more');
      });
    } finally {
      await ctx.close();
    }
  });
});
