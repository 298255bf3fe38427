package collab

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// commitWait is closed when the batch holding some records has committed
// (err nil) or failed (err set). err is written before done is closed.
type commitWait struct {
	done chan struct{}
	err  error
	// cbs are the SubmitAsync callbacks of the batch, called by the
	// committer once done is closed. Guarded by the document's mu: they
	// are added while an entry of the batch is uncommitted, and taken
	// (set to nil) in the same critical section that commits or drops
	// the batch's entries.
	cbs []asyncDone
}

// asyncDone is one SubmitAsync callback with the revision it reports.
type asyncDone struct {
	rev uint64
	fn  func(uint64, error)
}

// register adds cb to w, the wait of revision rev. mu must be held.
func (d *document) register(w *commitWait, rev uint64, cb func(uint64, error)) {
	if w != nil && cb != nil {
		w.cbs = append(w.cbs, asyncDone{rev, cb})
	}
}

func newWait() *commitWait { return &commitWait{done: make(chan struct{})} }

// entry is one sequenced op in a document's in-memory log: the fields of
// its storage.Record, held compactly (the logs are most of the heap when
// many documents are live). The revision is the entry's place in the log,
// the inserted and deleted counts are op's, the time is Unix nanoseconds.
type entry struct {
	op     ot.Op
	opJSON []byte // op in its normalized compact JSON, as stored
	client string
	user   string
	seq    uint64
	nanos  int64
	// text after this op and wait of its batch; both are only set while
	// the record is not yet committed (text serves the rollback point and
	// snapshots).
	text ot.Text
	wait *commitWait
	// src is set in cluster mode while the entry is uncommitted: what
	// sequencing it again needs when another node appended first.
	src *source
}

// source is what an uncommitted op needs to be sequenced again, kept in
// cluster mode: when another node wins the race for the revisions it was
// given, the op is rolled back and sequenced again from base, over the
// other node's records (see cluster.go). op is the submitted op
// transformed up to base, the committed revision when it was sequenced
// (or its own base, if newer).
type source struct {
	op       ot.Op
	base     uint64
	attempts int // lost races
}

// newEntry holds record r, whose op is op (parsed from r.Op).
func newEntry(r *storage.Record, op ot.Op) entry {
	return entry{op: op, opJSON: r.Op, client: r.Client, user: r.User, seq: r.Seq, nanos: r.Time.UnixNano()}
}

// record returns e as the storage.Record of revision rev.
func (e *entry) record(rev uint64) storage.Record {
	ins, del := e.op.Stats()
	return storage.Record{
		Rev:    rev,
		Op:     e.opJSON,
		Client: e.client,
		Seq:    e.seq,
		User:   e.user,
		Time:   time.Unix(0, e.nanos).UTC(),
		Ins:    ins,
		Del:    del,
	}
}

// growth returns the change in length (code points) e's op makes.
func (e *entry) growth() int {
	ins, del := e.op.Stats()
	return ins - del
}

// subscriber is one Subscribe registration.
type subscriber struct {
	fn func(storage.Record)
}

// document is the live state of one document. Its sequencer is its mutex:
// every op of the document is sequenced with mu held, so ops are ordered
// per document and documents never wait for each other.
type document struct {
	h  *Hub
	id string

	ready   chan struct{} // closed once loaded
	loadErr error         // set before ready is closed

	mu sync.Mutex // guards every field below
	// head and text: the newest sequenced state, committed or not.
	head uint64
	text ot.Text
	// committed and committedText: the newest durable state, the one
	// readers see and the one a failed commit rolls back to.
	committed     uint64
	committedText ot.Text
	// handed: the newest revision handed to the committer
	// (committed <= handed <= head).
	handed uint64
	// log holds the retained entries, ascending and contiguous, ending at
	// head. Uncommitted entries are never trimmed.
	log []entry
	// wait is shared by the entries after handed (nil when there is none).
	wait *commitWait
	// queued: the document is in the committer's dirty list.
	queued bool
	// snapRev is the revision of the newest snapshot stored or in flight.
	snapRev uint64
	// replay estimates what replaying the ops after snapRev costs on open,
	// in bytes of text read (see snapshotDue).
	replay int
	// tr is the scratch Transformer of finish.
	tr ot.Transformer
	// subs is copied on write so the committer can call it unlocked.
	subs     []*subscriber
	lastUse  time.Time
	gone     bool // evicted or deleted: look the id up again
	deleting bool // a Delete is in progress: refuse ops

	// Cluster mode (a store shared with other nodes; see cluster.go).
	// loaded: init is done, so the feed's records can be integrated.
	loaded bool
	// remote holds records other nodes appended, from the store's feed
	// or a catch-up read, not yet integrated: ascending, after committed.
	remote []storage.Record
	// catching: a catch-up is running; sequencing waits for caught.
	catching bool
	caught   chan struct{}
	// news, when not nil, is closed (and cleared) when the feed buffers
	// records or an append of this document settles: a catch-up waits on
	// it instead of polling.
	news chan struct{}

	// deliver serializes every advance of committed with the calls to
	// the subscribers it makes, so that they get records in revision
	// order whether the committer or the feed advanced it. Taken before
	// mu, never while mu is held.
	deliver sync.Mutex
}

func newDocument(h *Hub, id string) *document {
	return &document{h: h, id: id, ready: make(chan struct{}), lastUse: time.Now()}
}

// init builds the state from storage; called once, before ready is closed.
func (d *document) init(st storage.State) error {
	text := ot.NewText(st.Snapshot.Text)
	keepFrom := uint64(1)
	if st.Meta.Head > uint64(d.h.cfg.Retain) {
		keepFrom = st.Meta.Head - uint64(d.h.cfg.Retain) + 1
	}
	d.log = make([]entry, 0, d.logCap())
	for _, r := range st.Records {
		op, err := ot.ParseLimit(r.Op, ot.ParseOptions{MaxBytes: -1, MaxComponents: -1})
		if err != nil {
			return fmt.Errorf("record %d: %w", r.Rev, err)
		}
		if r.Rev > st.Snapshot.Rev {
			if text, err = op.Apply(text); err != nil {
				return fmt.Errorf("record %d: %w", r.Rev, err)
			}
			d.replay += replayCost(r.Op)
		}
		if r.Rev >= keepFrom {
			d.log = append(d.log, newEntry(&r, op))
		}
	}
	d.head, d.committed, d.handed = st.Meta.Head, st.Meta.Head, st.Meta.Head
	d.text, d.committedText = text, text
	d.snapRev = st.Meta.SnapRev
	return nil
}

// firstRev is the revision of log[0]. mu must be held and log non-empty.
func (d *document) firstRev() uint64 { return d.head - uint64(len(d.log)) + 1 }

// at returns the entry of revision rev. mu must be held; rev must be retained.
func (d *document) at(rev uint64) *entry { return &d.log[rev-d.firstRev()] }

// lastWait returns the wait of the newest uncommitted entry, nil when
// everything is committed. mu must be held.
func (d *document) lastWait() *commitWait {
	if d.head == d.committed {
		return nil
	}
	return d.at(d.head).wait
}

// inlineTransform is the longest run of ops after an op's base that
// sequence transforms it over with the document locked. A longer run (a
// client far behind) is transformed without the lock first, so that it does
// not hold up the document's other submitters.
const inlineTransform = 64

// oldest is the newest revision the in-memory log does not hold: the log
// holds the revisions after it. mu must be held.
func (d *document) oldest() uint64 { return d.head - uint64(len(d.log)) }

// sequence places op (made on s.BaseRev) after every op since, validates
// and applies it and hands it to the committer. It returns the revision and
// the wait to block on (nil when the revision is already durable).
//
// The usual op was made on the head or a few revisions before it: it is
// transformed, applied and appended in one critical section, with the
// document's scratch Transformer (no allocation but the result).
//
// An op more than inlineTransform revisions behind, or made on a revision
// older than the in-memory log, is transformed without the lock, in rounds:
// each round copies the ops the log holds after the op's current base
// (ot.Op values are immutable), reads from the store the committed records
// the log no longer holds, checks them for the op (exactly once), and
// transforms the op over all of them, so that the op's base becomes the head
// of that round. Rounds go over committed ops only, which no rollback
// removes. The lock is then taken again; once the op is close enough to
// the head (or only uncommitted ops are after its base) it is finished
// with the lock held.
//
// When cb is not nil and the returned wait is not nil, cb has been
// registered on the wait (with the document locked, so the committer
// cannot miss it) and will be called once the revision is durable or
// failed.
func (d *document) sequence(ctx context.Context, s *Submission, op ot.Op, cb func(uint64, error)) (uint64, *commitWait, error) {
	var (
		tr    *ot.Transformer // of the rounds without the lock
		base  = s.BaseRev
		first = true // op is still the submitted one, made on s.BaseRev
		ahead bool   // caught up once because s.BaseRev was ahead of the head
	)
	for {
		d.mu.Lock()
		// Cluster mode: a client names revisions other nodes committed
		// too. One beyond this node's committed revision (a revision this
		// node has not read yet, or only as an op of its own still to be
		// appended, which another node's record may take) is read in
		// first, once; after that it is refused as ahead of the head.
		beyond := d.h.cluster && first && s.BaseRev > d.committed && !d.gone && !d.deleting
		if d.catching || (beyond && !ahead) {
			if !d.catching {
				ahead = true
				d.startCatchUp(s.BaseRev, nil)
			}
			ch := d.caught
			d.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return 0, nil, ctx.Err()
			}
			continue
		}
		if beyond {
			d.mu.Unlock()
			return 0, nil, newError(contract.CodeConflict, "base revision %d is ahead of the head %d", s.BaseRev, d.committed)
		}
		rev, w, _, err := d.check(s, base)
		if err == nil && rev == 0 && first && base < d.head && d.head-base > uint64(d.h.cfg.MaxBehind) {
			err = newError(contract.CodeConflict, "base revision %d is %d revisions behind the head %d (at most %d)", base, d.head-base, d.head, d.h.cfg.MaxBehind)
		}
		if err != nil || rev != 0 {
			if err == nil {
				d.register(w, rev, cb)
			}
			d.mu.Unlock()
			return rev, w, err
		}
		oldest := d.oldest()
		if base >= oldest && (d.head-base <= inlineTransform || base >= d.committed) {
			if first {
				if err := d.checkSpan(s, base, op); err != nil {
					d.mu.Unlock()
					return 0, nil, err
				}
			}
			rev, w, err = d.finish(s, base, op)
			if err == nil {
				d.register(w, rev, cb)
			}
			d.mu.Unlock()
			return rev, w, err
		}
		// A round without the lock, over committed ops only: a rollback
		// (a failed commit, or in cluster mode another node's append)
		// removes uncommitted ones, never these, so the round stays
		// valid whatever happens meanwhile. Copy what it needs.
		from := max(base, oldest)
		baseLen := d.committedText.Len()
		since := make([]ot.Op, 0, d.committed-from)
		end := len(d.log) - int(d.head-d.committed)
		for i := end - int(d.committed-from); i < end; i++ {
			baseLen -= d.log[i].growth()
			since = append(since, d.log[i].op)
		}
		head := d.committed
		d.mu.Unlock()

		var stored []ot.Op
		if base < from {
			// Committed records the log no longer holds (every trimmed
			// entry was committed, so the store has them).
			recs, err := d.h.store.Records(ctx, d.id, base, int(from-base))
			if err != nil {
				return 0, nil, storeError(err)
			}
			if uint64(len(recs)) != from-base || (len(recs) > 0 && recs[0].Rev != base+1) {
				return 0, nil, &Error{Code: contract.CodeInternal, Message: "cannot read the log",
					Err: fmt.Errorf("store returned %d records after %d, want %d", len(recs), base, from-base)}
			}
			stored = make([]ot.Op, len(recs))
			for i := range recs {
				r := &recs[i]
				if r.Client == s.Client && r.Seq == s.Seq {
					return r.Rev, nil, nil // applied long ago: exactly once
				}
				baseLen -= r.Ins - r.Del
				if stored[i], err = ot.ParseLimit(r.Op, ot.ParseOptions{MaxBytes: -1, MaxComponents: -1}); err != nil {
					return 0, nil, &Error{Code: contract.CodeInternal, Message: "cannot read the log", Err: fmt.Errorf("record %d: %w", r.Rev, err)}
				}
			}
		}
		if first && op.Span() > baseLen {
			return 0, nil, newError(contract.CodeBadRequest, "op spans %d code points, the text at revision %d has %d", op.Span(), s.BaseRev, baseLen)
		}
		if tr == nil {
			tr = new(ot.Transformer)
		}
		tr.Reset(op)
		for _, prior := range stored {
			tr.Over(prior)
		}
		for _, prior := range since {
			tr.Over(prior)
		}
		op, base, first = tr.Op(), head, false
	}
}

// checkSpan fails when op does not fit the text at base, the text it was
// made on (not only the text it is transformed to). mu must be held and
// base retained (base >= oldest).
func (d *document) checkSpan(s *Submission, base uint64, op ot.Op) error {
	baseLen := d.text.Len()
	for i := len(d.log) - int(d.head-base); i < len(d.log); i++ {
		baseLen -= d.log[i].growth()
	}
	if op.Span() > baseLen {
		return newError(contract.CodeBadRequest, "op spans %d code points, the text at revision %d has %d", op.Span(), s.BaseRev, baseLen)
	}
	return nil
}

// finish transforms op (made on base) over the ops sequenced since,
// applies it and appends it. mu must be held.
//
// In cluster mode the entry keeps its source for sequencing it again: the
// op transformed over the committed ops only, made on the committed
// revision, which no rollback removes (an op sent again from its original
// base could fall behind the in-memory log while other nodes win races).
func (d *document) finish(s *Submission, base uint64, op ot.Op) (uint64, *commitWait, error) {
	var src *source
	if base < d.head {
		tr := &d.tr
		tr.Reset(op)
		i := len(d.log) - int(d.head-base)
		if d.h.cluster && base < d.committed {
			for end := len(d.log) - int(d.head-d.committed); i < end; i++ {
				tr.Over(d.log[i].op)
			}
			op, base = tr.Op(), d.committed
			tr.Reset(op)
		}
		if d.h.cluster {
			src = &source{op: op, base: base, attempts: s.attempts}
		}
		for ; i < len(d.log); i++ {
			tr.Over(d.log[i].op)
		}
		op = tr.Op()
	} else if d.h.cluster {
		src = &source{op: op, base: base, attempts: s.attempts}
	}
	text, err := op.Apply(d.text)
	if err != nil {
		return 0, nil, opError(err)
	}
	if text.ByteLen() > d.h.cfg.MaxDocBytes && text.ByteLen() > d.text.ByteLen() {
		return 0, nil, newError(contract.CodeTooLarge, "document would be %d bytes, limit %d", text.ByteLen(), d.h.cfg.MaxDocBytes)
	}
	if !d.queued {
		if !d.h.c.enqueue(d) {
			return 0, nil, &Error{Code: contract.CodeInternal, Message: "server shutting down", Err: ErrClosed}
		}
		d.queued = true
	}
	if d.wait == nil {
		d.wait = newWait()
	}
	opJSON, _ := op.MarshalJSON() // never fails; sized in one allocation
	if len(d.log) == cap(d.log) {
		// Make room in place rather than let append double the array:
		// with many documents the logs are most of the heap.
		if cap(d.log) == 0 {
			d.log = make([]entry, 0, d.logCap())
		}
		d.trim()
	}
	d.head++
	d.log = append(d.log, entry{
		op:     op,
		opJSON: opJSON,
		client: d.intern(s.Client),
		seq:    s.Seq,
		user:   s.User,
		nanos:  time.Now().UnixNano(),
		text:   text,
		wait:   d.wait,
		src:    src,
	})
	d.text = text
	d.h.c.added()
	return d.head, d.wait, nil
}

// check validates base against the head and looks for s among the
// retained ops after base. It returns the earlier revision (and its wait) when s was already
// sequenced, or base when the op must be transformed over the ops after
// it. mu must be held.
func (d *document) check(s *Submission, base uint64) (rev uint64, w *commitWait, _ uint64, err error) {
	if d.gone {
		return 0, nil, 0, errGone
	}
	if d.deleting {
		return 0, nil, 0, newError(contract.CodeNotFound, "document %q is being deleted", d.id)
	}
	d.lastUse = time.Now()
	if base > d.head {
		return 0, nil, 0, newError(contract.CodeConflict, "base revision %d is ahead of the head %d", base, d.head)
	}
	// Exactly once: the same (client, seq) after base is this op again.
	// Only the retained part is looked at here; sequence looks at the
	// older records, read from the store.
	for i := len(d.log) - int(d.head-max(base, d.oldest())); i < len(d.log); i++ {
		e := &d.log[i]
		if e.seq == s.Seq && e.client == s.Client {
			return d.firstRev() + uint64(i), e.wait, 0, nil
		}
	}
	return 0, nil, base, nil
}

// intern returns client, or the equal string of one of the latest entries:
// a client's ops then share one copy of its id (each submission brings its
// own, decoded from its message). mu must be held.
func (d *document) intern(client string) string {
	for i := len(d.log) - 1; i >= 0 && i >= len(d.log)-internWindow; i-- {
		if d.log[i].client == client {
			return d.log[i].client
		}
	}
	return client
}

// internWindow is how many of the latest entries intern looks at: a few
// editors' turns.
const internWindow = 8
