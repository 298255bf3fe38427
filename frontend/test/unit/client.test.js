import test from 'node:test';
import assert from 'node:assert/strict';

import {
  AWAITING,
  AWAITING_WITH_BUFFER,
  JOINING,
  OFFLINE,
  ONLINE,
  OTClient,
  ProtocolError,
  RevisionGapError,
  SYNCHRONIZED,
} from '../../src/ot/client.js';

/** online returns a client that joined at rev and is online. */
function online(rev = 0, client = 'me') {
  const c = new OTClient({ client, rev });
  c.join();
  assert.deepEqual(c.resume([]), { apply: null, send: null });
  assert.equal(c.connection, ONLINE);
  return c;
}

const rec = (rev, op, client = 'other', seq = 1) => ({ rev, op, client, seq });

test('states: send, buffer, compose, ack', () => {
  const c = online(5);
  assert.equal(c.state, SYNCHRONIZED);

  assert.deepEqual(c.edit([1, 'a']), { client: 'me', seq: 1, rev: 5, op: [1, 'a'] });
  assert.equal(c.state, AWAITING);

  assert.equal(c.edit([2, 'b']), null, 'a second edit waits for the ack');
  assert.equal(c.state, AWAITING_WITH_BUFFER);
  assert.equal(c.edit([3, 'c']), null);
  assert.deepEqual(c.buffer, [2, 'bc'], 'buffered edits are composed');
  assert.deepEqual(c.localOp(), [1, 'abc']);

  assert.deepEqual(c.ack(1, 6), { client: 'me', seq: 2, rev: 6, op: [2, 'bc'] }, 'the ack sends the buffer');
  assert.equal(c.state, AWAITING);
  assert.equal(c.rev, 6);

  assert.equal(c.ack(2, 7), null);
  assert.equal(c.state, SYNCHRONIZED);
  assert.equal(c.rev, 7);
  assert.deepEqual(c.localOp(), []);
});

test('an empty edit sends nothing', () => {
  const c = online();
  assert.equal(c.edit([]), null);
  assert.equal(c.edit([4]), null);
  assert.equal(c.state, SYNCHRONIZED);
  assert.equal(c.seq, 0);
});

test('an edit inserting a lone surrogate throws and changes nothing', () => {
  const c = online();
  assert.throws(() => c.edit([1, 'a\ud83d']), TypeError);
  assert.throws(() => c.edit([1, 1.5]), TypeError);
  assert.equal(c.state, SYNCHRONIZED);
  assert.equal(c.seq, 0);
});

test('acks that do not match the pending seq are ignored', () => {
  const c = online(0);
  assert.equal(c.ack(1, 1), null, 'nothing pending');
  c.edit(['x']);
  assert.equal(c.ack(7, 1), null, 'other seq');
  assert.equal(c.state, AWAITING);
  assert.equal(c.rev, 0);
});

test('acks out of order throw and change nothing', () => {
  const c = online(3);
  c.edit(['x']);
  assert.throws(() => c.ack(1, 5), RevisionGapError);
  assert.throws(() => c.ack(1, 3), ProtocolError);
  assert.equal(c.state, AWAITING);
  assert.equal(c.rev, 3);
  c.ack(1, 4);
  assert.equal(c.state, SYNCHRONIZED);
});

test('remote op while synchronized is applied as is', () => {
  const c = online(0);
  assert.deepEqual(c.receive(rec(1, [2, '😀'])), { apply: [2, '😀'], send: null });
  assert.equal(c.rev, 1);
});

test('remote op is transformed over pending and buffer; the server op goes first', () => {
  // Document "ab". We typed X then Y at position 1; another client typed R at 1
  // and the server sequenced it before our X.
  const c = online(0);
  c.edit([1, 'X']);
  c.edit([2, 'Y']);
  const out = c.receive(rec(1, [1, 'R']));
  // Locally "aXYb" -> "aRXYb": R goes before our pending text.
  assert.deepEqual(out, { apply: [1, 'R'], send: null });
  assert.deepEqual(c.pending.op, [2, 'X'], 'pending rebased after R');
  assert.deepEqual(c.buffer, [3, 'Y'], 'buffer rebased after R');
  assert.equal(c.rev, 1);
  // The ack now carries rev 2 and sends the rebased buffer based on it.
  assert.deepEqual(c.ack(1, 2), { client: 'me', seq: 2, rev: 2, op: [3, 'Y'] });
});

test('remote op counts code points', () => {
  const c = online(0);
  c.edit([1, '漢']); // doc "😀b" -> "😀漢b"
  const out = c.receive(rec(1, [2, '!'])); // "😀b" -> "😀b!"
  assert.deepEqual(out.apply, [3, '!']);
  assert.deepEqual(c.pending.op, [1, '漢']);
});

test('duplicate records are ignored, gaps throw and change nothing', () => {
  const c = online(4);
  c.edit(['x']);
  assert.deepEqual(c.receive(rec(4, ['old'])), { apply: null, send: null });
  assert.deepEqual(c.receive(rec(2, ['older'])), { apply: null, send: null });
  assert.throws(() => c.receive(rec(6, ['y'])), (err) => err instanceof RevisionGapError && err.have === 4 && err.got === 6);
  assert.equal(c.rev, 4);
  assert.deepEqual(c.pending.op, ['x']);
});

test('records before join are ignored, records while joining wait for resume', () => {
  const c = new OTClient({ client: 'me', rev: 2 });
  assert.equal(c.connection, OFFLINE);
  assert.deepEqual(c.receive(rec(3, ['a'])), { apply: null, send: null });
  assert.deepEqual(c.join(), { client: 'me', rev: 2 });
  assert.equal(c.connection, JOINING);
  // The socket joined the room before the server read the log: rev 4 arrives
  // as a broadcast before the join ack that holds 3 and 4.
  assert.deepEqual(c.receive(rec(4, ['b'], 'other', 2)), { apply: null, send: null });
  const out = c.resume([rec(3, ['a']), rec(4, ['b'], 'other', 2)]);
  assert.deepEqual(out, { apply: ['ba'], send: null });
  assert.equal(c.rev, 4);
  // A broadcast after resume is handled live.
  assert.deepEqual(c.receive(rec(5, ['c'], 'other', 3)).apply, ['c']);
});

test('resume throws on a hole and stays joining', () => {
  const c = new OTClient({ client: 'me', rev: 0 });
  c.join();
  assert.throws(() => c.resume([rec(1, ['a']), rec(3, ['b'])]), RevisionGapError);
  assert.equal(c.rev, 0);
  assert.equal(c.connection, JOINING);
  assert.throws(() => new OTClient({ client: 'me', rev: 0 }).resume([]), ProtocolError, 'resume without join');
});

test('resetTo: a join answered with the text', () => {
  const c = new OTClient({ client: 'me', rev: 0 });
  assert.throws(() => c.resetTo(3), ProtocolError, 'not joining');
  c.join();
  // Broadcasts racing the join ack: rev 3 is in the text already, 4 and 5 are not.
  c.receive(rec(3, ['a']));
  c.receive(rec(4, ['b'], 'other', 2));
  c.receive(rec(5, [1, 'c'], 'other', 3));
  assert.deepEqual(c.resetTo(3), { apply: ['bc'], send: null });
  assert.equal(c.rev, 5);
  assert.equal(c.connection, ONLINE);
  assert.equal(c.edit(['x']).rev, 5);
});

test('resetTo refuses to drop local edits and reports holes', () => {
  const c = online(0);
  c.edit(['x']);
  c.disconnect();
  c.join();
  assert.throws(() => c.resetTo(7), ProtocolError);
  assert.deepEqual(c.pending.op, ['x']);
  const d = new OTClient({ client: 'me', rev: 0 });
  d.join();
  d.receive(rec(9, ['z']));
  assert.throws(() => d.resetTo(7), RevisionGapError);
});

test('offline edits grow one unsent op, sent on resume', () => {
  const c = online(0);
  c.disconnect();
  assert.equal(c.edit(['a']), null);
  assert.equal(c.edit([1, 'b']), null);
  assert.equal(c.state, AWAITING);
  assert.deepEqual(c.pending, { seq: 1, op: ['ab'], sent: false });
  assert.ok(c.unsent);
  c.join();
  const out = c.resume([rec(1, ['Z'])]);
  assert.deepEqual(out.apply, ['Z']);
  assert.deepEqual(out.send, { client: 'me', seq: 1, rev: 1, op: [1, 'ab'] }, 'one submission, after Z');
});

test('reconnect: own pending op among the missed records is its ack', () => {
  // Our op (seq 1) reached the server, which gave it rev 2, but the
  // connection dropped before the ack. A buffer waits behind it.
  const c = online(0);
  c.edit(['a']);
  c.edit([1, 'b']);
  c.disconnect();
  c.join();
  const out = c.resume([rec(1, ['Q']), rec(2, [1, 'a'], 'me', 1), rec(3, [-1], 'other', 2)]);
  // Missed: Q inserted (rev 1), our "a" (rev 2, after Q), Q deleted (rev 3).
  // Locally Q comes and goes: the composed op to apply is empty.
  assert.deepEqual(out.apply, []);
  assert.deepEqual(out.send, { client: 'me', seq: 2, rev: 3, op: [1, 'b'] }, 'the buffer goes out as the next seq');
  assert.equal(c.state, AWAITING);
});

test('reconnect: pending op not applied is resent with the same seq, rebased', () => {
  const c = online(0);
  assert.equal(c.edit([1, 'x']).seq, 1);
  c.disconnect();
  c.join();
  const out = c.resume([rec(1, ['😀'])]);
  assert.deepEqual(out.apply, ['😀']);
  assert.deepEqual(out.send, { client: 'me', seq: 1, rev: 1, op: [2, 'x'] });
});

test('a resubmission acked after its record is ignored', () => {
  // The old connection's op was applied after we rejoined; the server sent its
  // record to our new socket, then acked our resubmission with the first rev.
  const c = online(0);
  c.edit(['a']);
  c.disconnect();
  c.join();
  assert.equal(c.resume([]).send.seq, 1);
  assert.deepEqual(c.receive(rec(1, ['a'], 'me', 1)), { apply: null, send: null });
  assert.equal(c.state, SYNCHRONIZED);
  assert.equal(c.ack(1, 1), null);
  assert.equal(c.rev, 1);
});

test('broadcasts skipping our client id: a gap, then a rejoin finds our op', () => {
  const c = online(0);
  c.edit(['a']);
  c.disconnect();
  c.join();
  c.resume([]);
  // Server: old connection's seq 1 applied as rev 1 (not sent to us), then
  // another client's op as rev 2, sent to us before the ack of our resend.
  assert.throws(() => c.receive(rec(2, ['b'])), RevisionGapError);
  c.disconnect();
  c.join();
  const out = c.resume([rec(1, ['a'], 'me', 1), rec(2, ['b'])]);
  assert.deepEqual(out, { apply: ['b'], send: null });
  assert.equal(c.state, SYNCHRONIZED);
  assert.equal(c.rev, 2);
});

test('an unsent op emptied by a remote delete is dropped and its seq reused', () => {
  const c = online(0);
  c.disconnect();
  c.edit([1, -1]); // delete the second character, offline
  c.join();
  const out = c.resume([rec(1, [-2])]); // someone deleted both
  assert.deepEqual(out, { apply: [-1], send: null });
  assert.equal(c.state, SYNCHRONIZED);
  assert.equal(c.seq, 0);
  assert.equal(c.edit(['x']).seq, 1);
});

test('a sent op emptied by a remote delete is still resent', () => {
  const c = online(0);
  c.edit([1, -1]);
  c.disconnect();
  c.join();
  const out = c.resume([rec(1, [-2])]);
  assert.deepEqual(out.send, { client: 'me', seq: 1, rev: 1, op: [] });
});

test('saved state round trip', () => {
  const c = online(9);
  c.edit(['a']);
  c.edit([1, 'b']);
  const saved = JSON.parse(JSON.stringify(c));
  assert.deepEqual(saved, {
    v: 1,
    client: 'me',
    rev: 9,
    seq: 1,
    pending: { seq: 1, op: ['a'], sent: true },
    buffer: [1, 'b'],
  });
  const r = OTClient.fromJSON(saved);
  assert.equal(r.connection, OFFLINE);
  assert.equal(r.state, AWAITING_WITH_BUFFER);
  assert.deepEqual(r.join(), { client: 'me', rev: 9 });
  assert.deepEqual(r.resume([]).send, { client: 'me', seq: 1, rev: 9, op: ['a'] });
  assert.deepEqual(r.ack(1, 10), { client: 'me', seq: 2, rev: 10, op: [1, 'b'] });
});

test('fromJSON rejects broken state', async (t) => {
  const good = { v: 1, client: 'me', rev: 1, seq: 2, pending: { seq: 2, op: ['a'], sent: true }, buffer: null };
  const cases = [
    { name: 'not an object', data: 'x' },
    { name: 'other version', data: { ...good, v: 2 } },
    { name: 'no client', data: { ...good, client: '' } },
    { name: 'negative rev', data: { ...good, rev: -1 } },
    { name: 'pending seq above seq', data: { ...good, pending: { seq: 3, op: ['a'] } } },
    { name: 'bad op', data: { ...good, pending: { seq: 2, op: [1.5] } } },
    { name: 'buffer without pending', data: { ...good, pending: null, buffer: ['b'] } },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      assert.throws(() => OTClient.fromJSON(c.data), TypeError);
    });
  }
  assert.equal(OTClient.fromJSON(good).pending.seq, 2);
});
