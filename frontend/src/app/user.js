// The local user's name and colour, asked once and kept in localStorage.

import { MAX_USER_NAME_RUNES } from './contract.js';
import { ask, h } from './dom.js';
import { COLORS, randomColor } from './ids.js';

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
    cur ? 'Your name' : 'Welcome! What should others call you?',
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
