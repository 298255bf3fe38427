// Browser tests of the editor against a real collabd (built from
// cmd/collabd), in Debian's chromium driven by playwright-core.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { buildServer, converge, dropTransport, waitEntries, goOffline, launch, openDoc, repoRoot, rename, resultsDir, startServer, tempDir, text, typeAtLineEnd, waitOnline, watchConsole, withShots } from './harness.js';

const built = buildServer();
const skip = built.error ? `collabd cannot be built (go build ./cmd/collabd): ${built.error.split('\n')[0]}` : false;
if (skip) console.log(`# SKIP browser tests: ${skip}`);
else after(() => rmSync(built.dir, { recursive: true, force: true }));

// saved waits until an entry of the page (IndexedDB) holds s.
function saved(page, s) {
  return waitEntries(page, (list) => list.some(([k, v]) => k.startsWith('collabd:v1:') && JSON.stringify(v).includes(s)), `an entry or delta with ${s}`);
}

describe('editor in the browser', { skip, concurrency: false }, () => {
  /** @type {import('playwright-core').Browser} */
  let browser;
  let server;
  let data;
  const contexts = [];

  before(async () => {
    data = tempDir('collabd-e2e-data-');
    server = await startServer(built.bin, data);
    browser = await launch();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (browser) await browser.close();
    if (server) await server.stop();
    rmSync(data, { recursive: true, force: true });
  });

  // aliceAndBob opens doc for Alice, who writes the lines "A:" and "B:", then
  // for Bob (both pages go into pages, for screenshots), and waits until both
  // show the same text.
  async function aliceAndBob(ctxA, ctxB, doc, pages) {
    const a = await openDoc(ctxA, server.url, doc, 'Alice');
    pages.push(a);
    await typeAtLineEnd(a, 1, 'A:\nB:\n');
    const b = await openDoc(ctxB, server.url, doc, 'Bob');
    pages.push(b);
    await converge([a, b]);
    return [a, b];
  }

  async function newContext(opts = {}) {
    const c = await browser.newContext({ viewport: { width: 1200, height: 760 }, ...opts });
    contexts.push(c);
    return c;
  }

  test('two pages type concurrently by keyboard and converge; each sees the other', async () => {
    const doc = 'e2e-typing';
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('typing', pages, async () => {
      const a = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a);
      const errorsA = watchConsole(a);
      await typeAtLineEnd(a, 1, 'Alice writes here\nBob writes here\n');
      await waitOnline(a);
      const b = await openDoc(ctxB, server.url, doc, 'Bob');
      pages.push(b);
      const errorsB = watchConsole(b);
      assert.equal(await text(b), 'Alice writes here\nBob writes here\n');

      // Both type at once, on different lines, by keyboard.
      await Promise.all([typeAtLineEnd(a, 1, ': one 😀 two 漢字 three'), typeAtLineEnd(b, 2, ': four five six 👍🏽')]);
      const final = await converge([a, b]);
      assert.equal(final, 'Alice writes here: one 😀 two 漢字 three\nBob writes here: four five six 👍🏽\n');

      // The member lists and the remote cursors.
      await a.locator('#members .member:not(.self)', { hasText: 'Bob' }).waitFor();
      await b.locator('#members .member:not(.self)', { hasText: 'Alice' }).waitFor();
      await a.locator('.cm-remote-caret', { hasText: 'Bob' }).waitFor();
      await b.locator('.cm-remote-caret', { hasText: 'Alice' }).waitFor();
      assert.equal(await a.title(), `${doc} · collabd`);

      // Concurrent typing at the SAME place: both texts survive in full.
      await Promise.all([typeAtLineEnd(a, 3, 'xxxx', 30), typeAtLineEnd(b, 3, 'yyyy', 30)]);
      const same = await converge([a, b]);
      const last = same.split('\n')[2];
      assert.equal(last.length, 8);
      assert.equal([...last].filter((c) => c === 'x').length, 4);
      assert.equal([...last].filter((c) => c === 'y').length, 4);

      assert.deepEqual(errorsA, [], 'console errors on page A');
      assert.deepEqual(errorsB, [], 'console errors on page B');

    });
  });

  test('offline: both keep typing, and after reconnecting nothing is lost', async () => {
    const doc = 'e2e-offline';
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('offline', pages, async () => {
      const [a, b] = await aliceAndBob(ctxA, ctxB, doc, pages);

      await goOffline(ctxA, a);
      await a.locator('#status[data-state="offline"]').waitFor();

      await Promise.all([typeAtLineEnd(a, 1, ' typed while offline'), typeAtLineEnd(b, 2, ' typed while the other is away')]);
      await a.locator('#status[data-state="offline"]:not([data-pending="0"])').waitFor();
      const status = await a.locator('#status').textContent();
      assert.match(status, /Offline · \d+ edits? waiting/);
      await typeAtLineEnd(a, 1, ', more');

      await ctxA.setOffline(false);
      const final = await converge([a, b]);
      assert.equal(final, 'A: typed while offline, more\nB: typed while the other is away\n');
    });
  });

  test('offline with a reload: the reloaded page keeps its unsent edits and sends them', async () => {
    const doc = 'e2e-reload';
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('reload', pages, async () => {
      const [a, b] = await aliceAndBob(ctxA, ctxB, doc, pages);
      // The service worker keeps the page loadable offline.
      await a.evaluate(() => navigator.serviceWorker.ready.then(() => true));

      await goOffline(ctxA, a);
      await Promise.all([typeAtLineEnd(a, 1, ' before reload'), typeAtLineEnd(b, 2, ' bob one')]);

      await a.reload();
      await a.waitForFunction(() => window.collabd && window.collabd.session && window.collabd.session.pendingEdits > 0);
      assert.equal(await text(a), 'A: before reload\nB:\n');
      await typeAtLineEnd(a, 1, ', after reload');
      await typeAtLineEnd(b, 2, ', bob two');

      await ctxA.setOffline(false);
      const final = await converge([a, b]);
      assert.equal(final, 'A: before reload, after reload\nB: bob one, bob two\n');
    });
  });

  test('offline while more than 1000 ops happen: the unsent edits are rebased, not lost', async () => {
    const doc = 'e2e-far-behind';
    const ctxA = await newContext();
    const pages = [];
    await withShots('far-behind', pages, async () => {
      const a = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a);
      await typeAtLineEnd(a, 1, 'top\n\nbottom');
      await waitOnline(a);
      await goOffline(ctxA, a);
      await typeAtLineEnd(a, 1, ' edited offline');

      // Scripts insert an "x" into the middle line 1050 times, each PUT based
      // on the same revision, so the server transforms them: 1050 revisions.
      const { rev, text: t } = await (await fetch(`${server.url}/api/docs/${doc}`)).json();
      assert.equal(t, 'top\n\nbottom');
      for (let i = 0; i < 1050; i += 50) {
        const batch = Array.from({ length: 50 }, () =>
          fetch(`${server.url}/api/docs/${doc}`, { method: 'PUT', headers: { 'If-Match': String(rev) }, body: 'top\nx\nbottom' }).then((r) => r.status),
        );
        assert.deepEqual(new Set(await Promise.all(batch)), new Set([200]));
      }
      const middle = 'x'.repeat(1050);
      await typeAtLineEnd(a, 3, ', and here');
      await ctxA.setOffline(false);
      await waitOnline(a, 30_000);
      const want = `top edited offline\n${middle}\nbottom, and here`;
      assert.equal(await text(a), want);
      assert.equal(await a.evaluate(() => window.collabd.session.recovered), 1, 'rebased after a join answered with the text');
      const server2 = await (await fetch(`${server.url}/api/docs/${doc}`)).json();
      assert.equal(server2.text, want);
    });
  });

  test('two tabs closed offline, then more than 1000 ops: the next tab rebases and sends both', async () => {
    const doc = 'e2e-far-orphans';
    const ctxA = await newContext();
    const pages = [];
    await withShots('far-orphans', () => pages, async () => {
      const a1 = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a1);
      await typeAtLineEnd(a1, 1, 'one\n\ntwo\n');
      await waitOnline(a1);
      const a2 = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a2);
      await converge([a1, a2]);
      await goOffline(ctxA, a1, a2);
      await typeAtLineEnd(a1, 1, ' (tab one)');
      await typeAtLineEnd(a2, 3, ' (tab two)');
      await saved(a1, '(tab one)');
      await saved(a2, '(tab two)');
      await a1.close();
      await a2.close();
      pages.length = 0;

      const { rev } = await (await fetch(`${server.url}/api/docs/${doc}`)).json();
      for (let i = 0; i < 1050; i += 50) {
        const batch = Array.from({ length: 50 }, () =>
          fetch(`${server.url}/api/docs/${doc}`, { method: 'PUT', headers: { 'If-Match': String(rev) }, body: 'one\nx\ntwo\n' }).then((r) => r.status),
        );
        assert.deepEqual(new Set(await Promise.all(batch)), new Set([200]));
      }
      await ctxA.setOffline(false);
      const c = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(c);
      const want = `one (tab one)\n${'x'.repeat(1050)}\ntwo (tab two)\n`;
      await c.waitForFunction((w) => window.collabd.editor.text() === w, want, { timeout: 30_000 });
      await waitOnline(c);
      const res = await (await fetch(`${server.url}/api/docs/${doc}`)).json();
      assert.equal(res.text, want);
      await waitEntries(c, (list) => list.filter(([k]) => k.includes(`:doc:${doc}:`)).length === 1, 'only the open tab keeps an entry');
    });
  });

  test('a tab closed with unsent edits: the next load of the document sends them once', async () => {
    const doc = 'e2e-orphan';
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('orphan', () => pages, async () => {
      const b = await openDoc(ctxB, server.url, doc, 'Bob');
      pages.push(b);
      await typeAtLineEnd(b, 1, 'start\n');
      await waitOnline(b);
      const a1 = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a1);
      const a2 = await openDoc(ctxA, server.url, doc, 'Alice'); // a second tab
      pages.push(a2);
      await converge([a1, a2, b]);

      await goOffline(ctxA, a1, a2);
      await typeAtLineEnd(a1, 2, 'from tab one');
      await saved(a1, 'from tab one');
      await a1.close();
      await typeAtLineEnd(a2, 1, ' (tab two)');
      await saved(a2, '(tab two)');
      await a2.close();
      pages.length = 0;
      pages.push(b);
      await ctxA.setOffline(false);

      // Two new tabs at once: only one of them may send the closed tabs' edits.
      const [c1, c2] = await Promise.all([openDoc(ctxA, server.url, doc, 'Alice'), openDoc(ctxA, server.url, doc, 'Alice')]);
      pages.push(c1, c2);
      const want = 'start (tab two)\nfrom tab one';
      await b.waitForFunction((w) => window.collabd.editor.text() === w, want, { timeout: 20_000 });
      const final = await converge([b, c1, c2]);
      assert.equal(final, want);
      await waitEntries(c1, (list) => list.filter(([k]) => k.includes(':doc:e2e-orphan:')).length <= 2, 'at most the two open tabs keep an entry');
    });
  });

  test('history: list, diff, restore; the other page sees the restored text', async () => {
    const doc = 'e2e-history';
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('history', pages, async () => {
      const a = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a);
      await typeAtLineEnd(a, 1, 'first version');
      await waitOnline(a);
      const b = await openDoc(ctxB, server.url, doc, 'Bob');
      pages.push(b);
      await typeAtLineEnd(b, 1, '\nsecond line by Bob');
      await converge([a, b]);
      const v1 = await text(a);
      await a.locator('.cm-content').click();
      await a.keyboard.press('Control+a');
      await a.keyboard.type('rewritten');
      await converge([a, b]);

      await a.getByRole('button', { name: 'History' }).click();
      const revs = a.locator('.revs .rev');
      await revs.first().waitFor();
      assert.ok((await revs.count()) >= 3);
      assert.match(await a.locator('.revs').textContent(), /Bob/);

      // The newest revision that still had v1: walk the list from the top.
      const history = await a.evaluate((d) => new Promise((resolve) => window.collabd.session.socket.emit('doc:history', { doc: d }, resolve)), doc);
      let target = null;
      for (const r of history.revs) {
        const t = await a.evaluate(([d, rev]) => new Promise((resolve) => window.collabd.session.socket.emit('doc:revision', { doc: d, rev }, resolve)), [doc, r.rev]);
        if (t.text === v1) {
          target = r.rev;
          break;
        }
      }
      assert.ok(target, 'a revision with the first text');
      await a.locator(`.revs .rev[data-rev="${target}"]`).click();
      await a.locator('.rev-detail pre.diff ins').first().waitFor();
      assert.match(await a.locator('.rev-detail pre.diff del').first().textContent(), /\S/);
      // Bob's edits alone: against the revision before his entry.
      await a.locator('#compare-with').selectOption('before');
      await a.locator('.rev-detail pre.diff ins', { hasText: 'second line by Bob' }).waitFor();
      assert.equal(await a.locator('.rev-detail pre.diff del').count(), 0);
      await a.getByRole('button', { name: 'Full text' }).click();
      await a.locator('.rev-detail pre.rev-text').waitFor();
      assert.equal(await a.locator('.rev-detail pre.rev-text').textContent(), v1);
      await a.getByRole('button', { name: 'Changes' }).click();
      await a.locator('.rev-detail pre.diff').waitFor();

      await a.getByRole('button', { name: 'Restore this version' }).click();
      await a.getByRole('dialog').getByRole('button', { name: 'Restore' }).click();
      await b.waitForFunction((w) => window.collabd.editor.text() === w, v1, { timeout: 15_000 });
      assert.equal(await converge([a, b]), v1);
    });
  });

  test('keyboard only: the history panel opens, selects and closes without a mouse', async () => {
    const ctx = await newContext();
    const pages = [];
    await withShots('keyboard', pages, async () => {
      const a = await openDoc(ctx, server.url, 'e2e-keyboard', 'Kay');
      pages.push(a);
      await a.locator('.cm-content').focus();
      await a.keyboard.type('one two three');
      await waitOnline(a);
      await a.keyboard.press('Shift+Tab'); // out of the editor, back to the header
      assert.equal(await a.evaluate(() => document.activeElement.id), 'history-toggle');
      await a.keyboard.press('Enter');
      await a.locator('#history .revs .rev').first().waitFor();
      assert.ok(await a.evaluate(() => document.getElementById('history').contains(document.activeElement)), 'focus moved into the panel');
      for (let i = 0; i < 5 && !(await a.evaluate(() => document.activeElement.classList.contains('rev'))); i++) await a.keyboard.press('Tab');
      assert.ok(await a.evaluate(() => document.activeElement.classList.contains('rev')), 'a revision is reachable by Tab');
      await a.keyboard.press('Enter');
      await a.locator('.rev-detail h3').waitFor();
      await a.locator('.rev-detail .rev-body:not([aria-busy])').waitFor();
      await a.keyboard.press('Escape');
      await a.locator('#history').waitFor({ state: 'hidden' });
      assert.equal(await a.evaluate(() => document.activeElement.id), 'history-toggle');
      // Focus is visible on buttons reached by keyboard.
      const outline = await a.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      assert.notEqual(outline, 'none');
    });
  });

  test('the server restarts mid-session: pages reconnect and continue', async () => {
    const doc = 'e2e-restart';
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('restart', pages, async () => {
      const [a, b] = await aliceAndBob(ctxA, ctxB, doc, pages);

      await server.stop();
      await a.locator('#status:not([data-state="online"])').waitFor();
      await b.locator('#status:not([data-state="online"])').waitFor();
      await typeAtLineEnd(a, 1, ' during the restart');
      await typeAtLineEnd(b, 2, ' me too');
      server = await startServer(built.bin, data, server.addr);

      const final = await converge([a, b]);
      assert.equal(final, 'A: during the restart\nB: me too\n');
      await typeAtLineEnd(b, 2, ', and after');
      assert.equal(await converge([a, b]), 'A: during the restart\nB: me too, and after\n');
    });
  });

  test('a document deleted over the API while open: the page starts over with the empty document', async () => {
    const doc = 'e2e-deleted';
    const ctx = await newContext();
    const pages = [];
    await withShots('deleted', pages, async () => {
      const a = await openDoc(ctx, server.url, doc, 'Alice');
      pages.push(a);
      await typeAtLineEnd(a, 1, 'soon gone');
      await waitOnline(a);
      const res = await fetch(`${server.url}/api/docs/${doc}`, { method: 'DELETE' });
      assert.equal(res.status, 204);
      await a.waitForFunction(() => window.collabd.editor.text() === '', null, { timeout: 20_000 });
      await waitOnline(a);
      await typeAtLineEnd(a, 1, 'new life');
      await waitOnline(a);
      const after = await (await fetch(`${server.url}/api/docs/${doc}`)).json();
      assert.equal(after.text, 'new life');
    });
  });

  test('three pages type at random places while connections drop at random: nothing lost', async () => {
    const doc = 'e2e-random';
    const rnd = (() => {
      let x = 20261126;
      return (n) => {
        x = (x * 1103515245 + 12345) % 2147483648;
        return x % n;
      };
    })();
    const contexts = [await newContext(), await newContext(), await newContext()];
    const pages = [];
    await withShots('random', pages, async () => {
      for (const [i, c] of contexts.entries()) pages.push(await openDoc(c, server.url, doc, `P${i}`));
      const offline = [false, false, false];
      const typed = [];
      for (let round = 0; round < 8; round++) {
        const i = rnd(3);
        if (rnd(3) === 0) {
          offline[i] = !offline[i];
          await contexts[i].setOffline(offline[i]);
          if (offline[i]) await dropTransport(pages[i]);
        }
        await Promise.all(
          pages.map(async (p, k) => {
            const word = `${'abc'[k]}${round}${'xyz'[rnd(3)]}😀`;
            typed.push(word);
            await p.locator('.cm-content').click();
            await p.keyboard.press(rnd(2) ? 'Control+End' : 'Control+Home');
            for (let m = rnd(4); m > 0; m--) await p.keyboard.press('ArrowRight');
            await p.keyboard.type(word, { delay: 10 });
          }),
        );
      }
      for (const [i, c] of contexts.entries()) if (offline[i]) await c.setOffline(false);
      const final = await converge(pages, 45_000);
      const count = (str) => [...str].sort().join('');
      assert.equal(count(final), count(typed.join('')), 'every typed character is there once');
    });
  });

  test('home page lists documents and creates a new one', async () => {
    const ctx = await newContext({ viewport: { width: 390, height: 800 } });
    const page = await ctx.newPage();
    const errors = watchConsole(page);
    await withShots('home', [page], async () => {
      // A document written over the HTTP API shows up in the list.
      const put = await fetch(`${server.url}/api/docs/e2e-home`, { method: 'PUT', headers: { 'If-Match': '0', 'Content-Type': 'text/plain' }, body: 'made by a script' });
      assert.equal(put.status, 200);
      await page.goto(server.url + '/');
      await page.locator('.doc-list a', { hasText: 'e2e-home' }).waitFor();
      assert.equal(await page.title(), 'Documents · collabd');
      const id = await page.locator('#new-id').inputValue();
      assert.match(id, /^[a-z]+-[a-z]+-\d{3}$/);
      await page.getByRole('button', { name: 'Create' }).click();
      await page.waitForURL(`**/d/${id}`);
      await waitOnline(page);
      // Phone width: nothing wider than the screen.
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(wide <= 390, `page is ${wide}px wide at 390px`);
      assert.deepEqual(errors, []);
    });
  });

  // The README's images. A plain run writes them to test-results/readme (so
  // the checkout stays clean); SCREENSHOTS=1 npm run test:e2e rewrites
  // docs/img.
  test('screenshots for the README', async () => {
    const imgDir = process.env.SCREENSHOTS ? join(repoRoot, 'docs', 'img') : join(repoRoot, 'frontend', 'test-results', 'readme');
    const doc = 'team-notes';
    const ctxA = await newContext({ viewport: { width: 1200, height: 700 } });
    const ctxB = await newContext();
    const pages = [];
    await withShots('screenshots', pages, async () => {
      const a = await openDoc(ctxA, server.url, doc, 'Alice', '#1a73e8');
      pages.push(a);
      await a.locator('.cm-content').click();
      // insertText: typed Enter keys would continue the Markdown list.
      await a.keyboard.insertText('# Weekly sync\n\nAgenda\n- Release 1.2: ship on Friday\n- Offline editing: done\n- History panel: review\n\nNotes\n');
      await waitOnline(a);
      const b = await openDoc(ctxB, server.url, doc, 'Bob', '#e37400');
      pages.push(b);
      await typeAtLineEnd(b, 9, 'Bob: the restore button needs a confirmation', 0);
      await typeAtLineEnd(b, 4, ' (tag at noon)', 0);
      await b.keyboard.press('Shift+Home');
      await converge([a, b]);
      await typeAtLineEnd(a, 6, ', then demo', 0);
      await converge([a, b]);
      await a.locator('.cm-remote-caret', { hasText: 'Bob' }).waitFor();
      mkdirSync(imgDir, { recursive: true });
      await a.screenshot({ path: join(imgDir, 'editor.png') });

      // A named version of the first revision, for the picture.
      await a.evaluate(() => window.collabd.session.request('doc:version:create', { name: 'First draft', rev: 1 }));
      await a.getByRole('button', { name: 'History' }).click();
      await a.locator('.revs .rev').first().waitFor();
      await a.locator('.versions .version', { hasText: 'First draft' }).waitFor();
      // Bob's entry, compared with the version before it: his changes.
      await a.locator('.revs .rev', { hasText: 'Bob' }).first().click();
      await a.locator('#compare-with').selectOption('before');
      await a.locator('.rev-detail pre.diff ins').first().waitFor();
      await a.locator('.revs .rev', { hasText: 'Bob' }).first().focus();
      await a.screenshot({ path: join(imgDir, 'history.png') });
      for (const name of ['editor.png', 'history.png']) {
        assert.ok(statSync(join(imgDir, name)).size > 10000, `${name} looks empty`);
      }
    });
  });
});

describe('editor with tokens (auth on)', { skip, concurrency: false }, () => {
  const SECRET = 'e2e-secret-0123456789abcdef';
  let browser;
  let server;
  let data;

  before(async () => {
    data = tempDir('collabd-e2e-auth-');
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

  test('an editor and a viewer: names from the tokens, the viewer cannot type, no token is refused', async () => {
    const doc = 'auth-notes';
    const ann = mint('--user', 'ann', '--edit', 'auth-*');
    const vic = mint('--user', 'vic', '--view', 'auth-*');
    const pages = [];
    await withShots('auth', pages, async () => {
      const a = await (await browser.newContext()).newPage();
      pages.push(a);
      await a.goto(`${server.url}/d/${doc}#token=${ann}`);
      await waitOnline(a);
      assert.equal(new URL(a.url()).hash, '', 'the token left the address bar');
      await a.locator('#members .self', { hasText: 'ann (you)' }).waitFor();
      await typeAtLineEnd(a, 1, 'written by ann');
      await waitOnline(a);

      const v = await (await browser.newContext()).newPage();
      pages.push(v);
      await v.goto(`${server.url}/d/${doc}#token=${vic}`);
      await waitOnline(v);
      assert.equal(await text(v), 'written by ann');
      assert.match(await v.locator('#status').textContent(), /view only/);
      assert.equal(await v.locator('.cm-content').getAttribute('contenteditable'), 'false');
      assert.ok(await v.locator('#import').isDisabled(), 'a viewer cannot import');
      assert.ok(await a.locator('#import').isEnabled());
      await v.locator('.cm-content').click();
      await v.keyboard.type('nope');
      assert.equal(await text(v), 'written by ann');
      await a.locator('#members .member:not(.self)', { hasText: 'vic' }).waitFor();
      await typeAtLineEnd(a, 1, ', still');
      await v.waitForFunction(() => window.collabd.editor.text() === 'written by ann, still');

      const n = await (await browser.newContext()).newPage();
      pages.push(n);
      await n.goto(`${server.url}/d/${doc}`);
      await n.locator('#banner', { hasText: 'Not authorized' }).waitFor();
    });
  });
});
