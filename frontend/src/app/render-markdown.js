// The Markdown preview's renderer, a chunk of its own (loaded only for
// Markdown documents): marked turns the text into HTML, DOMPurify removes
// everything that could run script before it reaches the page. The text is
// written by every co-editor, so it is untrusted: no <script>, no event
// handler attribute, no javascript: (or other non-http) URL, no frames,
// forms, styles or embedded objects survive. The page's Content-Security-
// Policy (script-src 'self', sent by collabd) is a second wall behind this.

import DOMPurify from 'dompurify';
import { Marked } from 'marked';

const marked = new Marked({ gfm: true, breaks: false, async: false });

const purify = DOMPurify(window);
purify.addHook('afterSanitizeAttributes', (node) => {
  // Links open in a new tab, without handing it our window.
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

const CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'frame', 'frameset', 'object', 'embed', 'base', 'link', 'meta', 'svg', 'math'],
  FORBID_ATTR: ['style', 'srcdoc', 'formaction', 'action'],
  // http(s), mailto and in-page links; relative URLs. Not javascript:, data: or others.
  ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i,
  ALLOW_DATA_ATTR: false,
};

/**
 * renderMarkdown returns a DocumentFragment of the sanitized HTML of text.
 * @param {string} text
 * @returns {DocumentFragment}
 */
export function renderMarkdown(text) {
  const html = /** @type {string} */ (marked.parse(text));
  return purify.sanitize(html, { ...CONFIG, RETURN_DOM_FRAGMENT: true });
}
