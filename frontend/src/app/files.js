// Export and import: download the text under the document's name, and
// replace the text with a file's (picked or dropped) through the server's
// PUT merge, after a confirmation.

import { putText } from './api.js';
import { ask, h } from './dom.js';

/**
 * fileName returns the download name of a document: its id, with ".md"
 * added when the id has no extension (those are Markdown documents), and a
 * revision suffix for an older version: notes.md, notes@12.md.
 * @param {string} doc
 * @param {string} addExt extension to add ("" when the id has one)
 * @param {number} [rev] an older revision
 */
export function fileName(doc, addExt, rev) {
  if (rev === undefined) return doc + addExt;
  const name = doc + addExt;
  const i = name.lastIndexOf('.');
  return i > 0 ? `${name.slice(0, i)}@${rev}${name.slice(i)}` : `${name}@${rev}`;
}

/** download saves text as a file called name. */
export function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * normalizeImport makes a file's text fit the editor: line breaks become
 * "\n" (the editor's only separator), a byte order mark goes. It returns
 * null for a binary file (NUL characters).
 * @param {string} text
 */
export function normalizeImport(text) {
  if (text.includes('\u0000')) return null;
  return text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
}

/**
 * importFile asks for confirmation and replaces the document's text with
 * the file's. Resolves with a message for the page ("" when cancelled).
 * @param {object} opts
 * @param {File} opts.file
 * @param {string} opts.doc
 * @param {import('./session.js').DocSession} opts.session
 * @param {string} [opts.base] the server's origin
 */
export async function importFile({ file, doc, session, base = '' }) {
  const text = normalizeImport(await file.text());
  if (text === null) return `${file.name} is not a text file.`;
  const { value } = await ask(
    `Replace the text with ${file.name}?`,
    [
      h('p', {}, `The text of ${doc} becomes the content of ${file.name} (${[...text].length.toLocaleString()} characters), as one change that everyone sees at once. Edits others make meanwhile are kept; the history keeps the version before.`),
    ],
    [
      { label: 'Cancel', value: 'cancel' },
      { label: 'Replace', value: 'replace', danger: true },
    ],
  );
  if (value !== 'replace') return '';
  // The text is based on the revision this page has seen; the server
  // transforms the replacement over everything after it.
  const rev = await putText(doc, session.client.rev, text, base);
  return `Imported ${file.name} as revision #${rev}.`;
}
