// Ops from texts and diffs, for a rejoin that got the text instead of the
// missed ops (see DocSession.recover and OTClient.rebase).

import { cpLength } from '../ot/codepoints.js';
import { Builder } from '../ot/operation.js';

/**
 * diffsToOp turns diff-match-patch diffs ([-1|0|1, text], as doc:diff
 * returns them) into the op that takes the old text to the new one.
 * @param {[number, string][]} diffs
 */
export function diffsToOp(diffs) {
  const b = new Builder();
  for (const [op, text] of diffs) {
    if (op === 0) b.retain(cpLength(text));
    else if (op === 1) b.insert(text);
    else if (op === -1) b.delete(cpLength(text));
    else throw new TypeError(`diff op ${op}`);
  }
  return b.done();
}

/**
 * textsToOp returns an op taking a to b: one replacement between their
 * common prefix and suffix (whole code points).
 * @param {string} a
 * @param {string} b
 */
export function textsToOp(a, b) {
  const x = Array.from(a);
  const y = Array.from(b);
  let start = 0;
  const max = Math.min(x.length, y.length);
  while (start < max && x[start] === y[start]) start++;
  let end = 0;
  while (end < max - start && x[x.length - 1 - end] === y[y.length - 1 - end]) end++;
  const out = new Builder();
  out.retain(start);
  out.insert(y.slice(start, y.length - end).join(''));
  out.delete(x.length - end - start);
  return out.done();
}
