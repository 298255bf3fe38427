// bench-e2e: figures of the real page against a real collabd, in headless
// chromium:
//   - bundle size: what a page loads for a Markdown, a Go and a plain-text
//     document (app.js, editor.js, the chunks they import, the language
//     chunk, the preview for Markdown; app.css), raw and gzip;
//   - time from a remote op's arrival at the page (the doc:op packet) to its
//     display (the next frame after the editor applied it), in a 1 MiB
//     document, for ops at random places;
//   - the page's own CPU while idle (nothing typed, nobody else editing).
// Usage: npm run bench:e2e [-- ops]   (COLLABD_BIN=path skips the go build)

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { io } from 'socket.io-client';

import { buildServer, frontendDir, launch, startServer, tempDir, waitOnline } from '../test/e2e/harness.js';
import { cpLength } from '../src/ot/codepoints.js';

const N = Number(process.argv[2] || 40);

function size(file) {
  const buf = readFileSync(join(frontendDir, 'dist', file));
  return { raw: buf.length, gzip: gzipSync(buf, { level: 9 }).length };
}

function kb(n) {
  return `${(n / 1024).toFixed(1)} KiB`;
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return `median ${q(0.5).toFixed(1)} ms, p90 ${q(0.9).toFixed(1)} ms, max ${s[s.length - 1].toFixed(1)} ms (n=${s.length})`;
}

// makeText returns about bytes of UTF-8: lines of prose with some emoji and CJK.
function makeText(bytes) {
  const words = ['collabd', 'edits', 'together', 'offline', 'revision', 'cursor', '漢字', 'テキスト', '😀', 'naïve', 'résumé', 'the', 'and', 'of'];
  let out = '';
  let i = 0;
  while (Buffer.byteLength(out) < bytes) {
    let line = '';
    for (let w = 0; w < 12; w++) line += `${words[(i * 7 + w * 3) % words.length]} `;
    out += `${i} ${line}\n`;
    i++;
  }
  return out;
}

// loads returns the files a page loads for a document of mode: app.js,
// editor.js and every chunk they import statically, the mode's chunks
// (import() in editor.js), and what those import, recursively.
function loads(chunks) {
  const dist = join(frontendDir, 'dist');
  const editor = readFileSync(join(dist, 'editor.js'), 'utf8');
  const start = ['/app.js', '/editor.js'];
  for (const name of chunks) {
    const m = new RegExp(`import\\("\\./(chunks/${name}-\\w+\\.js)"\\)`).exec(editor);
    if (!m) throw new Error(`no chunk ${name} in editor.js`);
    start.push(`/${m[1]}`);
  }
  const seen = new Set(start);
  const todo = [...start];
  while (todo.length > 0) {
    const f = todo.pop();
    for (const m of readFileSync(join(dist, f), 'utf8').matchAll(/(?:from|import)\s*["'](\.\/[\w./-]+\.js)["']/g)) {
      const c = new URL(m[1], `http://x${f}`).pathname;
      if (!seen.has(c)) {
        seen.add(c);
        todo.push(c);
      }
    }
  }
  return [...seen, '/app.css'];
}
const css = size('app.css');
for (const [kind, chunks] of [['Markdown document', ['markdown', 'render-markdown']], ['Go document', ['go']], ['plain-text document', []]]) {
  const files = loads(chunks);
  const t = files.map((f) => size(f.slice(1))).reduce((a, b) => ({ raw: a.raw + b.raw, gzip: a.gzip + b.gzip }));
  console.log(`bundle, ${kind}: ${files.length} files, ${kb(t.raw)} (gzip ${kb(t.gzip)}), app.css included (${kb(css.raw)}, gzip ${kb(css.gzip)})`);
}

const built = buildServer();
if (built.error) {
  console.log(`no collabd binary (${built.error.split('\n')[0]}): browser figures skipped`);
  process.exit(0);
}
const data = tempDir('collabd-bench-');
const server = await startServer(built.bin, data);
const browser = await launch();
try {
  const doc = 'bench-1mib.txt'; // plain text: the editor path alone, no preview
  const text = makeText(1 << 20);
  const put = await fetch(`${server.url}/api/docs/${doc}`, { method: 'PUT', headers: { 'If-Match': '0', 'Content-Type': 'text/plain; charset=utf-8' }, body: text });
  if (put.status !== 200) throw new Error(`PUT: ${put.status} ${await put.text()}`);
  const { rev } = await put.json();

  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  await context.addInitScript(() => localStorage.setItem('collabd:user', JSON.stringify({ name: 'Bench', color: '#1a73e8' })));
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(`${server.url}/d/${doc}`);
  await waitOnline(page, 60_000);
  console.log(`page: 1 MiB document (${Buffer.byteLength(text)} bytes, ${cpLength(text)} code points) open and joined in ${Date.now() - t0} ms`);
  await page.evaluate(() => {
    window.benchTimes = [];
    const { session } = window.collabd;
    const socket = session.socket;
    socket.prependAny((event) => {
      if (event !== 'doc:op') return;
      const arrived = performance.now();
      requestAnimationFrame(() => {
        const frame = performance.now();
        window.benchTimes.push({ display: frame - arrived, apply: session.lastRemote.applied - session.lastRemote.arrived });
      });
    });
  });

  // A second client, Node's socket.io-client, sends ops at random places.
  const sock = io(server.url, { transports: ['websocket'], forceNew: true });
  await new Promise((r) => sock.on('connect', r));
  const join = await new Promise((r) => sock.emit('doc:join', { doc, client: 'bench-remote', rev, user: { name: 'Remote', color: '#188038' } }, r));
  if (!join.ok) throw new Error(`join: ${JSON.stringify(join.error)}`);
  let head = join.rev;
  let len = cpLength(text);
  let seed = 42;
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 1; i <= N; i++) {
    const pos = rand(len);
    const ack = await new Promise((r) => sock.emit('doc:op', { doc, client: 'bench-remote', seq: i, rev: head, op: [pos, 'x'] }, r));
    if (!ack.ok) throw new Error(`op: ${JSON.stringify(ack.error)}`);
    head = ack.rev;
    len++;
    await page.waitForFunction((n) => window.benchTimes.length >= n, i);
  }
  const times = await page.evaluate(() => window.benchTimes);
  console.log(`remote op, arrival to display (next frame), 1 MiB document: ${stats(times.map((t) => t.display))}`);
  console.log(`remote op, arrival to applied in the editor (synchronous part): ${stats(times.map((t) => t.apply))}`);
  sock.disconnect();

  // Local typing: keydown to the next frame, 40 keys at the end of line 1000.
  await page.evaluate(() => {
    window.keyTimes = [];
    document.addEventListener(
      'keydown',
      () => {
        const t = performance.now();
        requestAnimationFrame(() => window.keyTimes.push(performance.now() - t));
      },
      true,
    );
    const { view } = window.collabd.editor;
    const line = view.state.doc.line(1000);
    view.dispatch({ selection: { anchor: line.to } });
    view.focus();
  });
  for (let i = 0; i < 40; i++) {
    await page.keyboard.type('k');
    await page.waitForTimeout(25);
  }
  await waitOnline(page, 30_000);
  const keys = await page.evaluate(() => window.keyTimes);
  console.log(`local keystroke, keydown to the next frame, 1 MiB document: ${stats(keys)}`);
  const save = await page.evaluate(() => window.collabd.session.lastSaveMs);
  console.log(`saving the 1 MiB entry to localStorage (runs on a timer, not per key): ${save.toFixed(1)} ms`);

  // Idle CPU: nothing happens for 5 s (after the saves armed by the typing).
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  await page.waitForTimeout(3000);
  const metric = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  const idle = async (what) => {
    const m0 = await metric();
    await page.waitForTimeout(5000);
    const m1 = await metric();
    const task = (m1.TaskDuration - m0.TaskDuration) * 1000;
    const script = (m1.ScriptDuration - m0.ScriptDuration) * 1000;
    console.log(`idle page over 5 s, ${what}: ${task.toFixed(1)} ms of main-thread tasks (${((task / 5000) * 100).toFixed(2)} % of a core), ${script.toFixed(1)} ms of script`);
  };
  await idle('editor focused (the caret blinks)');
  await page.evaluate(() => document.activeElement.blur());
  await page.waitForTimeout(500);
  await idle('editor not focused');
} finally {
  await browser.close();
  await server.stop();
  rmSync(data, { recursive: true, force: true });
  rmSync(built.dir, { recursive: true, force: true });
}
