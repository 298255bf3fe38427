// Browser tests of what a document looks like and does (issue 15): it opens
// at once under a generated name, its mode follows the id's extension,
// Markdown previews are sanitized, export and import, and undo with others
// around. A real collabd built from cmd/collabd, Debian's chromium.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';

import { buildServer, converge, entries, goOffline, launch, waitEntries, openDoc, rename, startServer, tempDir, text, typeAtLineEnd, waitOnline, watchConsole, withShots } from './harness.js';

const built = buildServer();
const skip = built.error ? `collabd cannot be built (go build ./cmd/collabd): ${built.error.split('\n')[0]}` : false;
if (skip) console.log(`# SKIP browser tests: ${skip}`);
else after(() => rmSync(built.dir, { recursive: true, force: true }));

describe('documents in the browser', { skip, concurrency: false }, () => {
  /** @type {import('playwright-core').Browser} */
  let browser;
  let server;
  let data;
  const contexts = [];

  before(async () => {
    data = tempDir('collabd-e2e-docs-');
    server = await startServer(built.bin, data);
    browser = await launch();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (browser) await browser.close();
    if (server) await server.stop();
    rmSync(data, { recursive: true, force: true });
  });

  async function newContext(opts = {}) {
    const c = await browser.newContext({ viewport: { width: 1200, height: 760 }, ...opts });
    contexts.push(c);
    return c;
  }

  async function getDoc(doc) {
    const res = await fetch(`${server.url}/api/docs/${doc}`);
    assert.equal(res.status, 200);
    return res.json();
  }

  test('first visit: the document shows and takes keystrokes before any name is given', async () => {
    const doc = 'e2e-first-visit';
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('first-visit', pages, async () => {
      const b = await openDoc(ctxB, server.url, doc, 'Bob');
      pages.push(b);
      const a = await ctxA.newPage(); // a fresh profile: nothing stored
      pages.push(a);
      const errors = watchConsole(a);
      await a.goto(`${server.url}/d/${doc}`);
      // No dialog, the text area is editable right away.
      await a.locator('.cm-content[contenteditable="true"]').waitFor({ timeout: 5000 });
      assert.equal(await a.locator('dialog').count(), 0, 'a dialog is open on the first visit');
      await a.locator('.cm-content').click();
      await a.keyboard.type('typed at once');
      await b.waitForFunction(() => window.collabd.editor.text() === 'typed at once');
      // A generated name and colour, shown as ours and to the others.
      const self = (await a.locator('#members .self .name').textContent()).trim();
      const m = /^([A-Z][a-z]+ [A-Z][a-z]+) \(you\)$/.exec(self);
      assert.ok(m, `generated name: ${self}`);
      await b.locator('#members .member:not(.self)', { hasText: m[1] }).waitFor();
      // The name and colour stay for the next visit...
      await a.reload();
      await waitOnline(a);
      assert.equal((await a.locator('#members .self .name').textContent()).trim(), self);
      // ...and change from the member list at any time.
      await rename(a, 'Dana', '#188038');
      await b.locator('#members .member:not(.self)', { hasText: 'Dana' }).waitFor();
      assert.equal(await b.locator('#members .member:not(.self)', { hasText: 'Dana' }).evaluate((el) => el.style.getPropertyValue('--c')), '#188038');
      assert.deepEqual(errors, []);
    });
  });
  test('a .md document: the preview follows remote edits; narrow screens show it instead of the text', async () => {
    const doc = 'e2e-notes.md';
    const ctxA = await newContext();
    const ctxB = await newContext({ viewport: { width: 390, height: 800 } });
    const pages = [];
    await withShots('preview', pages, async () => {
      const a = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a);
      const b = await openDoc(ctxB, server.url, doc, 'Bob');
      pages.push(b);
      assert.equal(await a.locator('#mode').getAttribute('data-mode'), 'markdown');
      // Wide: the preview is on beside the text. Narrow: off, the text shows.
      await a.locator('#preview').waitFor();
      assert.equal(await a.locator('#preview-toggle').getAttribute('aria-pressed'), 'true');
      assert.ok(await a.locator('.cm-editor').isVisible());
      assert.ok(await b.locator('#preview').isHidden());
      await b.locator('.cm-content').click();
      await b.keyboard.insertText('# Minutes\n\nWe **agreed** on:\n\n- ship it\n');
      await a.locator('#preview h1', { hasText: 'Minutes' }).waitFor();
      await a.locator('#preview strong', { hasText: 'agreed' }).waitFor();
      await a.locator('#preview li', { hasText: 'ship it' }).waitFor();
      // The Markdown language is on: a heading line has a highlight class.
      await b.locator('.cm-line span[class]', { hasText: 'Minutes' }).first().waitFor();
      await b.keyboard.press('Control+End');
      await b.keyboard.insertText('- and a second item\n');
      await a.locator('#preview li', { hasText: 'and a second item' }).waitFor();
      // On the phone the preview replaces the text while it is on.
      await b.locator('#preview-toggle').click();
      await b.locator('#preview h1', { hasText: 'Minutes' }).waitFor();
      assert.ok(await b.locator('.cm-editor').isHidden(), 'the text is hidden behind the preview on a narrow screen');
      const wide = await b.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(wide <= 390, `page is ${wide}px wide at 390px`);
      await b.locator('#preview-toggle').click();
      await b.locator('.cm-editor').waitFor();
    });
  });

  test('script written by one page never runs in the other page\'s preview', async () => {
    const doc = 'e2e-xss';
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('xss', pages, async () => {
      const a = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a);
      const b = await openDoc(ctxB, server.url, doc, 'Mallory');
      pages.push(b);
      const dialogs = [];
      a.on('dialog', (d) => {
        dialogs.push(d.message());
        d.dismiss().catch(() => {});
      });
      const payloads = [
        '<img src=x onerror="window.pwned=1;alert(1)">',
        '<script>window.pwned=2;alert(2)</script>',
        '[click me](javascript:window.pwned=3;alert(3))',
        '<a href="javascript:window.pwned=4">link</a>',
        '<a href="JaVaScRiPt:window.pwned=5">link2</a>',
        '<svg onload="window.pwned=6;alert(6)"><circle r=1 /></svg>',
        '<iframe srcdoc="<script>parent.pwned=7;parent.alert(7)</script>"></iframe>',
        '<details open ontoggle="window.pwned=8">x</details>',
        '<object data="javascript:window.pwned=9"></object>',
        '<form action="javascript:window.pwned=10"><button>go</button></form>',
        '<math><mtext><table><mglyph><style><img src=x onerror="window.pwned=11"></style></mglyph></table></mtext></math>',
        '![img](x" onerror="window.pwned=12)',
        'end of payloads',
      ];
      await b.locator('.cm-content').click();
      for (const p of payloads) {
        await b.keyboard.insertText(p);
        await b.keyboard.press('Enter');
        await b.keyboard.press('Enter');
      }
      await converge([a, b]);
      await a.locator('#preview p', { hasText: 'end of payloads' }).waitFor();
      // Click every link the preview kept.
      for (const link of await a.locator('#preview a').all()) await link.click({ force: true, modifiers: [] }).catch(() => {});
      await a.waitForTimeout(500);
      assert.equal(await a.evaluate(() => window.pwned), undefined, 'a payload ran');
      assert.deepEqual(dialogs, [], 'a payload opened a dialog');
      // What the sanitizer left: nothing that runs.
      const bad = await a.evaluate(() => {
        const out = [];
        for (const el of document.querySelectorAll('#preview *')) {
          if (/^(SCRIPT|IFRAME|OBJECT|EMBED|SVG|MATH|FORM|STYLE)$/i.test(el.tagName)) out.push(el.tagName);
          for (const at of el.attributes) {
            if (/^on/i.test(at.name) || at.name === 'srcdoc' || /^\s*javascript:/i.test(at.value)) out.push(`${el.tagName} ${at.name}=${at.value}`);
          }
        }
        return out;
      });
      assert.deepEqual(bad, []);
      assert.equal(await b.evaluate(() => window.pwned), undefined, 'a payload ran in its author\'s page');
    });
  });

  test('a .go document is highlighted as Go; only its own language is loaded', async () => {
    const doc = 'e2e-main.go';
    const ctx = await newContext();
    const pages = [];
    await withShots('go', pages, async () => {
      const a = await openDoc(ctx, server.url, doc, 'Gopher');
      pages.push(a);
      assert.equal(await a.locator('#mode').getAttribute('data-mode'), 'go');
      assert.equal(await a.locator('#preview-toggle').count(), 0, 'a code document has no preview');
      await a.locator('.cm-content').click();
      await a.keyboard.insertText('package main\n\nfunc main() {\n\treturn\n}\n');
      const kw = a.locator('.cm-line span[class]', { hasText: /^func$/ });
      await kw.first().waitFor();
      assert.ok(await a.locator('.cm-lineNumbers').isVisible(), 'line numbers');
      const loaded = await a.evaluate(() => performance.getEntriesByType('resource').map((r) => new URL(r.name).pathname).filter((p) => p.startsWith('/chunks/')));
      assert.ok(loaded.some((p) => /\/go-[\w]+\.js$/.test(p)), `the Go chunk was loaded: ${loaded}`);
      assert.ok(!loaded.some((p) => /markdown|python/.test(p)), `other languages were loaded: ${loaded}`);
    });
  });

  test('search and replace, line numbers and the shortcut list', async () => {
    const doc = 'e2e-search.txt';
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('search', pages, async () => {
      const a = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a);
      const b = await openDoc(ctxB, server.url, doc, 'Bob');
      pages.push(b);
      assert.equal(await a.locator('#mode').getAttribute('data-mode'), 'text');
      await a.locator('.cm-content').click();
      await a.keyboard.insertText('cat and cat\nanother cat\n');
      await a.keyboard.press('Control+f');
      const search = a.locator('.cm-search input[name="search"]');
      await search.waitFor();
      await search.fill('cat');
      await a.locator('.cm-search input[name="replace"]').fill('dog');
      await a.locator('.cm-search button[name="replaceAll"]').click();
      assert.equal(await text(a), 'dog and dog\nanother dog\n');
      await b.waitForFunction(() => window.collabd.editor.text() === 'dog and dog\nanother dog\n');
      await a.keyboard.press('Escape');
      assert.equal(await a.locator('.cm-lineNumbers .cm-gutterElement', { hasText: /^3$/ }).count(), 1);
      // "?" outside the text lists the shortcuts; inside the text it types.
      await a.locator('#export').focus();
      await a.keyboard.press('?');
      const dlg = a.locator('dialog', { hasText: 'Keyboard shortcuts' });
      await dlg.waitFor();
      assert.ok((await dlg.textContent()).includes('Search and replace'));
      await a.keyboard.press('Escape');
      await dlg.waitFor({ state: 'detached' });
      await typeAtLineEnd(a, 1, '?', 0);
      assert.equal(await text(a), 'dog and dog?\nanother dog\n');
      assert.equal(await a.locator('dialog').count(), 0);
    });
  });
  // downloaded clicks what opens a download and returns {name, text}.
  async function downloaded(page, click) {
    const [dl] = await Promise.all([page.waitForEvent('download'), click()]);
    return { name: dl.suggestedFilename(), text: readFileSync(await dl.path(), 'utf8') };
  }

  test('export: the text under the document\'s name, now and at a revision from the history', async () => {
    const doc = 'e2e-export';
    const ctx = await newContext();
    const pages = [];
    await withShots('export', pages, async () => {
      const a = await openDoc(ctx, server.url, doc, 'Alice');
      pages.push(a);
      await a.locator('.cm-content').click();
      await a.keyboard.insertText('first line 😀\n');
      await waitOnline(a);
      const old = await getDoc(doc);
      await a.keyboard.insertText('second line 漢字\n');
      await waitOnline(a);
      const now = await getDoc(doc);
      const got = await downloaded(a, () => a.locator('#export').click());
      assert.equal(got.name, 'e2e-export.md');
      assert.equal(got.text, now.text);
      // An older revision, from the history panel.
      await a.locator('#history-toggle').click();
      await a.locator('.revs .rev').first().waitFor();
      await a.locator('.revs .rev').first().click();
      await a.locator('.rev-detail .download').waitFor();
      const cur = await downloaded(a, () => a.locator('.rev-detail .download').click());
      assert.equal(cur.text, now.text);
      assert.equal(cur.name, `e2e-export@${now.rev}.md`);
      const res = await fetch(`${server.url}/api/docs/${doc}/revisions/${old.rev}`);
      assert.equal(res.status, 200);
      const oldText = (await res.json()).text;
      assert.equal(oldText, old.text);
      const viaSession = await a.evaluate((rev) => window.collabd.session.request('doc:revision', { rev }).then((r) => r.text), old.rev);
      assert.equal(viaSession, oldText);
    });
  });

  test('import: a file replaces the text in one revision, keeps the other page\'s cursor, and converges while it types', async () => {
    const doc = 'e2e-import.md';
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('import', pages, async () => {
      const a = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a);
      await a.locator('.cm-content').click();
      await a.keyboard.insertText('intro\nkeep me\nold tail\n');
      await waitOnline(a);
      const b = await openDoc(ctxB, server.url, doc, 'Bob');
      pages.push(b);
      await typeAtLineEnd(b, 2, '', 0); // Bob's cursor: after "keep me"
      const before = await getDoc(doc);

      const file = { name: 'new.md', mimeType: 'text/markdown', buffer: Buffer.from('new intro\r\nkeep me\r\nnew tail\r\n') };
      // Cancel first: nothing happens.
      await a.locator('#import-file').setInputFiles(file);
      await a.locator('dialog', { hasText: 'Replace the text with new.md' }).getByRole('button', { name: 'Cancel' }).click();
      assert.equal((await getDoc(doc)).rev, before.rev);
      // Then replace.
      await a.locator('#import-file').setInputFiles(file);
      await a.locator('dialog', { hasText: 'Replace the text with new.md' }).getByRole('button', { name: 'Replace' }).click();
      await a.locator('#notice', { hasText: 'Imported new.md' }).waitFor();
      const after = await getDoc(doc);
      assert.equal(after.rev, before.rev + 1, 'one revision');
      assert.equal(after.text, 'new intro\nkeep me\nnew tail\n');
      assert.equal(await converge([a, b]), after.text);
      // Bob's cursor stayed after "keep me": what he types lands there.
      await b.keyboard.type('!', { delay: 0 });
      await converge([a, b]);
      assert.equal(await text(a), 'new intro\nkeep me!\nnew tail\n');

      // An import while the other page types: both agree, and every
      // keystroke the import's base revision did not hold survives (the
      // ones it held were part of the replaced text).
      let base = null;
      a.on('request', (r) => {
        if (r.method() === 'PUT') base = Number(r.headers()['if-match']);
      });
      const typing = (async () => {
        await typeAtLineEnd(b, 2, '', 0);
        await b.keyboard.type('ZZZZZZZZZZZZ', { delay: 40 });
      })();
      await a.waitForTimeout(200);
      await a.locator('#import-file').setInputFiles({ name: 'third.md', mimeType: 'text/markdown', buffer: Buffer.from('# Third\nkeep me!\nthe end\n') });
      await a.locator('dialog').getByRole('button', { name: 'Replace' }).click();
      await typing;
      const final = await converge([a, b]);
      assert.ok(Number.isInteger(base), 'the import was a PUT with If-Match');
      const atBase = (await (await fetch(`${server.url}/api/docs/${doc}/revisions/${base}`)).json()).text;
      const seen = [...atBase].filter((c) => c === 'Z').length;
      assert.ok(seen < 12, 'the import happened while Bob was typing');
      assert.equal([...final].filter((c) => c === 'Z').length, 12 - seen, `base #${base} ${JSON.stringify(atBase)}, final ${JSON.stringify(final)}`);
      assert.equal(final.replace(/Z/g, ''), '# Third\nkeep me!\nthe end\n');
      assert.equal((await getDoc(doc)).text, final);
    });
  });

  test('a file dropped on the text asks, then replaces it (not inserted at the drop point)', async () => {
    const doc = 'e2e-drop.md';
    const ctx = await newContext();
    const pages = [];
    await withShots('drop', pages, async () => {
      const a = await openDoc(ctx, server.url, doc, 'Alice');
      pages.push(a);
      await a.locator('.cm-content').click();
      await a.keyboard.insertText('before drop\n');
      await waitOnline(a);
      const dt = await a.evaluateHandle(() => {
        const d = new DataTransfer();
        d.items.add(new File(['dropped text\n'], 'dropped.md', { type: 'text/markdown' }));
        return d;
      });
      await a.locator('.cm-content').dispatchEvent('drop', { dataTransfer: dt });
      await a.locator('dialog', { hasText: 'Replace the text with dropped.md' }).getByRole('button', { name: 'Replace' }).click();
      await a.locator('#notice', { hasText: 'Imported dropped.md' }).waitFor();
      await converge([a]);
      assert.equal(await text(a), 'dropped text\n');
    });
  });
  test('unsent edits live in IndexedDB; an older version\'s localStorage entry is taken over once', async () => {
    const doc = 'e2e-idb';
    const put = await fetch(`${server.url}/api/docs/${doc}`, { method: 'PUT', headers: { 'If-Match': '0' }, body: 'base\n' });
    assert.equal(put.status, 200);
    const { rev } = await getDoc(doc);
    const client = 'legacy0000000000000000aa';
    // What the localStorage version saved for a tab closed with an unsent edit.
    const legacy = {
      doc,
      client,
      state: { v: 1, client, rev, seq: 1, pending: { seq: 1, op: [4, ' from an old version'], sent: false }, buffer: null },
      text: 'base from an old version\n',
      edits: 1,
      saved: Date.now(),
    };
    const ctx = await newContext();
    const pages = [];
    await withShots('idb', pages, async () => {
      const a = await ctx.newPage();
      pages.push(a);
      await a.addInitScript(
        ([key, value]) => {
          if (!localStorage.getItem('planted')) {
            localStorage.setItem('planted', '1');
            localStorage.setItem('collabd:user', JSON.stringify({ name: 'Ivy', color: '#188038' }));
            localStorage.setItem(key, value);
          }
        },
        [`collabd:v1:doc:${doc}:${client}`, JSON.stringify(legacy)],
      );
      await a.goto(`${server.url}/d/${doc}`);
      await waitOnline(a);
      // The closed tab's edit was adopted and sent once.
      assert.equal(await text(a), 'base from an old version\n');
      assert.equal((await getDoc(doc)).text, 'base from an old version\n');
      assert.equal(await a.evaluate(() => window.collabd.session.client.client), client, 'the entry was adopted');
      assert.deepEqual(await a.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('collabd:v1:doc:'))), [], 'localStorage keeps no entry');
      await waitEntries(a, (list) => list.some(([k]) => k === `collabd:v1:doc:${doc}:${client}`), 'the entry in IndexedDB');

      // Offline edits are saved to IndexedDB and survive a reload (the
      // service worker keeps the page loadable).
      await a.evaluate(() => navigator.serviceWorker.ready.then(() => true));
      await goOffline(ctx, a);
      await typeAtLineEnd(a, 1, ' +offline', 0);
      await waitEntries(a, (list) => list.some(([k, v]) => k.startsWith('collabd:v1:') && JSON.stringify(v).includes('+offline') && v.state.pending), 'the offline edit saved');
      assert.deepEqual(await a.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('collabd:v1:doc:'))), []);
      await a.reload();
      await a.waitForFunction(() => window.collabd && window.collabd.editor && window.collabd.editor.text().includes('+offline'));
      await ctx.setOffline(false);
      await waitOnline(a);
      assert.equal((await getDoc(doc)).text, 'base from an old version +offline\n');
    });
  });

  test('a large document with unsent edits: saves write only the edits, not the text', async () => {
    const doc = 'e2e-big.txt';
    const line = 'collabd edits together offline 漢字 😀 naïve résumé and more words\n';
    const big = line.repeat(Math.ceil((1 << 20) / Buffer.byteLength(line)));
    const put = await fetch(`${server.url}/api/docs/${doc}`, { method: 'PUT', headers: { 'If-Match': '0' }, body: big });
    assert.equal(put.status, 200);
    const ctx = await newContext();
    const pages = [];
    await withShots('idb-big', pages, async () => {
      const a = await openDoc(ctx, server.url, doc, 'Bea');
      pages.push(a);
      await a.evaluate(() => navigator.serviceWorker.ready.then(() => true));
      await goOffline(ctx, a);
      await typeAtLineEnd(a, 1, 'x', 0);
      // The main thread's time of a save (session.lastSaveMs: building the
      // entry and handing it to IndexedDB, which copies it synchronously): a
      // full write (the text), then a save after one more keystroke (the
      // edits only), five times; localStorage's way (the whole entry as
      // JSON) for reference.
      const r = await a.evaluate(async () => {
        const s = window.collabd.session;
        const frame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
        const median = (xs) => xs.sort((p, q) => p - q)[Math.floor(xs.length / 2)];
        const full = [];
        const delta = [];
        const ls = [];
        const before = { ...s.saveCounts };
        for (let i = 0; i < 5; i++) {
          await frame();
          s.deltaBase = null; // the next save writes the text
          s.saveNow();
          full.push(s.lastSaveMs);
          s.editor.view.dispatch({ changes: { from: 0, insert: 'y' } }); // a keystroke
          await frame();
          s.saveNow();
          delta.push(s.lastSaveMs);
          const t0 = performance.now();
          const entry = { doc: s.doc, client: s.client.client, state: s.client.toJSON(), text: s.editor.text(), edits: s.edits, saved: Date.now() };
          localStorage.setItem('collabd:bench', JSON.stringify(entry));
          ls.push(performance.now() - t0);
        }
        localStorage.removeItem('collabd:bench');
        return { full: median(full), delta: median(delta), ls: median(ls), fulls: s.saveCounts.full - before.full, deltas: s.saveCounts.delta - before.delta };
      });
      console.log(`# saving unsent edits of a 1 MiB text blocks the page: ${r.delta.toFixed(1)} ms (edits only), ${r.full.toFixed(1)} ms (full, IndexedDB), ${r.ls.toFixed(1)} ms (full, localStorage); medians of 5`);
      assert.equal(r.fulls, 5);
      assert.equal(r.deltas, 5);
      assert.ok(r.delta < r.full / 3, `a delta save blocks ${r.delta} ms, a full one ${r.full} ms`);
      const list = await waitEntries(a, (l) => l.some(([k, v]) => k.includes(`:delta:${doc}:`) && v.delta.length > 0), 'a delta record');
      assert.ok(list.some(([k, v]) => k.includes(`:doc:${doc}:`) && v.text.length > 500000 && v.state.pending), 'the big entry is in IndexedDB');
      assert.ok(await a.evaluate(() => Object.keys(localStorage).every((k) => !k.startsWith('collabd:v1:'))), 'nothing in localStorage');
      // A reload while offline restores the text from the entry plus the delta.
      const want = await text(a);
      const t0 = await a.evaluate(() => {
        const t = Date.now();
        window.collabd.session.saveNow();
        return t;
      });
      await waitEntries(a, (l) => l.some(([k, v]) => k.includes(`:delta:${doc}:`) && v.saved >= t0), 'the last delta saved');
      await a.reload();
      await a.waitForFunction((n) => window.collabd && window.collabd.editor && window.collabd.editor.text().length === n, want.length);
      assert.equal(await text(a), want);
      await ctx.setOffline(false);
      await waitOnline(a, 30_000);
      assert.equal((await getDoc(doc)).text, want);
    });
  });
  // Undo is per person (CodeMirror's history holds only this page's own
  // changes; remote ones map it). The overlapping cases:

  async function putText(doc, body) {
    const cur = await fetch(`${server.url}/api/docs/${doc}`);
    const rev = cur.status === 200 ? (await cur.json()).rev : 0;
    const res = await fetch(`${server.url}/api/docs/${doc}`, { method: 'PUT', headers: { 'If-Match': String(rev) }, body });
    assert.equal(res.status, 200);
  }

  test('undo: my deletion of a paragraph someone edited meanwhile comes back whole, their edit stays', async () => {
    const doc = 'e2e-undo-paragraph.txt';
    await putText(doc, 'keep\nPARAGRAPH one two three\nend\n');
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('undo-paragraph', pages, async () => {
      const a = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a);
      const b = await openDoc(ctxB, server.url, doc, 'Bob');
      pages.push(b);
      // Bob edits inside the paragraph while he cannot see Alice delete it.
      await goOffline(ctxB, b);
      await b.locator('.cm-content').click();
      await b.keyboard.press('Control+Home');
      await b.keyboard.press('ArrowDown');
      await b.keyboard.press('Home');
      for (let i = 0; i < 'PARAGRAPH one'.length; i++) await b.keyboard.press('ArrowRight');
      await b.keyboard.type(' (bob)', { delay: 0 });
      // Alice deletes the whole paragraph (line 2).
      await a.locator('.cm-content').click();
      await a.keyboard.press('Control+Home');
      await a.keyboard.press('ArrowDown');
      await a.keyboard.press('Home');
      await a.keyboard.press('Shift+ArrowDown');
      await a.keyboard.press('Delete');
      await waitOnline(a);
      await ctxB.setOffline(false);
      const merged = await converge([a, b]);
      assert.equal(merged, 'keep\n (bob)end\n', 'Bob\'s insert survives the deletion');
      // Alice undoes her deletion: the paragraph as she deleted it, beside Bob's text.
      await a.keyboard.press('Control+z');
      const undone = await converge([a, b]);
      assert.ok(['keep\nPARAGRAPH one two three\n (bob)end\n', 'keep\n (bob)PARAGRAPH one two three\nend\n'].includes(undone), JSON.stringify(undone));
      assert.equal((await getDoc(doc)).text, undone);
      // Redo deletes the paragraph again, still not Bob's text.
      await a.keyboard.press('Control+Shift+z');
      assert.equal(await converge([a, b]), 'keep\n (bob)end\n');
    });
  });

  test('undo right after a rejoin that rebased my pending edits removes only mine', async () => {
    const doc = 'e2e-undo-rejoin.txt';
    await putText(doc, 'line one\nline two\n');
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('undo-rejoin', pages, async () => {
      const a = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a);
      const b = await openDoc(ctxB, server.url, doc, 'Bob');
      pages.push(b);
      await goOffline(ctxA, a);
      await typeAtLineEnd(a, 1, ' (mine)', 0);
      // Meanwhile Bob edits before and after Alice's place.
      await b.locator('.cm-content').click();
      await b.keyboard.press('Control+Home');
      await b.keyboard.type('B: ', { delay: 0 });
      await typeAtLineEnd(b, 2, ' (bob)', 0);
      await waitOnline(b);
      // Alice rejoins: her pending edit is rebased over Bob's and sent.
      await ctxA.setOffline(false);
      assert.equal(await converge([a, b]), 'B: line one (mine)\nline two (bob)\n');
      // Her undo right away removes her edit, at its rebased place, and nothing of Bob's.
      await a.locator('.cm-content').focus();
      await a.keyboard.press('Control+z');
      assert.equal(await converge([a, b]), 'B: line one\nline two (bob)\n');
      await a.keyboard.press('Control+Shift+z');
      assert.equal(await converge([a, b]), 'B: line one (mine)\nline two (bob)\n');
    });
  });

  test('undo after an offline period: local edits undo offline, and earlier ones after reconnecting', async () => {
    const doc = 'e2e-undo-offline.txt';
    const ctxA = await newContext();
    const ctxB = await newContext();
    const pages = [];
    await withShots('undo-offline', pages, async () => {
      const a = await openDoc(ctxA, server.url, doc, 'Alice');
      pages.push(a);
      const b = await openDoc(ctxB, server.url, doc, 'Bob');
      pages.push(b);
      await typeAtLineEnd(a, 1, 'first', 0);
      await converge([a, b]);
      await a.waitForTimeout(600); // a new undo group
      await goOffline(ctxA, a);
      await typeAtLineEnd(a, 1, ' second', 0);
      await a.waitForTimeout(600);
      await b.locator('.cm-content').click(); // Bob, while Alice is away, at the start
      await b.keyboard.press('Control+Home');
      await b.keyboard.type('>> ', { delay: 0 });
      await waitOnline(b);
      // Offline, Alice undoes " second": it never reaches the server.
      await a.locator('.cm-content').focus();
      await a.keyboard.press('Control+z');
      assert.equal(await text(a), 'first');
      await ctxA.setOffline(false);
      assert.equal(await converge([a, b]), '>> first');
      // Back online, the next undo takes back "first" (made before the
      // offline period), and not Bob's text.
      await a.keyboard.press('Control+z');
      assert.equal(await converge([a, b]), '>> ');
      // " second" never reached the server: no revision ever held it.
      const { rev } = await getDoc(doc);
      for (let r = 1; r <= rev; r++) {
        const t = (await (await fetch(`${server.url}/api/docs/${doc}/revisions/${r}`)).json()).text;
        assert.ok(!t.includes('second'), `revision ${r}: ${t}`);
      }
    });
  });
});
