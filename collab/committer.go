package collab

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// committer is the one write path: a goroutine that takes every document's
// sequenced but uncommitted records and stores them with one Store.Commit
// (storage.Bolt: one journal append and one fdatasync), then feeds the
// subscribers and releases the waiting Submits and SubmitAsync callbacks.
// While a batch is being committed, the documents keep sequencing the next
// one in memory.
type committer struct {
	h *Hub
	// wake (capacity 1) wakes the committer when it sleeps: sent by the
	// Submit that brings queued up to waitFor, and by close. A token may be
	// stale; the committer re-checks queued.
	wake chan struct{}

	mu     sync.Mutex  // guards dirty and closed
	dirty  []*document // documents with records after handed
	closed bool        // no more enqueues; run drains and returns

	queued  atomic.Int64 // records sequenced and not yet taken into a batch
	waitFor atomic.Int64 // queued count the sleeping committer waits for (MaxInt64: not sleeping)
	closing atomic.Bool  // close was called

	// Counters for Stats.
	commits, ops, failed, nanos atomic.Uint64
	// Counters for the benchmarks: time spent lingering, lingers that
	// gave up (deadline or idle queue) before their target.
	lingerNanos, lingerExpired atomic.Uint64
}

func newCommitter(h *Hub) *committer {
	c := &committer{h: h, wake: make(chan struct{}, 1)}
	c.waitFor.Store(math.MaxInt64)
	return c
}

// enqueue adds d to the dirty list; false after close. d.mu must be held.
func (c *committer) enqueue(d *document) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.dirty = append(c.dirty, d)
	return true
}

// added counts one sequenced record and wakes the committer if it sleeps
// waiting for that many. Most calls touch only the two atomics: a Submit
// does not pay a goroutine wake-up, and submitters do not contend on the
// channel, while the committer commits or lingers.
func (c *committer) added() {
	if c.queued.Add(1) >= c.waitFor.Load() {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// sleep blocks until at least n records are queued or the hub closes.
// Because queued is incremented before waitFor is read, and waitFor is
// stored before queued is read, no wake-up is lost.
func (c *committer) sleep(n int64) {
	c.waitFor.Store(n)
	for c.queued.Load() < n && !c.closing.Load() {
		<-c.wake
	}
	c.waitFor.Store(math.MaxInt64)
}

func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.closing.Store(true)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// item is one document's part of a batch.
type item struct {
	d        *document
	recs     []storage.Record // recs[lo:hi] of the batch
	lo, hi   int
	to       uint64  // newest revision in recs
	text     ot.Text // text at to
	snapRev  uint64  // regular snapshot to write, 0 for none
	snapText ot.Text
	headRev  uint64 // head snapshot to write (into the slot), 0 for none
	headText ot.Text
	wait     *commitWait
}

// run is the committer loop. It returns once closed and drained.
func (c *committer) run() {
	var (
		target   int64         // records expected in the next batch
		lastTime time.Duration // duration of the previous commit
		items    []item
		writes   []storage.Write
		recs     []storage.Record // every item's records, reused from batch to batch
	)
	for {
		c.sleep(1)
		if n := c.queued.Load(); n > 0 && n < target && target > 0 {
			c.linger(target, lastTime)
		}
		c.mu.Lock()
		dirty, closed := c.dirty, c.closed
		c.dirty = nil
		c.mu.Unlock()
		items, writes, recs = c.take(dirty, items[:0], writes[:0], recs[:0])
		if len(items) > 0 {
			start := time.Now()
			err := c.h.store.Commit(context.Background(), writes)
			lastTime = time.Since(start)
			c.commits.Add(1)
			c.nanos.Add(uint64(lastTime))
			var n int64
			for i := range items {
				n += int64(len(items[i].recs))
			}
			// Expect the released Submits back, plus what queued meanwhile.
			target = n + c.queued.Load()
			if err != nil {
				c.failed.Add(1)
			}
			c.settle(items, err, lastTime)
			clear(items)
			clear(writes)
			clear(recs)
		}
		if closed {
			c.mu.Lock()
			empty := len(c.dirty) == 0
			c.mu.Unlock()
			if empty {
				return
			}
		}
	}
}

// linger waits for the Submits released by the previous commit to come
// back with their next op, so that one commit serves them all instead of
// a small batch now and the rest a commit later. It sleeps, woken by the
// Submits each time the queue has come a quarter of the rest of the way
// (yielding instead would queue the committer behind every runnable
// submitter, thousands of them with many documents), and returns:
//   - once target records are queued (the released ones next to those
//     sequenced during that commit);
//   - once, over an eighth of a commit time (100µs to 250µs), the queue has
//     not grown (the released clients had no next op ready) or has grown
//     more slowly than the batch so far was filled (waiting on would lower
//     the throughput); a period in which the process itself did not run
//     (its timer fired late) does not count;
//   - after half a commit time (at least 200µs, at most 50ms) in any case.
//     A commit's cost is mostly its sync, which hardly grows with the
//     number of ops it carries, so the longer it is, the more it is worth
//     waiting to fill it.
func (c *committer) linger(target int64, lastTime time.Duration) {
	t0 := time.Now()
	deadline := t0.Add(min(max(lastTime/2, 200*time.Microsecond), 50*time.Millisecond))
	idle := min(max(lastTime/8, 100*time.Microsecond), 250*time.Microsecond)
	defer c.waitFor.Store(math.MaxInt64)
	timer := time.NewTimer(idle)
	defer timer.Stop()
	n := c.queued.Load()
	for n < target && !c.closing.Load() {
		left := time.Until(deadline)
		if left <= 0 {
			c.lingerExpired.Add(1)
			break
		}
		c.waitFor.Store(min(target, n+max(1, (target-n)/4)))
		if m := c.queued.Load(); m > n {
			n = m // grew before waitFor was seen
			continue
		}
		wait := min(idle, left)
		armed := time.Now()
		timer.Reset(wait)
		select {
		case <-c.wake: // progress, or a stale token
			n = c.queued.Load()
			continue
		case <-timer.C:
		}
		m := c.queued.Load()
		// A timer that fires late means the process was not running (a
		// loaded machine): the submitters had no chance to come back, so
		// that period says nothing.
		if window := time.Since(armed); window < wait+wait/2 {
			// Idle, or arriving more slowly than the batch so far has
			// (waiting on would lower the throughput): commit now.
			sofar := float64(m) / float64(lastTime+time.Since(t0))
			if m == n || float64(m-n)/float64(window) < sofar {
				c.lingerExpired.Add(1)
				break
			}
		}
		n = m
	}
	c.lingerNanos.Add(uint64(time.Since(t0)))
}

// take moves the uncommitted records of the dirty documents into a batch.
// The records are appended to recs, which the items' recs slice once
// every document is taken (recs may move while it grows).
func (c *committer) take(dirty []*document, items []item, writes []storage.Write, recs []storage.Record) ([]item, []storage.Write, []storage.Record) {
	every := uint64(c.h.cfg.SnapshotEvery)
	for _, d := range dirty {
		d.mu.Lock()
		d.queued = false
		if d.head == d.handed {
			d.mu.Unlock()
			continue
		}
		it := item{d: d, to: d.head, text: d.text, wait: d.wait}
		n := d.head - d.handed
		start := len(recs)
		for rev := d.handed + 1; rev <= d.head; rev++ {
			e := d.at(rev)
			recs = append(recs, e.record(rev))
			switch d.snapshotDue(rev, e, every) {
			case snapRegular:
				it.snapRev, it.snapText = rev, e.text
				it.headRev, it.headText = 0, ot.Text{} // older: it would save nothing
			case snapHead:
				it.headRev, it.headText = rev, e.text
			}
		}
		it.lo, it.hi = start, len(recs)
		d.handed = d.head
		d.wait = nil
		d.mu.Unlock()
		c.queued.Add(-int64(n))
		items = append(items, it)
	}
	for i := range items {
		it := &items[i]
		it.recs = recs[it.lo:it.hi:it.hi]
		w := storage.Write{Doc: it.d.id, Records: it.recs}
		if it.snapRev != 0 {
			w.Snapshot = &storage.Snapshot{Rev: it.snapRev, Text: it.snapText.String()}
		}
		if it.headRev != 0 {
			w.HeadSnapshot = &storage.Snapshot{Rev: it.headRev, Text: it.headText.String()}
		}
		writes = append(writes, w)
	}
	return items, writes, recs
}

// settle reports the outcome of a commit to its items. A store shared by
// several nodes (storage.JetStream) applies each document's write on its
// own: err is then a *storage.WriteErrors with one outcome per write, and
// a write that lost the race to another node (storage.ErrStale) is
// sequenced again (cluster.go). Any other store's error fails the whole
// batch.
func (c *committer) settle(items []item, err error, took time.Duration) {
	errs := make([]error, len(items))
	var we *storage.WriteErrors
	switch {
	case err == nil:
	case errors.As(err, &we) && len(we.Errs) == len(items):
		copy(errs, we.Errs)
	default:
		for i := range errs {
			errs[i] = err
		}
	}
	var n int
	for i := range items {
		if ok(errs[i]) {
			n += len(items[i].recs)
		}
	}
	if n > 0 {
		c.ops.Add(uint64(n))
		if obs := c.h.cfg.ObserveCommit; obs != nil {
			obs(n, took)
		}
	}
	for i := range items {
		it := &items[i]
		switch e := errs[i]; {
		case ok(e):
			c.succeed(it)
		case errors.Is(e, storage.ErrStale):
			c.staleItem(it, e)
		default:
			c.fail(it, e)
		}
	}
}

// replayOpCost is what opening a document pays per op to replay beyond its
// bytes, in bytes of text: reading and parsing its record and applying it
// cost about as much as reading 256 bytes of a snapshot or of a fresh
// document's text (storage's BenchmarkOpenLargeHistory).
const replayOpCost = 256

// minSnapshotGap is the fewest revisions between snapshots taken for the
// replay cost, so that a small document does not store its text every op.
const minSnapshotGap = 16

// replayCost is the cost of replaying the op opJSON on open, in bytes of
// text read.
func replayCost(opJSON []byte) int { return len(opJSON) + replayOpCost }

// Kinds of snapshot (snapshotDue, snapshotKind).
const (
	snapNone    = iota
	snapRegular // kept with the history: storage.Write.Snapshot
	snapHead    // into the document's head slot: storage.Write.HeadSnapshot
)

// snapshotKind is where a snapshot at rev goes: a regular one on every
// multiple of every (TextAt and Diff rebuild old revisions from them, so
// they are kept), the head slot otherwise (only the newest is kept).
func snapshotKind(rev, every uint64) int {
	if rev%every == 0 {
		return snapRegular
	}
	return snapHead
}

// snapshotDue counts revision rev (entry e, not yet committed) into the
// replay cost and says which snapshot of its text is due, if any: a
// regular one every revisions, and a head one once replaying the ops
// since the newest snapshot would cost more than reading the text (but
// not before minSnapshotGap revisions). Opening a document then costs at
// most about twice reading its text, however small its ops, while the
// extra snapshots take at most one text per document: each head snapshot
// replaces the previous one. mu must be held.
func (d *document) snapshotDue(rev uint64, e *entry, every uint64) int {
	if d.h.cluster {
		// In cluster mode a snapshot costs JetStream requests on the
		// ack's path (a regular one three: its text and a compare-and-set
		// of the index), and opening a document costs round trips that
		// dwarf the replay: at 1 x 8 through two nodes the replay-cost
		// cadence halved the throughput (collabd-load,
		// docs/architecture.md). Only the regular ones, then.
		if rev%every != 0 {
			return snapNone
		}
		d.snapRev, d.replay = rev, 0
		return snapRegular
	}
	d.replay += replayCost(e.opJSON)
	kind := snapshotKind(rev, every)
	if kind == snapHead && (rev-d.snapRev < minSnapshotGap || d.replay < e.text.ByteLen()) {
		return snapNone
	}
	d.snapRev, d.replay = rev, 0
	return kind
}

// ok reports whether a write's records are durable: no error, or only its
// snapshot (an optimization of reads) is missing.
func ok(err error) bool { return err == nil || errors.Is(err, storage.ErrSnapshotNotStored) }

// succeed advances the committed state, feeds the subscribers and then
// releases the waiters, in revision order.
func (c *committer) succeed(it *item) {
	d := it.d
	d.deliver.Lock()
	d.mu.Lock()
	for rev := d.committed + 1; rev <= it.to; rev++ {
		e := d.at(rev)
		e.text, e.wait, e.src = ot.Text{}, nil, nil
	}
	d.committed, d.committedText = it.to, it.text
	d.trim()
	subs := d.subs
	cbs := it.wait.cbs
	it.wait.cbs = nil
	d.mu.Unlock()
	feedSubs(subs, it.recs)
	if on := c.h.cfg.OnCommitted; on != nil {
		on(d.id, it.recs)
	}
	// After the subscribers: when Submit returns, every subscriber
	// has been handed the record.
	close(it.wait.done)
	for _, cb := range cbs {
		cb.fn(cb.rev, nil)
	}
	c.settleRemote(d)
	d.deliver.Unlock()
}

// settleRemote integrates the records other nodes appended meanwhile
// (cluster mode). d.deliver must be held.
func (c *committer) settleRemote(d *document) {
	if !c.h.cluster {
		return
	}
	d.mu.Lock()
	d.notify()
	applied, calls := d.settleLocked()
	subs := d.subs
	d.mu.Unlock()
	feedSubs(subs, applied)
	run(calls)
}

// fail rolls the document of a failed write back to its committed state,
// dropping the records sequenced on top of the failed ones too, and fails
// their Submits: with unavailable when the store could not be reached (in
// cluster mode), else with internal.
func (c *committer) fail(it *item, cause error) {
	err := &Error{Code: contract.CodeInternal, Message: "commit failed", Err: cause}
	if errors.Is(cause, storage.ErrUnavailable) {
		err = &Error{Code: contract.CodeUnavailable, Message: "the shared store is unreachable; resend the op (it is applied once)", Err: cause}
	}
	d := it.d
	d.deliver.Lock()
	d.mu.Lock()
	pending, pendingWait := d.head-d.handed, d.wait
	cbs := it.wait.cbs
	it.wait.cbs = nil
	if pendingWait != nil {
		cbs = append(cbs, pendingWait.cbs...)
		pendingWait.cbs = nil
	}
	keep := len(d.log) - int(d.head-d.committed)
	clear(d.log[keep:]) // drop the texts the rolled back entries hold
	d.log = d.log[:keep]
	d.head, d.handed, d.text = d.committed, d.committed, d.committedText
	d.wait = nil
	if d.snapRev > d.committed {
		d.snapRev = 0 // unknown: the next eviction writes one
	}
	d.mu.Unlock()
	c.queued.Add(-int64(pending))
	it.wait.err = err
	close(it.wait.done)
	if pendingWait != nil {
		pendingWait.err = err
		close(pendingWait.done)
	}
	for _, cb := range cbs {
		cb.fn(0, err)
	}
	c.settleRemote(d)
	d.deliver.Unlock()
}

// logCap is the capacity of a document's log array: the retained count and
// a quarter more, so that trimming moves Retain entries every Retain/4 ops.
// The array only grows past it while more entries than that are
// uncommitted.
func (d *document) logCap() int {
	keep := d.h.cfg.Retain
	return keep + max(keep/4, 1)
}

// trim drops old committed entries once the log has reached logCap. mu must
// be held.
func (d *document) trim() {
	keep := d.h.cfg.Retain
	if len(d.log) < d.logCap() {
		return
	}
	drop := len(d.log) - keep
	if uncommitted := int(d.head - d.committed); len(d.log)-drop < uncommitted {
		drop = len(d.log) - uncommitted
	}
	// In place: the array keeps its capacity (about 1.25*Retain entries), so
	// the log neither reallocates nor grows again.
	n := copy(d.log, d.log[drop:])
	clear(d.log[n:])
	d.log = d.log[:n]
}
