// Markdown: the @lezer/markdown parser (CommonMark + GFM: tables, task
// lists, strikethrough, autolinks) as a CodeMirror language, and Enter
// continuing lists and quotes. Not @codemirror/lang-markdown: it imports
// the HTML, CSS and JavaScript parsers (for HTML inside Markdown), which
// cannot be tree-shaken and would triple this chunk.
import { EditorSelection, Prec } from '@codemirror/state';
import { keymap } from '@codemirror/view';
import { defineLanguageFacet, foldNodeProp, indentNodeProp, Language, LanguageSupport, languageDataProp, syntaxTree } from '@codemirror/language';
import { GFM, parser } from '@lezer/markdown';

const data = defineLanguageFacet({ commentTokens: { block: { open: '<!--', close: '-->' } } });

const FOLD = new Set(['BulletList', 'OrderedList', 'Blockquote', 'FencedCode', 'Table']);

const configured = parser.configure([
  GFM,
  {
    props: [
      languageDataProp.add({ Document: data }),
      indentNodeProp.add({ Document: () => null }),
      foldNodeProp.add((type) => (FOLD.has(type.name) ? (tree, state) => ({ from: state.doc.lineAt(tree.from).to, to: tree.to }) : undefined)),
    ],
  },
]);

export const markdownLanguage = new Language(data, configured, [], 'markdown');

const ITEM = /^(\s*)(>\s?)*(\s*)([-*+]|(\d+)([.)]))(\s+)(\[[ xX]\]\s+)?/;
const QUOTE = /^(\s*)((?:>\s?)+)/;

/**
 * continueMarkup is Enter in a list item or a quote: the next line gets the
 * same marker (the next number, an unchecked box); Enter on an empty item
 * ends the list instead. Elsewhere (code blocks too) it does nothing, and
 * the default Enter runs.
 */
export function continueMarkup(view) {
  const { state } = view;
  const sel = state.selection;
  if (sel.ranges.length !== 1 || !sel.main.empty) return false;
  const pos = sel.main.head;
  const line = state.doc.lineAt(pos);
  for (let n = syntaxTree(state).resolveInner(pos, -1); n; n = n.parent) if (n.name === 'FencedCode' || n.name === 'CodeBlock') return false;
  const text = line.text.slice(0, pos - line.from);
  const item = ITEM.exec(text);
  const m = item || QUOTE.exec(text);
  if (!m) return false;
  const marker = m[0];
  if (text.length === marker.length && line.text.length === marker.length) {
    // An empty item or quote line: end it.
    view.dispatch({ changes: { from: line.from, to: line.to, insert: '' }, selection: EditorSelection.cursor(line.from), scrollIntoView: true, userEvent: 'input' });
    return true;
  }
  let next = marker;
  if (item && m[5] !== undefined) next = `${m[1]}${m[2] || ''}${m[3]}${Number(m[5]) + 1}${m[6]}${m[7]}${m[8] ? '[ ] ' : ''}`;
  else if (item && m[8]) next = marker.replace(/\[[ xX]\]/, '[ ]');
  const insert = `\n${next}`;
  view.dispatch({ changes: { from: pos, insert }, selection: EditorSelection.cursor(pos + insert.length), scrollIntoView: true, userEvent: 'input' });
  return true;
}

export function support() {
  return new LanguageSupport(markdownLanguage, [Prec.high(keymap.of([{ key: 'Enter', run: continueMarkup }]))]);
}
