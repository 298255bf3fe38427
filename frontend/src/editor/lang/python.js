import { python } from '@codemirror/lang-python';

export function support() {
  return python();
}
