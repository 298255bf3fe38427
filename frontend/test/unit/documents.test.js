// Modes by extension, download names, import normalization, generated
// names, and Markdown's Enter (list continuation).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EditorState } from '@codemirror/state';
import { ensureSyntaxTree } from '@codemirror/language';

import { extension, modeFor } from '../../src/editor/modes.js';
import { continueMarkup, markdownLanguage } from '../../src/editor/lang/markdown.js';
import { fileName, normalizeImport } from '../../src/app/files.js';
import { readableName } from '../../src/app/ids.js';

test('modeFor: the extension picks the mode; none is Markdown', () => {
  const table = {
    notes: 'markdown',
    'notes.md': 'markdown',
    'README.MD': 'markdown',
    'a.markdown': 'markdown',
    'app.js': 'javascript',
    'x.jsx': 'javascript',
    'lib.ts': 'typescript',
    'main.go': 'go',
    'tool.py': 'python',
    'data.json': 'json',
    'site.css': 'css',
    'index.html': 'html',
    'todo.txt': 'text',
    'notes.2026~v1': 'text',
    '.env': 'markdown',
    'trailing.': 'markdown',
  };
  for (const [doc, want] of Object.entries(table)) assert.equal(modeFor(doc).name, want, doc);
  assert.equal(extension('a.b.GO'), 'go');
  assert.equal(modeFor('notes').ext, '.md');
  assert.equal(modeFor('main.go').ext, '');
});

test('fileName: the id, .md added without an extension, @rev for older revisions', () => {
  assert.equal(fileName('notes', '.md'), 'notes.md');
  assert.equal(fileName('main.go', ''), 'main.go');
  assert.equal(fileName('notes', '.md', 12), 'notes@12.md');
  assert.equal(fileName('main.go', '', 3), 'main@3.go');
  assert.equal(fileName('a.b.c', '', 3), 'a.b@3.c');
});

test('normalizeImport: CRLF and CR become LF, a BOM goes, binary is refused', () => {
  assert.equal(normalizeImport('\uFEFFa\r\nb\rc\n'), 'a\nb\nc\n');
  assert.equal(normalizeImport('😀 漢字'), '😀 漢字');
  assert.equal(normalizeImport('PK\u0003\u0004\u0000\u0000'), null);
});

test('readableName: two capitalized words', () => {
  let i = 0;
  const seq = [3, 5];
  assert.equal(readableName(() => seq[i++]), 'Clever Coral');
  for (let k = 0; k < 50; k++) assert.match(readableName(), /^[A-Z][a-z]+ [A-Z][a-z]+$/);
});

// enter runs continueMarkup on text with the cursor at | and returns the
// new text with | at the cursor, or null when it does nothing.
function enter(withCursor) {
  const pos = withCursor.indexOf('|');
  let state = EditorState.create({ doc: withCursor.replace('|', ''), selection: { anchor: pos }, extensions: [markdownLanguage] });
  ensureSyntaxTree(state, state.doc.length, 5000);
  const view = {
    get state() {
      return state;
    },
    dispatch(spec) {
      state = state.update(spec).state;
    },
  };
  if (!continueMarkup(view)) return null;
  const head = state.selection.main.head;
  const t = state.doc.toString();
  return `${t.slice(0, head)}|${t.slice(head)}`;
}

test('Markdown Enter continues lists and quotes, ends empty items, leaves code alone', () => {
  assert.equal(enter('- one|'), '- one\n- |');
  assert.equal(enter('  * nested|'), '  * nested\n  * |');
  assert.equal(enter('1. first|'), '1. first\n2. |');
  assert.equal(enter('9) ninth|'), '9) ninth\n10) |');
  assert.equal(enter('- [x] done|'), '- [x] done\n- [ ] |');
  assert.equal(enter('> quoted|'), '> quoted\n> |');
  assert.equal(enter('- one\n- |'), '- one\n|');
  assert.equal(enter('plain|'), null);
  assert.equal(enter('```\n- not a list|\n```'), null);
});
