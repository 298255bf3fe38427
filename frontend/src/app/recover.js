// Ops from texts and diffs, for a rejoin that got the text instead of the
// missed ops (see DocSession.recover and OTClient.rebase).

import { cpLength } from '../ot/codepoints.js';
import { MAX_HISTORY_LIMIT } from './contract.js';
import { Builder, apply } from '../ot/operation.js';

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

/**
 * insertsOnly keeps the insertions of op, an op on an unknown base text
 * whose result is text: it returns {base, op, dropped}, where base is text
 * without op's insertions, op takes base to text (retains and inserts
 * only), and dropped says whether op deleted anything (those deletions
 * cannot be redone without the base text).
 * @param {import('../ot/operation.js').Op} op
 * @param {string} text
 */
export function insertsOnly(op, text) {
  const cps = Array.from(text);
  const out = new Builder();
  const base = [];
  let pos = 0;
  let dropped = false;
  for (const c of op) {
    if (typeof c === 'string') {
      out.insert(c);
      pos += cpLength(c);
    } else if (c > 0) {
      out.retain(c);
      base.push(cps.slice(pos, pos + c).join(''));
      pos += c;
    } else if (c < 0) dropped = true;
  }
  base.push(cps.slice(pos).join(''));
  return { base: base.join(''), op: out.done(), dropped };
}

/**
 * missedSince finds out what happened between an OT client's revision and
 * the head of a join ack that carried the text ({rev, text}) while the
 * client has unacknowledged edits, for OTClient.rebase. request(event,
 * payload) sends a wire event of the document and resolves with its ack.
 * @param {import('../ot/client.js').OTClient} client joining, with pending edits
 * @param {{rev: number, text: string}} ack
 * @param {(event: string, payload: object) => Promise<any>} request
 * @returns {Promise<{missed: import('../ot/operation.js').Op, applied: boolean}>}
 */
export async function missedSince(client, ack, request) {
  const from = client.rev;
  if (ack.rev < from) throw new Error('the document on the server is older than this copy');
  const pending = client.pending;
  const applied = pending && pending.sent ? await ownRevision(request, client.client, from, ack.rev) : false;
  if (applied) {
    const { text } = await request('doc:revision', { rev: from });
    return { missed: textsToOp(apply(text, pending.op), ack.text), applied };
  }
  const { diffs } = await request('doc:diff', { from, to: ack.rev });
  return { missed: diffsToOp(diffs), applied };
}

// ownRevision reports whether the server has an op of client after revision
// from (at most one can be: the pending op), paging through doc:history from
// head down.
async function ownRevision(request, client, from, head) {
  let before = head + 1;
  while (before > from + 1) {
    const { revs } = await request('doc:history', { before, limit: MAX_HISTORY_LIMIT });
    if (revs.length === 0) return false;
    for (const r of revs) {
      // The folded range: the rest is not kept (doc:diff will answer gone).
      if (r.folded || r.rev <= from) return false;
      if (r.client === client) return true;
    }
    before = revs[revs.length - 1].rev;
  }
  return false;
}
