// Resubmission of an orphan: the unsent edits of a tab that was closed while
// they waited. They go out over their own socket with the orphan's client id
// and seq numbers, so the server applies each at most once; the entry is
// removed only once every edit is acknowledged.

import { OTClient, RevisionGapError } from '../ot/client.js';
import { CODE } from './contract.js';
import { insertsOnly, missedSince, textsToOp } from './recover.js';

/**
 * flushOrphan resubmits an orphan's edits. It returns a promise that resolves
 * with true once they are all acknowledged (the entry is then removed), or
 * false when the server cannot take them (the entry is kept for a later
 * load). The orphan's lock is released either way.
 * @param {object} opts
 * @param {string} opts.doc
 * @param {import('./store.js').Slot} opts.slot the orphan (locked)
 * @param {import('./store.js').Store} opts.store
 * @param {() => any} opts.connect returns a new socket (not connected)
 * @param {{name: string, color: string}} opts.user
 */
export function flushOrphan({ doc, slot, store, connect, user }) {
  return new Promise((resolve) => {
    let client;
    try {
      client = OTClient.fromJSON(slot.saved.state);
    } catch {
      void store.remove(doc, slot.client);
      slot.release();
      resolve(false);
      return;
    }
    const socket = connect();
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      if (ok) void store.remove(doc, slot.client);
      slot.release();
      socket.disconnect();
      resolve(ok);
    };
    const check = () => {
      if (!client.unsent) finish(true);
    };
    const submit = (sub) => {
      socket.emit('doc:op', { doc, ...sub }, (ack) => {
        if (!ack || !ack.ok) {
          finish(false);
          return;
        }
        let next;
        try {
          next = client.ack(sub.seq, ack.rev);
        } catch {
          finish(false);
          return;
        }
        if (next) submit(next);
        else check();
      });
    };
    const request = (event, payload) =>
      new Promise((res, rej) => {
        socket.timeout(15000).emit(event, { doc, ...payload }, (err, ack) => {
          if (err || !ack || !ack.ok) rej(new Error(err ? 'timeout' : ack && ack.error ? ack.error.code : 'failed'));
          else res(ack);
        });
      });
    socket.on('connect', () => {
      const j = client.join();
      socket.emit('doc:join', { doc, client: j.client, rev: j.rev, user }, (ack) => {
        if (!ack || !ack.ok) {
          finish(false);
          return;
        }
        if (Array.isArray(ack.ops)) {
          let out;
          try {
            out = client.resume(ack.ops);
          } catch {
            finish(false);
            return;
          }
          if (out.send) submit(out.send);
          else check();
          return;
        }
        // The log no longer reaches back to the orphan's revision.
        if (typeof ack.text !== 'string' || !client.unsent) {
          check();
          return;
        }
        missedSince(client, ack, request)
          .then(({ missed, applied }) => {
            if (done) return;
            const out = client.rebase(ack.rev, missed, applied);
            if (out.send) submit(out.send);
            else check();
          })
          .catch((err) => {
            if (done) return;
            if (!err || err.message !== CODE.GONE) {
              finish(false);
              return;
            }
            // The orphan's revision was folded by the retention policy: a
            // 3-way rebase on the saved base text (sent as a new op), or
            // without one, keep its insertions and give up its deletions.
            try {
              const sb = slot.saved.serverBase;
              let missed;
              if (sb && typeof sb.text === 'string' && sb.rev === client.rev) missed = textsToOp(sb.text, ack.text);
              else {
                const kept = insertsOnly(client.localOp(), slot.saved.text);
                client.pending = { seq: client.pending.seq, op: kept.op, sent: client.pending.sent };
                client.buffer = null;
                missed = textsToOp(kept.base, ack.text);
              }
              const out = client.rebase(ack.rev, missed, false, true);
              if (out.send) submit(out.send);
              else check();
            } catch {
              finish(false);
            }
          });
      });
    });
    socket.on('disconnect', () => client.disconnect());
    socket.on('doc:op', (rec) => {
      if (!rec || rec.doc !== doc) return;
      try {
        const out = client.receive(rec);
        if (out.send) submit(out.send);
      } catch (err) {
        if (err instanceof RevisionGapError) finish(false);
      }
    });
    socket.connect();
  });
}
