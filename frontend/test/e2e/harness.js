// Shared pieces of the browser tests: build and run a real collabd, launch
// Debian's chromium through playwright-core, open editor pages, and save
// screenshots when a test fails. Not a test file itself.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const frontendDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const repoRoot = join(frontendDir, '..');
export const resultsDir = join(frontendDir, 'test-results');

/** The launch flags that work on these machines (TESTING.md). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * buildServer builds cmd/collabd into a temp folder. It returns
 * {bin, dir} or {error} when the binary cannot be built.
 */
export function buildServer() {
  // COLLABD_BIN: run a binary built elsewhere instead (it is not removed).
  if (process.env.COLLABD_BIN) return { bin: process.env.COLLABD_BIN, dir: tempDir('collabd-e2e-') };
  const dir = mkdtempSync(join(tmpdir(), 'collabd-e2e-'));
  const bin = join(dir, 'collabd');
  const res = spawnSync('go', ['build', '-o', bin, './cmd/collabd'], { cwd: repoRoot, encoding: 'utf8', timeout: 300_000 });
  if (res.error || res.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { error: (res.error ? res.error.message : `${res.stderr}${res.stdout}`).trim() };
  }
  return { bin, dir };
}

/**
 * startServer starts collabd on addr (127.0.0.1:0 picks a free port) with
 * data dir data and resolves once it prints its address.
 * @returns {Promise<{url: string, addr: string, stop(): Promise<void>, proc: import('node:child_process').ChildProcess, log: () => string}>}
 */
export function startServer(bin, data, addr = '127.0.0.1:0', extra = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, ['--addr', addr, '--data', data, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`collabd did not start in 20 s:\n${out}${errText}`));
    }, 20_000);
    proc.stderr.on('data', (d) => {
      errText += d;
      if (errText.length > 200_000) errText = errText.slice(-100_000);
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`collabd exited with ${code}:\n${out}${errText}`));
    });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /collabd listening on (http:\/\/([^/\s]+)\/)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      proc.removeAllListeners('exit');
      const exited = new Promise((r) => proc.once('exit', r));
      resolve({
        url: m[1].replace(/\/$/, ''),
        addr: m[2],
        proc,
        log: () => errText,
        async stop() {
          if (proc.exitCode !== null || proc.signalCode !== null) return;
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(t);
        },
      });
    });
  });
}

/** launch starts headless chromium. */
export function launch() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** tempDir makes a temp folder removed by cleanup. */
export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * watchConsole collects console errors and page errors of a page.
 * @param {import('playwright-core').Page} page
 */
export function watchConsole(page) {
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

/**
 * openDoc opens the editor page of doc in context and waits until it is
 * connected. The page never asks for a name; if the context has no stored
 * user yet, name and color are stored before the page loads, so the first
 * page of a context is called name.
 * @param {import('playwright-core').BrowserContext} context
 */
export async function openDoc(context, base, doc, name, color = '#1a73e8') {
  const page = await context.newPage();
  if (name) {
    await page.addInitScript((u) => {
      if (!localStorage.getItem('collabd:user')) localStorage.setItem('collabd:user', JSON.stringify(u));
    }, { name, color });
  }
  await page.goto(`${base}/d/${doc}`);
  await waitOnline(page);
  return page;
}

/**
 * rename changes the page's name (and colour) through its own chip in the
 * member list, the way a person does.
 */
export async function rename(page, name, color) {
  await page.locator('#members .self button').click();
  const input = page.locator('#user-name');
  await input.fill(name);
  if (color) await page.locator(`.swatch input[value="${color}"]`).check();
  await input.focus();
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'detached' });
}

/** waitOnline waits until the page is joined and has no unacknowledged edit. */
export async function waitOnline(page, timeout = 20_000) {
  try {
    await page.waitForFunction(() => {
      const s = window.collabd && window.collabd.session;
      return s && s.status === 'online' && s.pendingEdits === 0;
    }, null, { timeout, polling: 100 });
  } catch (err) {
    const state = await page
      .evaluate(() => {
        const s = window.collabd && window.collabd.session;
        if (!s) return 'no session';
        return JSON.stringify({ status: s.status, pending: s.pendingEdits, error: s.error, joined: s.joined, ot: s.client.toJSON(), connection: s.client.connection, socket: s.socket && s.socket.connected });
      })
      .catch((e) => `page gone: ${e.message}`);
    throw new Error(`${err.message}\npage ${page.url()} state: ${state}`);
  }
}

/**
 * goOffline cuts the browser context's network and closes each page's
 * transport, so that the pages notice at once instead of at the next ping.
 */
export async function goOffline(context, ...pages) {
  await context.setOffline(true);
  for (const p of pages) await dropTransport(p);
}

/** dropTransport closes the page's Engine.IO transport (socket.io-client reconnects). */
export function dropTransport(page) {
  return page.evaluate(() => window.collabd.session.socket.io.engine.close());
}

/**
 * entries returns the page's saved entries of unsent edits (IndexedDB
 * `collabd`, store `entries`) as [key, value] pairs.
 */
export function entries(page) {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const req = indexedDB.open('collabd', 1);
        req.onupgradeneeded = () => req.result.createObjectStore('entries');
        req.onerror = () => reject(req.error);
        req.onsuccess = () => {
          const db = req.result;
          const tx = db.transaction('entries');
          const keys = tx.objectStore('entries').getAllKeys();
          const vals = tx.objectStore('entries').getAll();
          tx.oncomplete = () => {
            db.close();
            resolve(keys.result.map((k, i) => [k, vals.result[i]]));
          };
        };
      }),
  );
}

/** waitEntries polls entries(page) until ok(entries) holds, and returns them. */
export async function waitEntries(page, ok, what = 'saved entries', timeout = 10_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const list = await entries(page);
    if (ok(list)) return list;
    if (Date.now() > end) throw new Error(`${what}: not reached; entries: ${JSON.stringify(list.map(([k, v]) => [k, v && (v.text ? v.text.slice(0, 80) : v.delta)]))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** text returns the editor's text. */
export function text(page) {
  return page.evaluate(() => window.collabd.editor.text());
}

/**
 * converge waits until every page is online with nothing pending and all
 * show the same text; it returns that text.
 */
export async function converge(pages, timeout = 30_000) {
  const end = Date.now() + timeout;
  let texts = [];
  for (;;) {
    for (const p of pages) await waitOnline(p, Math.max(1000, end - Date.now()));
    texts = await Promise.all(pages.map(text));
    if (texts.every((t) => t === texts[0])) return texts[0];
    if (Date.now() > end) throw new Error(`pages did not converge:\n${texts.map((t) => JSON.stringify(t)).join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** typeAt moves the cursor with the keyboard (Ctrl+End, or line n's end) and types s. */
export async function typeAtLineEnd(page, line, s, delay = 15) {
  await page.locator('.cm-content').click();
  await page.keyboard.press('Control+Home');
  for (let i = 1; i < line; i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('End');
  await page.keyboard.type(s, { delay });
}

/**
 * withShots runs fn and, if it throws, saves a screenshot of every page into
 * test-results/ before rethrowing.
 */
export async function withShots(name, pages, fn) {
  try {
    await fn();
  } catch (err) {
    mkdirSync(resultsDir, { recursive: true });
    const list = typeof pages === 'function' ? pages() : pages;
    let i = 0;
    for (const p of list) {
      try {
        if (!p.isClosed()) await p.screenshot({ path: join(resultsDir, `${name.replace(/[^a-z0-9]+/gi, '-')}-${i++}.png`), fullPage: true });
      } catch {
        // the page may be gone
      }
    }
    throw err;
  }
}
