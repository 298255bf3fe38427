import { javascript } from '@codemirror/lang-javascript';

export function support(typescript) {
  return javascript({ typescript, jsx: true });
}
