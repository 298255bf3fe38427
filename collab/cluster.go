package collab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// Cluster mode: the store is shared with other nodes (it implements
// storage.Follower, as storage.JetStream does). Every node sequences
// every document; the store orders the appends of all nodes with a
// compare-and-set per document, so a document's log stays one gap-free
// sequence of revisions wherever its ops were sequenced.
//
// A document on this node is a client of that log. Its committed state is
// the log as this node has seen it; the ops sequenced here on top of it
// are appended by the committer. Two things bring other nodes' records in:
//
//   - the feed (storage.Follower), which delivers every append of every
//     node; records of documents live here are buffered in remote and
//     integrated as soon as nothing of this node is in flight for the
//     document (an append in flight either wins the race, and the records
//     behind it come next, or loses it);
//   - a catch-up read from the store, when the feed is behind: after an
//     append lost the race (storage.ErrStale), when the feed skipped a
//     revision, or when a client names a revision this node has not seen.
//
// Integrating another node's record at committed+1 rolls back the ops
// sequenced here and not yet appended (they were given revisions the
// other node took) and sequences them again at once, under the lock, each
// from its source (the op transformed to the committed revision it was
// first sequenced on), over the records now committed: the usual
// transform, with the usual exactly-once rule on (client, seq) — so an op
// a client resubmitted on another node after a failover is recognized
// there. Their callbacks follow them to their new revisions. After
// backoffAfter lost races an op waits a jittered backoff before each new
// attempt, and after maxAttempts it fails with unavailable.
//
// Other nodes' records reach the subscribers like local ones, in revision
// order (document.deliver); Config.OnCommitted sees only this node's.

const (
	// maxAttempts bounds how often one op is sequenced again after other
	// nodes won the race for its revision.
	maxAttempts = 50
	// backoffAfter is how many times an op is sequenced again at once
	// before each new attempt waits a jittered backoff: two or three
	// nodes gain nothing by waiting (the loser is late already), many
	// nodes racing for one hot document do.
	backoffAfter = 8
	// catchUpBatch is the number of records one catch-up read asks for.
	catchUpBatch = 1000
	// settleWait bounds how long a catch-up waits for this node's append
	// in flight to settle before it integrates what it read.
	settleWait = 30 * time.Second
	// feedGrace is how long a catch-up waits for the feed to bring the
	// records it needs before it reads them from the store: the feed
	// usually has them within a round trip, and a read costs several.
	feedGrace = 20 * time.Millisecond
)

// resub is an op rolled back in cluster mode, to be sequenced again, with
// the callbacks waiting for its outcome.
type resub struct {
	sub Submission
	src *source
	cbs []func(uint64, error)
}

// onFeed receives the records other nodes (and this one) append, from the
// store's feed: per document in revision order, on one goroutine.
func (h *Hub) onFeed(doc string, recs []storage.Record) {
	if len(recs) == 0 || h.closed.Load() {
		return
	}
	sh := h.shard(doc)
	sh.mu.RLock()
	d := sh.docs[doc]
	sh.mu.RUnlock()
	if d == nil {
		return // not live here: a load reads the store
	}
	d.deliver.Lock()
	defer d.deliver.Unlock()
	d.mu.Lock()
	if d.gone {
		d.mu.Unlock()
		return
	}
	d.buffer(recs)
	applied, calls := d.settleLocked()
	subs := d.subs
	d.mu.Unlock()
	feedSubs(subs, applied)
	run(calls)
}

// feedSubs hands records to the subscribers. d.deliver must be held.
func feedSubs(subs []*subscriber, recs []storage.Record) {
	for _, s := range subs {
		for _, r := range recs {
			s.fn(r)
		}
	}
}

// buffer adds records from the feed or a catch-up to remote, keeping it
// ascending and free of what is already committed or buffered. mu must be
// held.
func (d *document) buffer(recs []storage.Record) {
	for _, r := range recs {
		if r.Rev <= d.committed {
			continue
		}
		i, found := slices.BinarySearchFunc(d.remote, r.Rev, func(x storage.Record, rev uint64) int {
			return cmp.Compare(x.Rev, rev)
		})
		if !found {
			d.remote = slices.Insert(d.remote, i, r)
		}
	}
	d.notify()
}

// notify wakes a catch-up waiting for news of d. mu must be held.
func (d *document) notify() {
	if d.news != nil {
		close(d.news)
		d.news = nil
	}
}

// settleLocked integrates the buffered records when nothing of this node
// is in flight and no catch-up is running, and starts a catch-up when
// they leave a gap or when ops had to be rolled back. It returns the
// records integrated, for the subscribers. mu and deliver must be held.
//
// The callbacks it returns (outcomes known at once) must be called once mu
// is released.
func (d *document) settleLocked() ([]storage.Record, []func()) {
	if !d.loaded || d.catching || d.handed != d.committed || len(d.remote) == 0 {
		return nil, nil
	}
	applied, resubs, gap := d.integrate()
	var calls []func()
	if !gap {
		resubs, calls = d.resequenceLocked(resubs)
	}
	if gap || len(resubs) > 0 {
		target := d.committed
		if gap {
			target = d.remote[0].Rev - 1
		}
		d.startCatchUp(target, resubs)
	}
	return applied, calls
}

// resequenceLocked sequences rolled back ops again at once, in their order,
// each from its source over the log as it now is: the ops go on riding
// this node's next append instead of waiting for another goroutine. It
// returns the ops it cannot sequence here (a base the in-memory log no
// longer holds, an op due for a backoff, a document dropped meanwhile),
// for resequence, and the
// callbacks of outcomes known at once (a resubmission already in the log,
// an error), to be called once mu is released. mu must be held.
func (d *document) resequenceLocked(resubs []resub) (rest []resub, calls []func()) {
	for _, r := range resubs {
		if r.src == nil || d.gone || r.src.attempts > backoffAfter || r.src.base < d.oldest() || r.src.base > d.committed {
			rest = append(rest, r)
			continue
		}
		s := r.sub
		s.BaseRev, s.attempts = r.src.base, r.src.attempts
		rev, w, _, err := d.check(&s, s.BaseRev)
		if err == nil && rev == 0 {
			rev, w, err = d.finish(&s, s.BaseRev, r.src.op)
		}
		switch {
		case err != nil:
			calls = append(calls, func() { r.fail(err) })
		case w == nil: // already in the log, committed
			calls = append(calls, func() {
				for _, cb := range r.cbs {
					cb(rev, nil)
				}
			})
		default:
			for _, cb := range r.cbs {
				d.register(w, rev, cb)
			}
		}
	}
	return rest, calls
}

// run calls fns (callbacks collected under a lock).
func run(fns []func()) {
	for _, fn := range fns {
		fn()
	}
}

// integrate applies the buffered records that continue the committed log,
// rolling back this node's unappended ops first when there are any. It
// reports a gap when the buffer's first record is beyond committed+1. mu
// and deliver must be held, nothing in flight (handed == committed).
func (d *document) integrate() (applied []storage.Record, resubs []resub, gap bool) {
	for len(d.remote) > 0 {
		r := d.remote[0]
		if r.Rev <= d.committed {
			d.remote = d.remote[1:]
			continue
		}
		if r.Rev > d.committed+1 {
			return applied, resubs, true
		}
		if d.head > d.committed {
			resubs = append(resubs, d.rollback()...)
		}
		op, err := ot.ParseLimit(r.Op, ot.ParseOptions{MaxBytes: -1, MaxComponents: -1})
		var text ot.Text
		if err == nil {
			text, err = op.Apply(d.committedText)
		}
		if err != nil {
			// The shared log holds a record this node cannot apply: its
			// state is not the log's. Forget the document so that the
			// next use loads it again from the store.
			d.h.dropDocument(d)
			d.remote = nil
			return applied, resubs, false
		}
		d.remote = d.remote[1:]
		d.appendCommitted(newEntry(&r, op))
		d.head, d.committed, d.handed = r.Rev, r.Rev, r.Rev
		d.text, d.committedText = text, text
		applied = append(applied, r)
	}
	d.remote = nil // release the array
	return applied, resubs, false
}

// appendCommitted appends a committed entry to the log (its revision is
// head+1). mu must be held.
func (d *document) appendCommitted(e entry) {
	if len(d.log) == cap(d.log) {
		if cap(d.log) == 0 {
			d.log = make([]entry, 0, d.logCap())
		}
		d.trim()
	}
	d.log = append(d.log, e)
}

// rollback removes every uncommitted entry (committed+1 to head, handed or
// not) and returns them as ops to sequence again, each with the
// callbacks registered on its revision. The waits they shared are
// released (their callbacks moved). mu must be held; the committer must not
// hold any of them in flight (it calls rollback itself after a lost race).
func (d *document) rollback() []resub {
	n := int(d.head - d.committed)
	if n == 0 {
		return nil
	}
	first := len(d.log) - n
	byRev := make(map[uint64][]func(uint64, error))
	var waits []*commitWait
	for i := first; i < len(d.log); i++ {
		w := d.log[i].wait
		if w == nil || slices.Contains(waits, w) {
			continue
		}
		waits = append(waits, w)
		for _, cb := range w.cbs {
			byRev[cb.rev] = append(byRev[cb.rev], cb.fn)
		}
		w.cbs = nil
	}
	out := make([]resub, 0, n)
	for i := first; i < len(d.log); i++ {
		e := &d.log[i]
		rev := d.committed + uint64(i-first) + 1
		out = append(out, resub{
			sub: Submission{Doc: d.id, Client: e.client, Seq: e.seq, User: e.user},
			src: e.src,
			cbs: byRev[rev],
		})
	}
	clear(d.log[first:])
	d.log = d.log[:first]
	unhanded := d.head - d.handed
	d.head, d.handed, d.text = d.committed, d.committed, d.committedText
	d.wait = nil
	if d.snapRev > d.committed {
		d.snapRev = 0
	}
	d.h.c.queued.Add(-int64(unhanded))
	for _, w := range waits {
		w.err = errRebased
		close(w.done)
	}
	d.h.rebased.Add(uint64(len(out)))
	return out
}

// errDeletedElsewhere: a catch-up found the document's log shorter than
// what this node committed.
var errDeletedElsewhere = errors.New("collab: document deleted on another node")

// errRebased is the error of a wait whose ops were rolled back to be
// sequenced again; no caller returns it (their callbacks moved).
var errRebased = errors.New("collab: rolled back to be sequenced again")

// startCatchUp starts the goroutine that reads the records up to target
// from the store (those the feed has not brought yet), integrates them
// and then sequences resubs again. Sequencing waits meanwhile. mu must be
// held; no catch-up may be running.
func (d *document) startCatchUp(target uint64, resubs []resub) {
	d.catching = true
	d.caught = make(chan struct{})
	d.h.catchUps.Add(1)
	go d.h.catchUp(d, target, resubs)
}

// catchUp is the catch-up goroutine (startCatchUp).
func (h *Hub) catchUp(d *document, target uint64, resubs []resub) {
	defer h.catchUps.Done()
	err := h.readUpTo(d, target)
	d.deliver.Lock()
	d.mu.Lock()
	d.catching = false
	close(d.caught)
	if errors.Is(err, errDeletedElsewhere) {
		// Forget it; its clients rejoin (the id now names a new document).
		// An append in flight fails by itself (the subject was purged),
		// and its outcome rolls its ops back.
		if d.handed == d.committed {
			resubs = append(resubs, d.rollback()...)
		}
		h.forgetDeleted(d, resubs)
		return
	}
	var applied []storage.Record
	var calls []func()
	if err == nil {
		// Integrates what was read, unless an append of this node is in
		// flight again (its outcome integrates it then), and sequences
		// the ops again.
		applied, calls = d.settleLocked()
		var more []func()
		resubs, more = d.resequenceLocked(resubs)
		calls = append(calls, more...)
	}
	subs := d.subs
	d.mu.Unlock()
	feedSubs(subs, applied)
	d.deliver.Unlock()
	run(calls)
	if errors.Is(err, errGone) {
		// Dropped meanwhile (evicted, or unusable): sequenced again on
		// the document as the store has it, loaded anew.
		h.resequence(resubs)
		return
	}
	if err != nil {
		ferr := storeError(err)
		if e, ok := ferr.(*Error); !ok || e.Code == contract.CodeNotFound {
			ferr = &Error{Code: contract.CodeUnavailable, Message: "cannot read the other nodes' records", Err: err}
		}
		for _, r := range resubs {
			r.fail(ferr)
		}
		return
	}
	h.resequence(resubs)
}

// readUpTo brings d's records after its committed revision, up to target
// at least, into d.remote — from the feed when it brings them within
// feedGrace, else from the store — then waits for this node's append in
// flight, if any, to settle. It retries a failing read with a backoff
// while the hub is open.
func (h *Hub) readUpTo(d *document, target uint64) error {
	ctx := context.Background()
	now := time.Now()
	deadline, grace := now.Add(settleWait), now.Add(feedGrace)
	for attempt := 1; ; attempt++ {
		d.mu.Lock()
		after, inFlight, gone := d.committed, d.handed != d.committed, d.gone
		if n := len(d.remote); n > 0 && d.remote[n-1].Rev > after {
			after = max(after, contiguousEnd(d.committed, d.remote))
		}
		var news chan struct{}
		if !gone && (inFlight || (after < target && time.Now().Before(grace))) {
			if d.news == nil {
				d.news = make(chan struct{})
			}
			news = d.news
		}
		d.mu.Unlock()
		switch {
		case h.closed.Load():
			return ErrClosed
		case gone:
			return errGone
		case after >= target && !inFlight:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("collab: %q: catching up to revision %d: %w", d.id, target, storage.ErrUnavailable)
		}
		if news != nil { // the feed may bring them; the append in flight settles
			wait := time.Until(deadline)
			if after < target {
				wait = max(time.Until(grace), 0)
			}
			t := time.NewTimer(wait)
			select {
			case <-news:
			case <-t.C:
			}
			t.Stop()
			if after >= target || time.Now().Before(grace) {
				continue
			}
		}
		recs, err := h.store.Records(ctx, d.id, after, catchUpBatch)
		if err != nil {
			d.mu.Lock()
			shorter := after <= d.committed
			d.mu.Unlock()
			if errors.Is(err, storage.ErrNotFound) && shorter {
				// The log ends before what this node committed: the
				// document was deleted on another node.
				return errDeletedElsewhere
			}
			if errors.Is(err, storage.ErrNotFound) || h.closed.Load() {
				return err
			}
			backoff(attempt)
			continue
		}
		if len(recs) == 0 {
			return fmt.Errorf("%w: %q has no revision %d yet", storage.ErrNotFound, d.id, target)
		}
		d.mu.Lock()
		d.buffer(recs)
		d.mu.Unlock()
		if len(recs) < catchUpBatch && recs[len(recs)-1].Rev < target {
			return fmt.Errorf("%w: %q ends at revision %d, before %d", storage.ErrNotFound, d.id, recs[len(recs)-1].Rev, target)
		}
	}
}

// contiguousEnd returns the newest revision that recs continue from
// committed without a gap (committed when recs[0] does not follow it).
func contiguousEnd(committed uint64, recs []storage.Record) uint64 {
	end := committed
	for _, r := range recs {
		if r.Rev > end+1 {
			break
		}
		end = max(end, r.Rev)
	}
	return end
}

// backoff sleeps before retry number attempt (1, 2, ...): jittered and
// exponential from 0.5 ms to 20 ms, so that nodes that lost the same race
// do not come back in step.
func backoff(attempt int) {
	b := min(500*time.Microsecond<<min(attempt-1, 6), 20*time.Millisecond)
	time.Sleep(b/2 + rand.N(b))
}

// resequence sequences rolled back ops again, in their order, on the
// calling goroutine: those resequenceLocked left (their bases must be read
// from the store, or they are due for a backoff).
func (h *Hub) resequence(resubs []resub) {
	for _, r := range resubs {
		if r.src == nil {
			// Not expected: every uncommitted entry has a source in
			// cluster mode.
			r.fail(&Error{Code: contract.CodeInternal, Message: "cannot sequence the op again"})
			continue
		}
		if r.src.attempts > maxAttempts {
			r.fail(&Error{Code: contract.CodeUnavailable, Message: fmt.Sprintf("other nodes appended first %d times; retry", maxAttempts)})
			continue
		}
		if r.src.attempts > backoffAfter {
			backoff(r.src.attempts - backoffAfter)
		}
		s := r.sub
		s.BaseRev, s.attempts = r.src.base, r.src.attempts
		cbs := r.cbs
		h.sequenceAsync(context.Background(), &s, r.src.op, func(rev uint64, err error) {
			for _, cb := range cbs {
				cb(rev, err)
			}
		})
	}
}

// fail reports err to every callback of r.
func (r *resub) fail(err error) {
	for _, cb := range r.cbs {
		cb(0, err)
	}
}

// forgetDeleted handles d, deleted on another node: it is dropped (the id
// now names a new document, loaded on next use) and its rolled back ops
// fail with conflict, so their clients rejoin. d.deliver and d.mu must be
// held; it releases them.
func (h *Hub) forgetDeleted(d *document, resubs []resub) {
	h.dropDocument(d)
	d.mu.Unlock()
	d.deliver.Unlock()
	err := newError(contract.CodeConflict, "document %q was deleted on another node; rejoin", d.id)
	for _, r := range resubs {
		r.fail(err)
	}
}

// dropDocument removes d from the table: the next use loads it again. mu
// must be held.
func (h *Hub) dropDocument(d *document) {
	d.gone = true
	go func() {
		sh := h.shard(d.id)
		sh.mu.Lock()
		if sh.docs[d.id] == d {
			delete(sh.docs, d.id)
		}
		sh.mu.Unlock()
	}()
}

// staleItem handles an item whose append lost the race: its ops (and those
// sequenced since) are rolled back and sequenced again once this node has
// the records that won. It runs on the committer goroutine.
func (c *committer) staleItem(it *item, cause error) {
	d := it.d
	c.h.stale.Add(1)
	d.deliver.Lock()
	d.mu.Lock()
	d.notify()
	target := d.committed + 1
	se, ok := errors.AsType[*storage.StaleError](cause)
	if ok {
		target = max(target, se.Head)
	}
	resubs := d.rollback()
	for _, r := range resubs {
		if r.src != nil {
			r.src.attempts++ // counted per lost race
		}
	}
	if ok && se.Head < d.committed {
		// The log is shorter than what this node committed.
		c.h.forgetDeleted(d, resubs)
		return
	}
	var applied []storage.Record
	var calls []func()
	if d.catching {
		// Not expected (sequencing waits while catching); the running
		// catch-up integrates, these go after it.
		go func(ch chan struct{}) { <-ch; c.h.resequence(resubs) }(d.caught)
	} else {
		var more []resub
		var gap bool
		applied, more, gap = d.integrate()
		resubs = append(resubs, more...)
		if !gap && d.committed >= target {
			// The feed already brought the records that won: the ops go
			// into the next append at once.
			resubs, calls = d.resequenceLocked(resubs)
		}
		if gap || d.committed < target || len(resubs) > 0 {
			d.startCatchUp(max(target, d.committed), resubs)
		}
	}
	subs := d.subs
	d.mu.Unlock()
	feedSubs(subs, applied)
	d.deliver.Unlock()
	run(calls)
}
