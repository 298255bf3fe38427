// The keyboard shortcut list ("?" outside the text, or the header's "?"
// button). The bindings are CodeMirror's (basicSetup: default, search,
// history, fold and completion keymaps) plus Markdown's list continuation.

import { ask, h } from './dom.js';

const mac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform || '');
const MOD = mac ? '⌘' : 'Ctrl';

/** SHORTCUTS lists [group, [[keys, what]...]]. */
export const SHORTCUTS = [
  ['Search', [
    [`${MOD}+F`, 'Search and replace (the panel has Replace and Replace all)'],
    [`F3 / ${MOD}+G`, 'Next match'],
    [`Shift+F3 / Shift+${MOD}+G`, 'Previous match'],
    [`${MOD}+D`, 'Select the next occurrence'],
    [`${MOD}+Alt+G`, 'Go to line'],
    ['Escape', 'Close the search panel'],
  ]],
  ['Editing', [
    [`${MOD}+Z`, 'Undo your own last change (not the others\')'],
    [`${MOD}+Y / ${MOD}+Shift+Z`, 'Redo'],
    [`${MOD}+/`, 'Comment or uncomment lines (code)'],
    ['Alt+↑ / Alt+↓', 'Move lines up or down'],
    ['Shift+Alt+↑ / Shift+Alt+↓', 'Copy lines up or down'],
    [`${MOD}+Shift+K`, 'Delete lines'],
    [`${MOD}+] / ${MOD}+[`, 'Indent / unindent'],
    [mac ? '⌘+Alt+[ / ⌘+Alt+]' : 'Ctrl+Shift+[ / Ctrl+Shift+]', 'Fold / unfold'],
    ['Ctrl+Space', 'Complete'],
    ['Alt+Click, Alt+Drag', 'More cursors, rectangular selection'],
  ]],
  ['Page', [
    ['Tab / Shift+Tab', 'Leave the text (Tab does not indent)'],
    ['?', 'This list (outside the text)'],
    ['Escape', 'Close a panel or dialog'],
  ]],
];

/** showShortcuts opens the list as a dialog. */
export function showShortcuts(markdown) {
  const groups = SHORTCUTS.map(([title, rows]) => [title, markdown && title === 'Editing' ? [...rows, ['Enter', 'Continue a list or quote (Markdown)']] : rows]);
  return ask(
    'Keyboard shortcuts',
    groups.map(([title, rows]) =>
      h('section', { class: 'keys' }, h('h3', {}, title), h('dl', {}, rows.map(([k, what]) => [h('dt', {}, k.split(' / ').map((x, i) => [i ? ' / ' : '', h('kbd', {}, x)])), h('dd', {}, what)]))),
    ),
    [{ label: 'Close', value: 'close', primary: true }],
  );
}
