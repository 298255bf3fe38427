import { html } from '@codemirror/lang-html';

export function support() {
  return html();
}
