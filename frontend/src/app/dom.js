// Small DOM helpers shared by the pages.

/**
 * h creates an element: h('button', {class: 'x', onclick: fn}, 'text', child).
 * Attributes starting with "on" become listeners; null/false attributes are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style' && typeof v === 'object') for (const [p, x] of Object.entries(v)) el.style.setProperty(p, x);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/**
 * timeAgo formats an RFC 3339 time relative to now ("just now", "5 min ago",
 * "3 h ago", else a date).
 * @param {string} iso
 * @param {number} [nowMs]
 */
export function timeAgo(iso, nowMs = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.round((nowMs - t) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

/** fullTime formats an RFC 3339 time for a tooltip. */
export function fullTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '' : new Date(t).toLocaleString();
}

/**
 * ask shows a modal dialog and resolves with the value of the button that
 * closed it ("" when dismissed with Escape).
 * @param {HTMLElement[]} body
 * @param {{label: string, value: string, primary?: boolean, danger?: boolean}[]} buttons
 * @param {string} title
 * @param {(form: HTMLFormElement) => void} [onOpen]
 * @returns {Promise<{value: string, form: HTMLFormElement}>}
 */
export function ask(title, body, buttons, onOpen) {
  return new Promise((resolve) => {
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const form = h(
      'form',
      { method: 'dialog', class: 'dialog-form' },
      h('h2', { id: titleId }, title),
      ...body,
      h(
        'div',
        { class: 'dialog-buttons' },
        buttons.map((b) => h('button', { value: b.value, class: b.danger ? 'btn danger' : b.primary ? 'btn primary' : 'btn' }, b.label)),
      ),
    );
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId }, form);
    document.body.append(dialog);
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve({ value: dialog.returnValue, form });
    });
    dialog.showModal();
    if (onOpen) onOpen(form);
  });
}
