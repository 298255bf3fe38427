// The home page: the list of documents and "new document".

import { getJSON } from './api.js';
import { fullTime, h, timeAgo } from './dom.js';
import { DOC_ID, DOC_ID_PATTERN, MAX_DOC_ID_LEN } from './contract.js';
import { readableId } from './ids.js';

export async function homePage(root) {
  document.title = 'Documents · collabd';
  const input = h('input', {
    id: 'new-id',
    name: 'id',
    value: readableId(),
    required: true,
    pattern: DOC_ID_PATTERN,
    maxlength: MAX_DOC_ID_LEN,
    spellcheck: 'false',
    autocomplete: 'off',
    'aria-describedby': 'new-id-help',
  });
  const form = h(
    'form',
    {
      class: 'new-doc',
      onsubmit: (e) => {
        e.preventDefault();
        const id = input.value.trim();
        if (!DOC_ID.test(id)) {
          input.setCustomValidity(`Letters, digits and . _ ~ - only (up to ${MAX_DOC_ID_LEN})`);
          input.reportValidity();
          return;
        }
        location.assign(`/d/${encodeURIComponent(id)}`);
      },
    },
    h('label', { for: 'new-id' }, 'New document'),
    h('div', { class: 'row' }, input, h('button', { class: 'btn primary', type: 'submit' }, 'Create')),
    h('p', { id: 'new-id-help', class: 'muted small' }, 'A name made of letters, digits and . _ ~ -. Share the address to edit together.'),
  );
  input.addEventListener('input', () => input.setCustomValidity(''));
  const list = h('ul', { class: 'doc-list', 'aria-busy': 'true' }, h('li', { class: 'muted' }, 'Loading…'));
  root.replaceChildren(
    h('main', { class: 'home' }, h('section', { class: 'card' }, h('h1', {}, 'Documents'), form, h('h2', { class: 'list-title' }, 'Recent'), list)),
  );
  try {
    const { docs } = await getJSON('/api/docs');
    list.replaceChildren(
      ...(docs.length === 0
        ? [h('li', { class: 'muted' }, 'No documents yet. Create the first one above.')]
        : docs.map((d) =>
            h(
              'li',
              {},
              h('a', { href: `/d/${encodeURIComponent(d.id)}`, class: 'doc-link' }, d.id),
              h('span', { class: 'muted small' }, `${d.rev} revision${d.rev === 1 ? '' : 's'} · `, h('time', { datetime: d.updated, title: fullTime(d.updated) }, `edited ${timeAgo(d.updated)}`)),
            ),
          )),
    );
  } catch (err) {
    list.replaceChildren(h('li', { class: 'error' }, `Could not load the documents: ${err.message}`));
  }
  list.removeAttribute('aria-busy');
}
