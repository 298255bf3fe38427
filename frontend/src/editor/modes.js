// The editing mode of a document, picked by its id's extension, and the
// CodeMirror language support for it, loaded on demand: each language is a
// separate chunk (esbuild code splitting, dynamic import()), so a Go
// document never downloads the Markdown parser and the other way round.

/**
 * @typedef {object} Mode
 * @property {string} name markdown, javascript, typescript, go, python, json, css, html or text
 * @property {string} label shown in the header
 * @property {string} ext the file extension for downloads (with the dot), "" when the id has one
 */

/** MODES maps extensions (lower case, without the dot) to mode names. */
const BY_EXT = {
  md: 'markdown',
  markdown: 'markdown',
  js: 'javascript',
  mjs: 'javascript',
  cjs: 'javascript',
  jsx: 'javascript',
  ts: 'typescript',
  tsx: 'typescript',
  mts: 'typescript',
  go: 'go',
  py: 'python',
  json: 'json',
  css: 'css',
  html: 'html',
  htm: 'html',
};

const LABELS = {
  markdown: 'Markdown',
  javascript: 'JavaScript',
  typescript: 'TypeScript',
  go: 'Go',
  python: 'Python',
  json: 'JSON',
  css: 'CSS',
  html: 'HTML',
  text: 'Plain text',
};

/**
 * extension returns the id's extension (lower case, no dot), or "" when the
 * id has none: "notes.md" → "md", "notes" → "", ".env" → "".
 * @param {string} doc
 */
export function extension(doc) {
  const i = doc.lastIndexOf('.');
  return i > 0 && i < doc.length - 1 ? doc.slice(i + 1).toLowerCase() : '';
}

/**
 * modeFor returns the mode of a document id: Markdown for .md and for ids
 * without an extension, the language of a known code extension, else plain
 * text.
 * @param {string} doc
 * @returns {Mode}
 */
export function modeFor(doc) {
  const ext = extension(doc);
  const name = ext === '' ? 'markdown' : BY_EXT[ext] || 'text';
  return { name, label: LABELS[name], ext: ext === '' ? '.md' : '' };
}

/**
 * loadLanguage resolves with the CodeMirror extension of a mode (an empty
 * array for plain text). The import() calls are literal, so esbuild puts
 * each language into a chunk of its own.
 * @param {Mode} mode
 * @returns {Promise<import('@codemirror/state').Extension>}
 */
export async function loadLanguage(mode) {
  switch (mode.name) {
    case 'markdown':
      return (await import('./lang/markdown.js')).support();
    case 'javascript':
      return (await import('./lang/javascript.js')).support(false);
    case 'typescript':
      return (await import('./lang/javascript.js')).support(true);
    case 'go':
      return (await import('./lang/go.js')).support();
    case 'python':
      return (await import('./lang/python.js')).support();
    case 'json':
      return (await import('./lang/json.js')).support();
    case 'css':
      return (await import('./lang/css.js')).support();
    case 'html':
      return (await import('./lang/html.js')).support();
    default:
      return [];
  }
}
