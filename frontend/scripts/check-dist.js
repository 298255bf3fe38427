// check-dist rebuilds the bundle into a temporary folder with the exact
// command of `npm run build` and fails unless the committed dist/ is equal to
// it, file for file and byte for byte. go:embed serves dist/ as committed, so
// a stale dist/ would ship an editor that does not match its sources.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const args = pkg.scripts.build.split(/\s+/);
if (args[0] !== 'esbuild' || !args.includes('--outdir=dist')) {
  fail('the build script must be one esbuild command with --outdir=dist');
}

const out = mkdtempSync(join(tmpdir(), 'collabd-dist-'));
try {
  const esbuild = join(root, 'node_modules', '.bin', 'esbuild');
  const run = spawnSync(esbuild, [...args.slice(1).map((a) => (a === '--outdir=dist' ? `--outdir=${out}` : a)), '--log-level=warning'], {
    cwd: root,
    encoding: 'utf8',
  });
  if (run.error) fail(`cannot run ${esbuild}: ${run.error.message} (run npm ci first)`);
  if (run.status !== 0) fail(`esbuild failed:\n${run.stderr}${run.stdout}`);

  const dist = join(root, 'dist');
  const want = list(out);
  const have = list(dist);
  const problems = [];
  for (const f of want) {
    if (!have.includes(f)) problems.push(`missing: dist/${f}`);
    else if (!readFileSync(join(out, f)).equals(readFileSync(join(dist, f)))) problems.push(`differs: dist/${f}`);
  }
  for (const f of have) if (!want.includes(f)) problems.push(`not built from the sources (delete it): dist/${f}`);
  if (problems.length > 0) {
    fail(`frontend/dist does not match a fresh build:\n  ${problems.join('\n  ')}\nRun \`npm run build\` in frontend/ and commit frontend/dist.`);
  }
  console.log(`check-dist: dist/ matches a fresh build (${want.length} files)`);
} finally {
  rmSync(out, { recursive: true, force: true });
}

function list(dir) {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
      .sort();
  } catch (err) {
    if (err.code === 'ENOENT') return [];
    throw err;
  }
}

function fail(msg) {
  console.error(`check-dist: ${msg}`);
  process.exit(1);
}
