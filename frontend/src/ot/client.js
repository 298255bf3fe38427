// The client side of the collabd OT protocol: a state machine with no I/O.
//
// The client holds at most one op in flight (pending: sent, not yet
// acknowledged) and at most one buffered op (local edits made meanwhile,
// composed into one). The three states:
//
//   synchronized           nothing in flight
//   awaiting               pending in flight
//   awaiting-with-buffer   pending in flight, buffer waiting for its ack
//
// The caller owns the socket and the editor. It feeds the machine events and
// carries out what the machine returns:
//
//   edit(op)          a local edit             -> a submission to emit, or null
//   ack(seq, rev)     the ack of doc:op        -> a submission to emit, or null
//   receive(record)   a doc:op broadcast       -> {apply, send}
//   disconnect()      the connection dropped
//   join()            the doc:join payload fields to send after reconnecting
//   resume(records)   the doc:join ack's ops   -> {apply, send}
//   resetTo(rev)      the doc:join ack's text  -> {apply}
//
// `apply` is an op to apply to the local document (already transformed over
// the local pending and buffered edits); `send` is a submission
// {client, seq, rev, op} to emit as doc:op. Everything is synchronous: handle an
// ack inside the ack callback, before the next broadcast is processed, since
// socket.io-client may deliver both from one read.
//
// Revisions: `rev` is the last server revision reflected in the local
// document. Records and acks must arrive in revision order (the author's ack
// counts as its own revision); a record at or below rev is a duplicate and is
// ignored; a record or ack further ahead than rev+1 means something was missed
// and throws RevisionGapError without changing the state: the caller then
// rejoins (disconnect, join, resume).
//
// Exactly once: every submission carries the client id and a per-client
// sequence number. After a reconnect the client rejoins with its rev; the
// missed records are applied like broadcasts, except that a record with this
// client's id and the pending seq IS the pending op (the server applied it
// before the connection dropped) and counts as its ack. Then the pending op,
// if still unacknowledged, is resent with the same client id and seq (rebased
// on the new rev), so a server that already has it replies with its first
// revision instead of applying it twice.

import { isWellFormed } from './codepoints.js';
import { compose, normalize, isNoop, transform, validate } from './operation.js';

/** @typedef {import('./operation.js').Op} Op */
/** @typedef {{client: string, seq: number, rev: number, op: Op}} Submission */
/** @typedef {{rev: number, op: Op, client: string, seq: number}} OpRecord */

export const SYNCHRONIZED = 'synchronized';
export const AWAITING = 'awaiting';
export const AWAITING_WITH_BUFFER = 'awaiting-with-buffer';

/** Connection phases. */
export const OFFLINE = 'offline';
export const JOINING = 'joining';
export const ONLINE = 'online';

/** Version of the object written by toJSON. */
export const STATE_VERSION = 1;

/** RevisionGapError: an ack or a record skipped revisions; rejoin to catch up. */
export class RevisionGapError extends Error {
  /**
   * @param {number} have the client's revision
   * @param {number} got the revision that arrived
   */
  constructor(have, got) {
    super(`ot: revision gap: client is at ${have}, got ${got}`);
    this.name = 'RevisionGapError';
    this.have = have;
    this.got = got;
  }
}

/** ProtocolError: a message that contradicts the client's state. */
export class ProtocolError extends Error {
  constructor(message) {
    super(`ot: ${message}`);
    this.name = 'ProtocolError';
  }
}

export class OTClient {
  /**
   * @param {object} opts
   * @param {string} opts.client the client id sent with every submission
   * @param {number} opts.rev the server revision of the local document
   * @param {number} [opts.seq] the last sequence number used (0: none yet)
   */
  constructor({ client, rev, seq = 0 }) {
    if (typeof client !== 'string' || client === '') throw new TypeError('ot: client id must be a non-empty string');
    checkRev(rev);
    if (!Number.isSafeInteger(seq) || seq < 0) throw new TypeError('ot: seq must be a non-negative integer');
    this.client = client;
    this.rev = rev;
    this.seq = seq;
    /** @type {{seq: number, op: Op, sent: boolean} | null} the op in flight (sent may be false while offline) */
    this.pending = null;
    /** @type {Op | null} local edits made while pending is in flight */
    this.buffer = null;
    /** @type {string} OFFLINE, JOINING or ONLINE */
    this.connection = OFFLINE;
    /** @type {OpRecord[]} records that arrived while joining */
    this.early = [];
  }

  /** state is SYNCHRONIZED, AWAITING or AWAITING_WITH_BUFFER. */
  get state() {
    if (!this.pending) return SYNCHRONIZED;
    return this.buffer ? AWAITING_WITH_BUFFER : AWAITING;
  }

  /** unsent reports whether local edits wait for the server (pending or buffered). */
  get unsent() {
    return this.pending !== null;
  }

  /** localOp returns pending and buffer composed: the local edits the server has not acknowledged. */
  localOp() {
    if (!this.pending) return [];
    return this.buffer ? compose(this.pending.op, this.buffer) : this.pending.op;
  }

  /**
   * edit records a local edit, already applied to the local document.
   * It throws a TypeError, changing nothing, for an op the server would
   * reject: malformed, or inserting a lone surrogate (see wellFormedChanges).
   * @param {Op} op in code points, on the current local document
   * @returns {Submission | null} what to emit as doc:op, if anything
   */
  edit(op) {
    op = normalize(op);
    for (const c of op) {
      if (typeof c === 'string' && !isWellFormed(c)) throw new TypeError('ot: insert has a lone surrogate');
    }
    if (isNoop(op)) return null;
    if (!this.pending) {
      this.pending = { seq: ++this.seq, op, sent: false };
      return this.sendPending();
    }
    if (!this.pending.sent) {
      // Never sent (offline): nobody knows this seq yet, so grow it.
      this.pending.op = compose(this.pending.op, op);
      return null;
    }
    this.buffer = this.buffer ? compose(this.buffer, op) : op;
    return null;
  }

  /**
   * ack handles the ack of a doc:op submission. Call it inside the ack
   * callback. An ack for a seq that is no longer pending (from an earlier
   * connection, or a resubmission already counted) is ignored.
   * @param {number} seq the seq of the submission acknowledged
   * @param {number} rev the revision the server gave it
   * @returns {Submission | null} the buffered edits to emit next, if any
   */
  ack(seq, rev) {
    checkRev(rev);
    if (!this.pending || !this.pending.sent || this.pending.seq !== seq) return null;
    if (rev <= this.rev) throw new ProtocolError(`ack of seq ${seq} at revision ${rev}, client is at ${this.rev}`);
    if (rev !== this.rev + 1) throw new RevisionGapError(this.rev, rev);
    return this.acked(rev);
  }

  /**
   * receive handles a doc:op broadcast (a record of another client's op).
   * While joining, records are kept and handled by resume.
   * @param {OpRecord} record
   * @returns {{apply: Op | null, send: Submission | null}}
   */
  receive(record) {
    checkRecord(record);
    if (this.connection === OFFLINE) return { apply: null, send: null };
    if (this.connection === JOINING) {
      this.early.push(record);
      return { apply: null, send: null };
    }
    return this.handle(record, true);
  }

  /** disconnect marks the connection as gone; edits keep accumulating. */
  disconnect() {
    this.connection = OFFLINE;
    this.early = [];
  }

  /**
   * join starts a (re)join: it returns the fields of the doc:join payload
   * that belong to the OT state. Records received until resume are kept.
   * @returns {{client: string, rev: number}}
   */
  join() {
    this.connection = JOINING;
    this.early = [];
    return { client: this.client, rev: this.rev };
  }

  /**
   * resume completes a rejoin with the records of the doc:join ack (every op
   * after the rev sent in join, in revision order). It returns the op to
   * apply locally (all missed ops composed, transformed over the local edits)
   * and the pending op to resend (same client id and seq, rebased).
   * Records that arrived as broadcasts while joining are handled after them,
   * duplicates skipped. If the records leave a hole, it throws
   * RevisionGapError before changing anything (the client stays joining).
   * @param {OpRecord[]} records
   * @returns {{apply: Op | null, send: Submission | null}}
   */
  resume(records) {
    if (this.connection !== JOINING) throw new ProtocolError('resume without join');
    const all = [...records, ...this.early];
    all.forEach(checkRecord);
    // Check first, change after: the records must continue rev without holes.
    let rev = this.rev;
    const fresh = [];
    for (const r of all) {
      if (r.rev <= rev) continue;
      if (r.rev !== rev + 1) throw new RevisionGapError(rev, r.rev);
      fresh.push(r);
      rev = r.rev;
    }
    let apply = null;
    for (const r of fresh) {
      const out = this.handle(r, false);
      if (out.apply) apply = apply ? compose(apply, out.apply) : out.apply;
    }
    this.early = [];
    this.connection = ONLINE;
    return { apply, send: this.pending ? this.sendPending() : null };
  }

  /**
   * resetTo completes a join whose ack carried the whole text at revision rev
   * instead of records (a first join, or a log that no longer reaches back to
   * this client's rev): the caller has replaced its document with that text.
   * Broadcasts kept while joining that are newer than rev are returned as the
   * op to apply on top of the text. It throws ProtocolError while local edits
   * are unacknowledged: those cannot be rebased without the missed ops.
   * @param {number} rev the revision of the text
   * @returns {{apply: Op | null, send: null}}
   */
  resetTo(rev) {
    checkRev(rev);
    if (this.connection !== JOINING) throw new ProtocolError('resetTo without join');
    if (this.pending) throw new ProtocolError('resetTo with unacknowledged local edits');
    const early = this.early.filter((r) => r.rev > rev);
    this.early = [];
    early.forEach(checkRecord);
    let at = rev;
    for (const r of early) {
      if (r.rev !== at + 1) throw new RevisionGapError(at, r.rev);
      at = r.rev;
    }
    this.rev = rev;
    let apply = null;
    for (const r of early) {
      const out = this.handle(r, false);
      if (out.apply) apply = apply ? compose(apply, out.apply) : out.apply;
    }
    this.connection = ONLINE;
    return { apply, send: null };
  }

  /**
   * rebase completes a join answered with the text at revision rev while
   * local edits are unacknowledged (the server's log no longer reaches back
   * to this client's rev, so resume cannot be used). The caller finds out,
   * with other requests, what happened between this.rev and rev:
   *
   *   applied false: the pending op is not on the server; missed is one op
   *     taking the server text at this.rev to the text at rev.
   *   applied true: the server applied the pending op; missed takes the
   *     server text at this.rev with the pending op applied locally to the
   *     text at rev.
   *
   * It returns the op to apply to the local document and the submission of
   * the remaining local edits (the same seq when the pending op is not on
   * the server). Broadcasts kept while joining that are newer than rev are
   * applied too.
   * @param {number} rev
   * @param {Op} missed
   * @param {boolean} applied
   * @param {boolean} [newSeq] send the rebased edits with a new seq, not the
   *   pending op's (after gone: the server cannot tell whether that seq was
   *   applied, so the edits go out as a new op)
   * @returns {{apply: Op | null, send: Submission | null}}
   */
  rebase(rev, missed, applied, newSeq = false) {
    checkRev(rev);
    if (this.connection !== JOINING) throw new ProtocolError('rebase without join');
    missed = normalize(validate(missed));
    const early = this.early.filter((r) => r.rev > rev);
    early.forEach(checkRecord);
    let at = rev;
    for (const r of early) {
      if (r.rev !== at + 1) throw new RevisionGapError(at, r.rev);
      at = r.rev;
    }
    this.early = [];
    let apply = null;
    if (this.pending) {
      let local;
      if (applied) {
        if (!this.pending.sent) throw new ProtocolError('rebase: an unsent op cannot be on the server');
        local = this.buffer;
        this.pending = null;
      } else {
        local = this.localOp();
        if (!newSeq) this.seq = this.pending.seq - 1; // the same seq goes out again
        this.pending = null;
      }
      this.buffer = null;
      const [m, l] = local ? transform(missed, local) : [missed, null];
      apply = isNoop(m) ? null : m;
      if (l && !isNoop(l)) this.pending = { seq: ++this.seq, op: l, sent: false };
    } else {
      apply = isNoop(missed) ? null : missed;
    }
    this.rev = rev;
    for (const r of early) {
      const out = this.handle(r, false);
      if (out.apply) apply = apply ? compose(apply, out.apply) : out.apply;
    }
    this.connection = ONLINE;
    return { apply, send: this.pending ? this.sendPending() : null };
  }

  /**
   * toJSON returns the state to persist (localStorage or IndexedDB) so that
   * unsent edits survive a reload. Store the local document text with it.
   */
  toJSON() {
    return {
      v: STATE_VERSION,
      client: this.client,
      rev: this.rev,
      seq: this.seq,
      pending: this.pending ? { seq: this.pending.seq, op: this.pending.op, sent: this.pending.sent } : null,
      buffer: this.buffer,
    };
  }

  /**
   * fromJSON restores a client saved with toJSON. It starts offline: call
   * join, then resume with the doc:join ack's records.
   * @param {unknown} data the parsed object
   * @returns {OTClient}
   */
  static fromJSON(data) {
    if (!data || typeof data !== 'object') throw new TypeError('ot: saved state must be an object');
    const d = /** @type {any} */ (data);
    if (d.v !== STATE_VERSION) throw new TypeError(`ot: saved state version ${d.v}, want ${STATE_VERSION}`);
    const c = new OTClient({ client: d.client, rev: d.rev, seq: d.seq });
    if (d.pending) {
      const p = d.pending;
      if (!Number.isSafeInteger(p.seq) || p.seq < 1 || p.seq > c.seq) throw new TypeError('ot: saved pending seq out of range');
      // A sent pending op may have become empty (transformed over a remote
      // delete of the same text): it is still resent, the server must ack it.
      c.pending = { seq: p.seq, op: normalize(validate(p.op)), sent: p.sent === true };
    }
    if (d.buffer) {
      if (!c.pending) throw new TypeError('ot: saved buffer without pending');
      const op = normalize(validate(d.buffer));
      c.buffer = isNoop(op) ? null : op;
    }
    return c;
  }

  // sendPending marks pending as sent and returns its submission, or returns
  // null while not online (it is sent by resume or online later).
  sendPending() {
    if (this.connection !== ONLINE || !this.pending) return null;
    this.pending.sent = true;
    return { client: this.client, seq: this.pending.seq, rev: this.rev, op: this.pending.op };
  }

  // acked moves on after pending got revision rev.
  acked(rev) {
    this.rev = rev;
    this.pending = null;
    if (!this.buffer) return null;
    this.pending = { seq: ++this.seq, op: this.buffer, sent: false };
    this.buffer = null;
    return this.sendPending();
  }

  // handle applies one record in revision order. With live set, the record is
  // checked against rev (duplicates ignored, gaps thrown).
  handle(record, live) {
    if (live) {
      if (record.rev <= this.rev) return { apply: null, send: null };
      if (record.rev !== this.rev + 1) throw new RevisionGapError(this.rev, record.rev);
    }
    if (this.pending && this.pending.sent && record.client === this.client && record.seq === this.pending.seq) {
      // Our own pending op, applied by the server: it is the ack.
      const send = this.acked(record.rev);
      return { apply: null, send: live ? send : null };
    }
    let op = normalize(record.op);
    if (this.pending) {
      // The server sequenced record before our pending op: it goes first.
      const [op1, pending1] = transform(op, this.pending.op);
      this.pending.op = pending1;
      op = op1;
      if (this.buffer) {
        const [op2, buffer1] = transform(op, this.buffer);
        this.buffer = isNoop(buffer1) ? null : buffer1;
        op = op2;
      }
      if (!this.pending.sent && isNoop(this.pending.op)) {
        // Never sent and now empty: forget it and give its seq back. (A sent
        // op stays even when empty: the server may hold it and must ack it.)
        // An unsent pending never has a buffer: edits grow it instead.
        this.seq = this.pending.seq - 1;
        this.pending = null;
      }
    }
    this.rev = record.rev;
    return { apply: op, send: null };
  }
}

function checkRev(rev) {
  if (!Number.isSafeInteger(rev) || rev < 0) throw new TypeError(`ot: revision must be a non-negative integer, got ${rev}`);
}

function checkRecord(r) {
  if (!r || typeof r !== 'object') throw new TypeError('ot: record must be an object');
  checkRev(r.rev);
  validate(r.op);
}
