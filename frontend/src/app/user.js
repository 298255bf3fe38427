// The local user's name and colour, kept in localStorage. Nobody is asked
// before the document shows: a first visit gets a generated name and colour
// (currentUser), which the member list's own chip changes at any time
// (askUser).

import { MAX_USER_NAME_RUNES } from './contract.js';
import { ask, h } from './dom.js';
import { COLORS, randomColor, readableName } from './ids.js';

const KEY = 'collabd:user';

/** savedUser returns the stored {name, color}, or null. */
export function savedUser() {
  try {
    const u = JSON.parse(localStorage.getItem(KEY) || 'null');
    if (u && typeof u.name === 'string' && u.name.trim() && /^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$/.test(u.color)) return u;
  } catch {
    // fall through
  }
  return null;
}

/**
 * currentUser returns the stored user or, on a first visit, a generated
 * name and colour, stored so that the next visit keeps them.
 * @returns {{name: string, color: string, generated?: boolean}}
 */
export function currentUser() {
  const saved = savedUser();
  if (saved) return saved;
  const user = { name: readableName(), color: randomColor() };
  try {
    localStorage.setItem(KEY, JSON.stringify(user));
  } catch {
    // keep it for this page
  }
  return user;
}

/**
 * askUser asks for a name (prefilled with the current one) and stores it.
 * Dismissing the dialog keeps the current user, or "anonymous".
 * @returns {Promise<{name: string, color: string}>}
 */
export async function askUser() {
  const cur = savedUser();
  const pick = cur ? cur.color : randomColor();
  const input = h('input', { name: 'name', id: 'user-name', maxlength: MAX_USER_NAME_RUNES, autocomplete: 'nickname', required: true, value: cur ? cur.name : '' });
  const colors = h(
    'div',
    { class: 'swatches', role: 'radiogroup', 'aria-label': 'Colour' },
    COLORS.map((c) =>
      h(
        'label',
        { class: 'swatch', style: { '--c': c } },
        h('input', { type: 'radio', name: 'color', value: c, checked: pick === c }),
        h('span', { class: 'sr-only' }, c),
      ),
    ),
  );
  const { value, form } = await ask(
    'Your name and colour',
    [h('label', { for: 'user-name' }, 'Name shown to others'), input, h('p', { class: 'muted' }, 'Colour of your cursor'), colors],
    [{ label: 'Continue', value: 'ok', primary: true }],
    () => input.focus(),
  );
  const fd = new FormData(form);
  const name = String(fd.get('name') || '').trim().slice(0, MAX_USER_NAME_RUNES);
  if (value !== 'ok' || !name) return cur || { name: 'anonymous', color: randomColor() };
  const user = { name, color: String(fd.get('color') || randomColor()) };
  try {
    localStorage.setItem(KEY, JSON.stringify(user));
  } catch {
    // keep it for this page
  }
  return user;
}
