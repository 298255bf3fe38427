import { go } from '@codemirror/lang-go';

export function support() {
  return go();
}
