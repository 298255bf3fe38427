package collab

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/collabd/collabd/collab/ot"
	"github.com/collabd/collabd/storage"
)

// committer is the one write path: a goroutine that takes every document's
// sequenced but uncommitted records and stores them in one transaction (one
// fsync), then releases the waiting Submits and feeds the subscribers.
// While a batch is being committed, the documents keep sequencing the next
// one in memory.
type committer struct {
	h    *Hub
	wake chan struct{} // capacity 1: something was queued

	mu     sync.Mutex  // guards dirty and closed
	dirty  []*document // documents with records after handed
	closed bool        // no more enqueues; run drains and returns

	queued atomic.Int64 // records sequenced and not yet taken into a batch

	// Counters for Stats.
	commits, ops, failed, nanos atomic.Uint64
	// Counters for the benchmarks: time spent lingering, lingers cut
	// short by their deadline.
	lingerNanos, lingerExpired atomic.Uint64
}

func newCommitter(h *Hub) *committer {
	return &committer{h: h, wake: make(chan struct{}, 1)}
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

// added counts one sequenced record and wakes the committer.
func (c *committer) added() {
	c.queued.Add(1)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// item is one document's part of a batch.
type item struct {
	d        *document
	recs     []storage.Record
	to       uint64  // newest revision in recs
	text     ot.Text // text at to
	snapRev  uint64  // snapshot to write, 0 for none
	snapText ot.Text
	wait     *commitWait
}

// run is the committer loop. It returns once closed and drained.
func (c *committer) run() {
	var (
		target   int64         // records expected in the next batch
		lastTime time.Duration // duration of the previous commit
		items    []item
		writes   []storage.Write
	)
	for {
		<-c.wake
		// Linger: the Submits released by the previous commit are coming
		// back with their next op. Let them run (yield while the queue
		// grows, else wait for a wake-up) until all are queued, next to
		// what was sequenced during that commit, or until a quarter of a
		// commit time (at least 100µs, at most 2ms) has passed, so that
		// one commit serves them all instead of one small batch and one
		// of the rest.
		if n := c.queued.Load(); n > 0 && n < target && lastTime > 0 {
			wait := min(max(lastTime/4, 100*time.Microsecond), 2*time.Millisecond)
			t0 := time.Now()
			deadline := t0.Add(wait)
			timer := time.NewTimer(wait)
			for c.queued.Load() < target && time.Now().Before(deadline) {
				before := c.queued.Load()
				runtime.Gosched()
				if c.queued.Load() > before {
					continue
				}
				select {
				case <-c.wake:
				case <-timer.C:
				}
			}
			timer.Stop()
			c.lingerNanos.Add(uint64(time.Since(t0)))
			if c.queued.Load() < target {
				c.lingerExpired.Add(1)
			}
		}
		c.mu.Lock()
		dirty, closed := c.dirty, c.closed
		c.dirty = nil
		c.mu.Unlock()
		items, writes = c.take(dirty, items[:0], writes[:0])
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
				c.fail(items, err)
			} else {
				c.ops.Add(uint64(n))
				if obs := c.h.cfg.ObserveCommit; obs != nil {
					obs(int(n), lastTime)
				}
				c.succeed(items)
			}
			clear(items)
			clear(writes)
		}
		if closed {
			c.mu.Lock()
			empty := len(c.dirty) == 0
			c.mu.Unlock()
			if empty {
				return
			}
		}
		if c.queued.Load() > 0 || closed { // more was queued while committing, or draining
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
}

// take moves the uncommitted records of the dirty documents into a batch.
func (c *committer) take(dirty []*document, items []item, writes []storage.Write) ([]item, []storage.Write) {
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
		it.recs = make([]storage.Record, 0, n)
		for rev := d.handed + 1; rev <= d.head; rev++ {
			e := d.at(rev)
			it.recs = append(it.recs, e.rec)
			if rev%every == 0 {
				it.snapRev, it.snapText = rev, e.text
			}
		}
		if it.snapRev != 0 {
			d.snapRev = it.snapRev
		}
		d.handed = d.head
		d.wait = nil
		d.mu.Unlock()
		c.queued.Add(-int64(n))
		items = append(items, it)
	}
	for i := range items {
		it := &items[i]
		w := storage.Write{Doc: it.d.id, Records: it.recs}
		if it.snapRev != 0 {
			w.Snapshot = &storage.Snapshot{Rev: it.snapRev, Text: it.snapText.String()}
		}
		writes = append(writes, w)
	}
	return items, writes
}

// succeed advances the committed state, releases the waiters and feeds the
// subscribers, in revision order per document.
func (c *committer) succeed(items []item) {
	for i := range items {
		it := &items[i]
		d := it.d
		d.mu.Lock()
		for rev := d.committed + 1; rev <= it.to; rev++ {
			e := d.at(rev)
			e.text, e.wait = ot.Text{}, nil
		}
		d.committed, d.committedText = it.to, it.text
		d.trim()
		subs := d.subs
		d.mu.Unlock()
		for _, s := range subs {
			for _, r := range it.recs {
				s.fn(r)
			}
		}
		// After the subscribers: when Submit returns, every subscriber
		// has been handed the record.
		close(it.wait.done)
	}
}

// fail rolls every document of a failed batch back to its committed state,
// dropping the records sequenced on top of the failed ones too, and fails
// all their Submits with internal.
func (c *committer) fail(items []item, cause error) {
	err := &Error{Code: CodeInternal, Message: "commit failed", Err: cause}
	for i := range items {
		it := &items[i]
		d := it.d
		d.mu.Lock()
		pending, pendingWait := d.head-d.handed, d.wait
		keep := len(d.log) - int(d.head-d.committed)
		clear(d.log[keep:]) // drop the texts the rolled back entries hold
		d.log = d.log[:keep]
		d.epoch++
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
	}
}

// trim drops old committed entries once the log holds twice the retained
// count. mu must be held.
func (d *document) trim() {
	keep := d.h.cfg.Retain
	if len(d.log) <= 2*keep {
		return
	}
	drop := len(d.log) - keep
	if uncommitted := int(d.head - d.committed); len(d.log)-drop < uncommitted {
		drop = len(d.log) - uncommitted
	}
	n := make([]entry, len(d.log)-drop, max(len(d.log)-drop, keep)+keep/2)
	copy(n, d.log[drop:])
	clear(d.log)
	d.log = n
}
