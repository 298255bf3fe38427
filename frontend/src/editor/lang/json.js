import { json } from '@codemirror/lang-json';

export function support() {
  return json();
}
