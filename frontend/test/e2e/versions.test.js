// Browser tests of what the editor does with named versions (issue 15),
// revisions folded by the retention policy (`gone`, issue 14) and tokens
// that end (`auth:expired`, issue 16), against a real collabd.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';

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

        // The text moves on (both pages edit).
        await a.locator('.cm-content').click();
        await a.keyboard.press('Control+a');
        await a.keyboard.type('a rewrite by Alice');
        await typeAtLineEnd(b, 1, ', and Bob adds this');
        const later = await converge([a, b]);
        assert.notEqual(later, v1);

        // B refreshes its list: the version is there, with author and revision.
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
        await b.evaluate(async (n) => {
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
        }, 200);
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
        await b.getByRole('button', { name: 'History' }).click();
        const line = b.locator('.revs li.folded');
        await line.waitFor();
        assert.match(await line.textContent(), /^Revisions 1–\d+, folded$/);
        const oldest = b.locator('.revs .rev').last();
        await oldest.click();
        await b.locator('#compare-with').selectOption('before');
        await b.locator('.rev-detail .error', { hasText: 'folded by the retention policy' }).waitFor();
      });
    } finally {
      await ctxA.close();
      await ctxB.close();
    }
  });
});
