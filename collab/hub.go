package collab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// Defaults of Config.
const (
	DefaultMaxDocBytes   = 8 << 20 // 8 MiB of UTF-8 text
	DefaultMaxOpBytes    = 1 << 20 // 1 MiB of op JSON
	DefaultRetain        = 128     // ops kept in memory per live document
	DefaultMaxBehind     = 10000   // revisions an op's base may be behind the head
	DefaultSnapshotEvery = 100     // revisions between snapshots
	DefaultIdleTimeout   = 5 * time.Minute
)

// Config configures New. Zero fields take the defaults.
type Config struct {
	// Store is the durable home of the documents (required). The hub does
	// not close it.
	Store storage.Store
	// MaxDocBytes limits the UTF-8 size of a document's text; an op that
	// would grow a document past it fails with too_large. Default 8 MiB.
	MaxDocBytes int
	// MaxOpBytes limits the JSON size of a submitted op. Default 1 MiB.
	MaxOpBytes int
	// Retain is the number of recent ops each live document keeps in
	// memory, a cache for transforming late ops, recognizing
	// resubmissions and serving Records: an op whose baseRev is older
	// than the retained log is transformed over records read back from
	// the store (which keeps the whole log), and its (client, seq) is
	// looked for among them too, so it costs a store read, not a
	// conflict. The hub keeps between Retain and 1.25*Retain committed ops
	// per document, and none once the document has seen no submission or
	// read for a quarter of IdleTimeout (a subscribed document is never
	// evicted; its log is trimmed instead). Default 128.
	Retain int
	// MaxBehind is the number of revisions an op's baseRev may be behind
	// the head; an op further behind fails with conflict (transforming it
	// would read and replay that many records). Default 10000.
	MaxBehind int
	// SnapshotEvery is the revisions between the history's regular
	// snapshots, on every multiple of it (the text at any revision is
	// rebuilt from the snapshot at or below it plus at most
	// SnapshotEvery-1 ops). Between them, at least 16 revisions apart, a
	// snapshot goes into the document's head slot (replacing the one
	// there) once replaying the ops since the newest one would cost more
	// than reading the text: opening a document stays within about twice
	// the cost of reading its text, for one extra text stored. Default
	// 100.
	SnapshotEvery int
	// IdleTimeout is how long a document without submissions, reads or
	// subscribers stays in memory before it is evicted (with a final
	// snapshot). Default 5 minutes; negative disables eviction.
	IdleTimeout time.Duration
	// ObserveCommit, when non-nil, is called after every successful store
	// commit of sequenced records with the number of records in the batch
	// and the wall time of the store commit (for a commit-latency
	// histogram). It runs on the committer goroutine, before the Submits
	// of that batch return: it must be quick and must not block or call
	// into the Hub. Final snapshots and deletions do not report.
	ObserveCommit func(records int, took time.Duration)
	// OnCommitted, when non-nil, receives every committed record of every
	// document: per document in revision order, after the document's
	// subscribers and before the Submits of the batch return (change
	// notifications, webhooks). It runs on the committer goroutine under
	// the rules of ObserveCommit: quick, never blocking, never calling
	// into the Hub. recs is reused after the call: copy what is kept.
	OnCommitted func(doc string, recs []storage.Record)
	// OnDeleted, when non-nil, is called once Delete has removed a
	// document from the store, on Delete's goroutine.
	OnDeleted func(doc string)
	// Retention is the server-wide history retention policy (FoldAll),
	// which a document's own policy (SetRetention) overrides. The zero
	// value keeps every op.
	Retention storage.Retention
}

func (c *Config) setDefaults() {
	if c.MaxDocBytes <= 0 {
		c.MaxDocBytes = DefaultMaxDocBytes
	}
	if c.MaxOpBytes <= 0 {
		c.MaxOpBytes = DefaultMaxOpBytes
	}
	if c.Retain <= 0 {
		c.Retain = DefaultRetain
	}
	if c.MaxBehind <= 0 {
		c.MaxBehind = DefaultMaxBehind
	}
	if c.SnapshotEvery <= 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
}

const numShards = 64

// shard is one slice of the table of live documents.
type shard struct {
	mu   sync.RWMutex         // guards docs
	docs map[string]*document // live (or loading, or being deleted) documents by id
}

// Hub sequences the ops of every document and looks live documents up,
// loads them lazily and evicts idle ones. See the package documentation for
// its concurrency contract.
type Hub struct {
	cfg    Config
	store  storage.Store
	seed   maphash.Seed
	shards [numShards]shard
	c      *committer

	closeOnce sync.Once
	closed    atomic.Bool
	stop      chan struct{}  // closed by Close: stops the evictor
	wg        sync.WaitGroup // the committer and evictor goroutines

	// Cluster mode (cluster.go): the store is a storage.Follower shared
	// with other nodes.
	cluster  bool
	stopFeed func()
	catchUps sync.WaitGroup // catch-up goroutines
	stale    atomic.Uint64  // appends that lost the race to another node
	rebased  atomic.Uint64  // ops rolled back to be sequenced again
}

// New starts a hub over cfg.Store.
func New(cfg Config) (*Hub, error) {
	if cfg.Store == nil {
		return nil, errors.New("collab: Config.Store is required")
	}
	cfg.setDefaults()
	h := &Hub{cfg: cfg, store: cfg.Store, seed: maphash.MakeSeed(), stop: make(chan struct{})}
	for i := range h.shards {
		h.shards[i].docs = make(map[string]*document)
	}
	h.c = newCommitter(h)
	if f, ok := cfg.Store.(storage.Follower); ok {
		stop, err := f.Follow(context.Background(), h.onFeed)
		if err != nil {
			return nil, fmt.Errorf("collab: following the shared store: %w", err)
		}
		h.cluster, h.stopFeed = true, stop
	}
	h.wg.Add(1)
	go func() { defer h.wg.Done(); h.c.run() }()
	if cfg.IdleTimeout > 0 {
		h.wg.Add(1)
		go func() { defer h.wg.Done(); h.evictLoop() }()
	}
	return h, nil
}

func (h *Hub) shard(id string) *shard {
	return &h.shards[maphash.String(h.seed, id)%numShards]
}

// Submission is one op sent by a client.
type Submission struct {
	Doc     string          // document id
	Client  string          // client id, 1 to contract.MaxClientIDBytes bytes of UTF-8
	Seq     uint64          // the client's sequence number of this op
	BaseRev uint64          // the revision the op was made on
	Op      json.RawMessage // the op in its JSON wire form
	User    string          // display name, up to contract.MaxUserNameBytes bytes (optional)

	attempts int // cluster mode: times the op was sequenced again
}

func validDoc(id string) error {
	if !contract.ValidDocID(id) {
		return newError(contract.CodeBadRequest, "document id must be "+contract.DocIDRule)
	}
	return nil
}

func (h *Hub) checkOpen() error {
	if h.closed.Load() {
		return &Error{Code: contract.CodeInternal, Message: "server shutting down", Err: ErrClosed}
	}
	return nil
}

// Submit sequences an op and returns the revision it produced, once the
// record is durable. A resubmission of an op already applied (same client
// and seq among the ops after BaseRev) returns the revision it got the
// first time and changes nothing.
//
// If ctx ends first, Submit returns ctx's error and the outcome is unknown:
// the op may still commit. Submitting it again is safe (exactly once).
func (h *Hub) Submit(ctx context.Context, s Submission) (uint64, error) {
	if err := h.checkSub(&s); err != nil {
		return 0, err
	}
	if len(s.Op) > h.cfg.MaxOpBytes {
		return 0, newError(contract.CodeTooLarge, "op of %d bytes, limit %d", len(s.Op), h.cfg.MaxOpBytes)
	}
	op, err := ot.ParseLimit(s.Op, ot.ParseOptions{MaxBytes: h.cfg.MaxOpBytes})
	if err != nil {
		return 0, opError(err)
	}
	return h.submit(ctx, &s, op)
}

// SubmitAsync is Submit without the wait: it sequences s on the calling
// goroutine and returns; done is called exactly once with what Submit would
// return. It runs on the calling goroutine when the outcome is known at
// once (a bad request, a conflict, a resubmission already durable, a
// shutdown), else on the committer goroutine once the record is durable
// (after the subscribers got it) or its batch failed. On the committer,
// done must follow the rules of Subscribe callbacks: return quickly, never
// block, panic or call into the Hub.
//
// The calling goroutine waits only for what Submit waits for before the
// commit: the document's load, and for an op older than the in-memory log,
// reading records from the store. ctx bounds that part only.
func (h *Hub) SubmitAsync(ctx context.Context, s Submission, done func(rev uint64, err error)) {
	if err := h.checkSub(&s); err != nil {
		done(0, err)
		return
	}
	if len(s.Op) > h.cfg.MaxOpBytes {
		done(0, newError(contract.CodeTooLarge, "op of %d bytes, limit %d", len(s.Op), h.cfg.MaxOpBytes))
		return
	}
	op, err := ot.ParseLimit(s.Op, ot.ParseOptions{MaxBytes: h.cfg.MaxOpBytes})
	if err != nil {
		done(0, opError(err))
		return
	}
	h.sequenceAsync(ctx, &s, op, done)
}

// sequenceAsync is SubmitAsync once s is checked and its op parsed.
func (h *Hub) sequenceAsync(ctx context.Context, s *Submission, op ot.Op, done func(rev uint64, err error)) {
	for {
		d, err := h.acquire(ctx, s.Doc)
		if err != nil {
			done(0, err)
			return
		}
		rev, w, err := d.sequence(ctx, s, op, done)
		switch {
		case errors.Is(err, errGone):
			continue
		case err != nil:
			done(0, err)
		case w == nil:
			done(rev, nil)
		}
		return // else registered on w
	}
}

func (h *Hub) checkSub(s *Submission) error {
	if err := h.checkOpen(); err != nil {
		return err
	}
	if err := validDoc(s.Doc); err != nil {
		return err
	}
	if s.Client == "" || len(s.Client) > contract.MaxClientIDBytes || !utf8.ValidString(s.Client) {
		return newError(contract.CodeBadRequest, "client id must be 1 to %d bytes of UTF-8", contract.MaxClientIDBytes)
	}
	// The edge layers bound names in code points; bytes are cheaper to
	// count and bound the same names.
	if len(s.User) > contract.MaxUserNameBytes || !utf8.ValidString(s.User) {
		return newError(contract.CodeBadRequest, "user must be up to %d bytes of UTF-8", contract.MaxUserNameBytes)
	}
	return nil
}

// submit sequences the parsed op of s and waits for its commit. It waits
// on the callback, not on the batch: in cluster mode an op may be
// sequenced again at another revision (cluster.go).
func (h *Hub) submit(ctx context.Context, s *Submission, op ot.Op) (uint64, error) {
	type outcome struct {
		rev uint64
		err error
	}
	ch := make(chan outcome, 1)
	h.sequenceAsync(ctx, s, op, func(rev uint64, err error) { ch <- outcome{rev, err} })
	select {
	case o := <-ch:
		return o.rev, o.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// errGone reports that a document was evicted between its lookup and its
// lock: look it up again.
var errGone = errors.New("collab: document evicted")

// acquire returns the live document id, loading it first if needed.
func (h *Hub) acquire(ctx context.Context, id string) (*document, error) {
	sh := h.shard(id)
	sh.mu.RLock()
	d := sh.docs[id]
	sh.mu.RUnlock()
	if d == nil {
		sh.mu.Lock()
		if d = sh.docs[id]; d == nil {
			d = newDocument(h, id)
			sh.docs[id] = d
			sh.mu.Unlock()
			h.load(d)
		} else {
			sh.mu.Unlock()
		}
	}
	select {
	case <-d.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if d.loadErr != nil {
		return nil, d.loadErr
	}
	return d, nil
}

// load reads d from the store and closes d.ready. On failure it removes d
// from the table so that a later call tries again.
func (h *Hub) load(d *document) {
	defer close(d.ready)
	// Not the caller's context: other callers wait for this load too.
	// Only the records after the newest snapshot: the retained log fills
	// up with new ops; an op based further back reads the store (as after
	// a trim), so opening costs the same whatever the depth of the history.
	st, err := h.store.Load(context.Background(), d.id, 0)
	if err == nil {
		// Locked for the feed (cluster mode), which may already buffer
		// records for d.
		d.deliver.Lock()
		d.mu.Lock()
		if err = d.init(st); err == nil && h.cluster {
			d.loaded = true
			d.settleLocked() // the records the feed brought meanwhile; no subscriber or op yet
		}
		d.mu.Unlock()
		d.deliver.Unlock()
	}
	if err != nil {
		d.loadErr = &Error{Code: contract.CodeInternal, Message: "cannot load document", Err: err}
		sh := h.shard(d.id)
		sh.mu.Lock()
		if sh.docs[d.id] == d {
			delete(sh.docs, d.id)
		}
		sh.mu.Unlock()
	}
}

// live calls fn with d locked, d being the live document id; it retries
// when d was evicted in between. fn must not block.
func (h *Hub) live(ctx context.Context, id string, fn func(d *document) error) error {
	if err := h.checkOpen(); err != nil {
		return err
	}
	if err := validDoc(id); err != nil {
		return err
	}
	for {
		d, err := h.acquire(ctx, id)
		if err != nil {
			return err
		}
		d.mu.Lock()
		if d.gone {
			d.mu.Unlock()
			continue
		}
		d.lastUse = time.Now()
		err = fn(d)
		d.mu.Unlock()
		return err
	}
}

// Text returns the committed text of doc and its revision. A document never
// written is the empty text at revision 0.
func (h *Hub) Text(ctx context.Context, doc string) (rev uint64, text ot.Text, err error) {
	err = h.live(ctx, doc, func(d *document) error {
		if d.deleting {
			return newError(contract.CodeNotFound, "document %q is being deleted", doc)
		}
		rev, text = d.committed, d.committedText
		return nil
	})
	return rev, text, err
}

// Subscription is a live feed of a document's committed records.
type Subscription struct {
	// Rev and Text are the committed state when the subscription started;
	// the callback receives every record after Rev, in revision order.
	Rev  uint64
	Text ot.Text
	// Cancel stops the feed. The callback may run once more while Cancel
	// returns; after that it is never called. Cancel is idempotent.
	Cancel func()
}

// Subscribe registers fn to receive every record of doc committed after the
// returned revision, in revision order, before the Submit of that record
// returns. fn runs on the hub's committer
// goroutine: it must return quickly and must not call back into the hub
// (copy the record into a queue instead). A subscribed document is not
// evicted.
func (h *Hub) Subscribe(ctx context.Context, doc string, fn func(storage.Record)) (Subscription, error) {
	var sub Subscription
	err := h.live(ctx, doc, func(d *document) error {
		if d.deleting {
			return newError(contract.CodeNotFound, "document %q is being deleted", doc)
		}
		sub.Rev, sub.Text = d.committed, d.committedText
		s := &subscriber{fn: fn}
		d.subs = append(d.subs[:len(d.subs):len(d.subs)], s) // copy on write
		var once sync.Once
		sub.Cancel = func() {
			once.Do(func() {
				d.mu.Lock()
				defer d.mu.Unlock()
				for i, x := range d.subs {
					if x == s {
						subs := make([]*subscriber, 0, len(d.subs)-1)
						subs = append(subs, d.subs[:i]...)
						d.subs = append(subs, d.subs[i+1:]...)
						break
					}
				}
				d.lastUse = time.Now()
			})
		}
		return nil
	})
	return sub, err
}

// Records returns up to limit committed records of doc with revision >
// after, ascending: from memory while the document retains them, else from
// the store. It fails with not_found when after is beyond the head.
func (h *Hub) Records(ctx context.Context, doc string, after uint64, limit int) ([]storage.Record, error) {
	if limit <= 0 {
		return nil, newError(contract.CodeBadRequest, "limit must be positive")
	}
	var out []storage.Record
	inMemory := false
	if h.cluster {
		if err := h.catchUpTo(ctx, doc, after); err != nil {
			return nil, err
		}
	}
	err := h.live(ctx, doc, func(d *document) error {
		if after > d.committed {
			return newError(contract.CodeNotFound, "revision %d is beyond the head %d", after, d.committed)
		}
		if after == d.committed {
			inMemory = true
			return nil
		}
		first := d.firstRev()
		if len(d.log) == 0 || after+1 < first {
			return nil
		}
		inMemory = true
		for i := int(after + 1 - first); i < len(d.log) && len(out) < limit; i++ {
			rev := first + uint64(i)
			if rev > d.committed {
				break
			}
			out = append(out, d.log[i].record(rev))
		}
		return nil
	})
	if err != nil || inMemory {
		return out, err
	}
	out, err = h.store.Records(ctx, doc, after, limit)
	return out, storeError(err)
}

// catchUpTo makes sure, in cluster mode, that doc has been read up to rev
// when the shared log has it: a client names a revision another node
// acknowledged before this node's feed brought it.
func (h *Hub) catchUpTo(ctx context.Context, doc string, rev uint64) error {
	for tries := 0; tries < 2; tries++ {
		var ch chan struct{}
		err := h.live(ctx, doc, func(d *document) error {
			switch {
			case d.catching:
				ch = d.caught
			case rev > d.committed && tries == 0:
				d.startCatchUp(rev, nil)
				ch = d.caught
			}
			return nil
		})
		if err != nil || ch == nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// History returns up to limit revisions of doc below before (0: from the
// head), newest first.
func (h *Hub) History(ctx context.Context, doc string, before uint64, limit int) ([]storage.Revision, error) {
	if err := h.precheck(doc); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 1000 {
		return nil, newError(contract.CodeBadRequest, "limit must be 1 to 1000")
	}
	revs, err := h.store.History(ctx, doc, before, limit)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil // a document never written has no history
	}
	return revs, storeError(err)
}

// TextAt returns the text of doc at a committed revision.
func (h *Hub) TextAt(ctx context.Context, doc string, rev uint64) (string, error) {
	if err := h.precheck(doc); err != nil {
		return "", err
	}
	text, err := h.store.TextAt(ctx, doc, rev)
	return text, storeError(err)
}

// Diff returns the semantically cleaned diff between the texts of doc at
// revisions from and to, in diff-match-patch form.
func (h *Hub) Diff(ctx context.Context, doc string, from, to uint64) ([]ot.Diff, error) {
	if err := h.precheck(doc); err != nil {
		return nil, err
	}
	diffs, err := h.store.Diff(ctx, doc, from, to)
	return diffs, storeError(err)
}

// List returns every stored document.
func (h *Hub) List(ctx context.Context) ([]storage.DocInfo, error) {
	if err := h.checkOpen(); err != nil {
		return nil, err
	}
	docs, err := h.store.List(ctx)
	return docs, storeError(err)
}

func (h *Hub) precheck(doc string) error {
	if err := h.checkOpen(); err != nil {
		return err
	}
	return validDoc(doc)
}

// Restore makes a new revision of doc whose text equals its text at rev:
// the op is computed from a diff of the current text against the old one
// and submitted like any op (sub.Op and sub.BaseRev are ignored). Ops
// sequenced concurrently are transformed as usual, so the result equals the
// old text unless someone edited at the same moment.
func (h *Hub) Restore(ctx context.Context, rev uint64, sub Submission) (uint64, error) {
	if err := h.precheck(sub.Doc); err != nil {
		return 0, err
	}
	old, err := h.TextAt(ctx, sub.Doc, rev)
	if err != nil {
		return 0, err
	}
	head, cur, err := h.Text(ctx, sub.Doc)
	if err != nil {
		return 0, err
	}
	op := ot.OpFromTexts(cur.String(), old)
	b, err := op.MarshalJSON()
	if err != nil {
		return 0, &Error{Code: contract.CodeInternal, Message: "cannot encode op", Err: err}
	}
	sub.Op, sub.BaseRev = b, head
	if err := h.checkSub(&sub); err != nil {
		return 0, err
	}
	return h.submit(ctx, &sub, op)
}

// Delete removes doc and its history once the ops in flight are committed.
// Submissions during the deletion fail with not_found; afterwards the id
// names a new, empty document. Subscriptions to the deleted document
// receive nothing more (the caller tells the members and cancels them).
func (h *Hub) Delete(ctx context.Context, doc string) error {
	var wait *commitWait
	var d *document
	err := h.live(ctx, doc, func(x *document) error {
		if x.deleting {
			return newError(contract.CodeNotFound, "document %q is being deleted", doc)
		}
		if x.head == 0 {
			return newError(contract.CodeNotFound, "document %q does not exist", doc)
		}
		x.deleting = true
		d, wait = x, x.lastWait()
		return nil
	})
	if err != nil {
		return err
	}
	if wait != nil {
		<-wait.done // bounded: the committer finishes every batch
	}
	err = h.store.Commit(context.WithoutCancel(ctx), []storage.Write{{Doc: doc, Delete: true}})
	sh := h.shard(doc)
	sh.mu.Lock()
	d.mu.Lock()
	d.gone = true
	if sh.docs[doc] == d {
		delete(sh.docs, doc)
	}
	d.mu.Unlock()
	sh.mu.Unlock()
	if err == nil && h.cfg.OnDeleted != nil {
		h.cfg.OnDeleted(doc)
	}
	return storeError(err)
}

// Stats are counters for metrics and benchmarks.
type Stats struct {
	LiveDocs     int           // documents in memory
	Commits      uint64        // store commits (batches)
	CommittedOps uint64        // records committed
	CommitTime   time.Duration // total time spent in store commits
	FailedCommit uint64        // commits that failed
	// Cluster mode: appends that lost the race to another node, and ops
	// sequenced again after one.
	Stale, Rebased uint64
}

// Stats returns the current counters.
func (h *Hub) Stats() Stats {
	s := Stats{
		Commits:      h.c.commits.Load(),
		CommittedOps: h.c.ops.Load(),
		CommitTime:   time.Duration(h.c.nanos.Load()),
		FailedCommit: h.c.failed.Load(),
		Stale:        h.stale.Load(),
		Rebased:      h.rebased.Load(),
	}
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		s.LiveDocs += len(sh.docs)
		sh.mu.RUnlock()
	}
	return s
}

// Close stops accepting work, waits for the ops in flight to commit, writes
// a final snapshot of every live document and returns. It does not close
// the store. It is idempotent; if ctx ends first it returns ctx's error and
// the shutdown goes on in the background.
func (h *Hub) Close(ctx context.Context) error {
	h.closeOnce.Do(func() {
		h.closed.Store(true)
		if h.stopFeed != nil {
			h.stopFeed()
		}
		close(h.stop)
		h.c.close()
	})
	done := make(chan struct{})
	go func() { h.wg.Wait(); h.catchUps.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return h.snapshotAll(ctx)
}
