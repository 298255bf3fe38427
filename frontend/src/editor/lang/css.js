import { css } from '@codemirror/lang-css';

export function support() {
  return css();
}
