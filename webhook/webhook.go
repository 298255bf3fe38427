package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/collabd/collabd/storage"
)

// Event types.
const (
	TypeChanged  = "doc.changed"
	TypeCreated  = "doc.created"
	TypeRestored = "doc.restored"
	TypeDeleted  = "doc.deleted"
)

// Headers of a delivery.
const (
	HeaderSignature = "Collabd-Signature"
	HeaderEvent     = "Collabd-Event"
	HeaderDelivery  = "Collabd-Delivery"
	HeaderAttempt   = "Collabd-Attempt"
)

// restorePrefix starts the client id of the records doc:restore makes
// (docs/protocol.md, doc:restore).
const restorePrefix = "~restore."

// Defaults of Config.
const (
	DefaultDebounce    = 2 * time.Second
	DefaultMaxWait     = 30 * time.Second
	DefaultMaxQueue    = 10000
	DefaultMaxAttempts = 12
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultTimeout     = 10 * time.Second
)

// ErrNoURL and ErrNoSecret are returned by New.
var (
	ErrNoURL    = errors.New("webhook: at least one URL is required")
	ErrNoSecret = errors.New("webhook: a secret is required")
)

// Outbox is where pending deliveries are kept, and the documents whose
// changes they report (storage.Bolt).
type Outbox interface {
	WriteOutbox(ctx context.Context, put []storage.OutboxEntry, del []string) error
	Outbox(ctx context.Context) ([]storage.OutboxEntry, error)
	// List and Records read the documents, for the changes a crash left
	// unreported (see New).
	List(ctx context.Context) ([]storage.DocInfo, error)
	Records(ctx context.Context, doc string, after uint64, limit int) ([]storage.Record, error)
}

// Config configures New. Zero durations and counts take the defaults.
type Config struct {
	URLs   []string // http or https endpoints (required)
	Secret string   // HMAC-SHA256 key of the signatures (required)
	// Outbox keeps the pending deliveries across restarts; nil keeps them
	// in memory only.
	Outbox Outbox
	// Debounce: a change event is sent once its document has had no
	// commit for this long. Default 2 s.
	Debounce time.Duration
	// MaxWait: a document that keeps changing gets an event at least this
	// often. Default 30 s.
	MaxWait time.Duration
	// Text, when non-nil, adds the document's text at the event's to_rev
	// to change, create and restore events (hub.TextAt).
	Text func(ctx context.Context, doc string, rev uint64) (string, error)
	// MaxQueue bounds the deliveries queued per URL. Default 10000.
	MaxQueue int
	// MaxAttempts is the number of tries of one delivery. Default 12.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait before a retry: a random
	// time up to MinBackoff*2^(attempt-1), capped at MaxBackoff, and at
	// least MinBackoff/2. Defaults 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one attempt (connect, send, answer). Default 10 s.
	Timeout time.Duration
	// Client sends the requests; nil means a client of its own.
	Client *http.Client
	// ObserveAttempt, when non-nil, is called after every attempt with its
	// duration and whether it succeeded (metrics). It must not block.
	ObserveAttempt func(took time.Duration, ok bool)
	Logger         zerolog.Logger
}

// Author is one user's part of a change event.
type Author struct {
	User string `json:"user"`
	Ops  int    `json:"ops"`
	Ins  int    `json:"ins"`
	Del  int    `json:"del"`
}

// Event is the JSON body of a delivery.
type Event struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Doc  string `json:"doc"`
	// FromRev..ToRev is the range of revisions the event covers (both
	// included); zero for doc.deleted.
	FromRev uint64    `json:"from_rev,omitempty"`
	ToRev   uint64    `json:"to_rev,omitempty"`
	Ops     int       `json:"ops,omitempty"`
	Ins     int       `json:"ins,omitempty"`
	Del     int       `json:"del,omitempty"`
	Authors []Author  `json:"authors,omitempty"`
	Time    time.Time `json:"time"`
	// Text is the text at ToRev, with Config.Text only.
	Text *string `json:"text,omitempty"`
}

// merge folds an older change event o into e (same document).
func (e *Event) merge(o *Event) {
	e.FromRev = min(e.FromRev, o.FromRev)
	e.Ops += o.Ops
	e.Ins += o.Ins
	e.Del += o.Del
	for _, a := range o.Authors {
		i := slices.IndexFunc(e.Authors, func(b Author) bool { return b.User == a.User })
		if i < 0 {
			e.Authors = append(e.Authors, a)
			continue
		}
		e.Authors[i].Ops += a.Ops
		e.Authors[i].Ins += a.Ins
		e.Authors[i].Del += a.Del
	}
}

// Stats are the notifier's counters.
type Stats struct {
	Delivered uint64 // deliveries answered 2xx
	Failures  uint64 // failed attempts
	GaveUp    uint64 // deliveries dropped after MaxAttempts
	Dropped   uint64 // deliveries dropped for a full queue
	Coalesced uint64 // change events merged into a newer one for a full queue
	Queued    int    // deliveries waiting or in flight
}

// summary is the part of a document's changes not yet turned into events.
type summary struct {
	from, to    uint64
	first, last time.Time
	ops         int
	ins, del    int
	authors     []Author
	created     bool     // revision 1 is in it
	restored    []uint64 // revisions made by doc:restore
}

// delivery is one event for one URL, as stored in the outbox.
type delivery struct {
	key      string
	URL      string `json:"url"`
	Event    Event  `json:"event"`
	attempts int
	next     time.Time // not before
	inflight bool
}

// target is one URL's queue.
type target struct {
	url   string
	queue []*delivery // FIFO; guarded by Notifier.mu
	wake  chan struct{}
}

// Notifier turns commits into webhook deliveries.
type Notifier struct {
	cfg    Config
	client *http.Client
	log    zerolog.Logger

	// enqMu serializes taking due events and queueing them (flusher,
	// Deleted, Close), so that a document's events are queued, and its
	// mark moves, in order. Taken before mu, never while holding it.
	enqMu sync.Mutex

	mu      sync.Mutex // guards pending, targets' queues and seq
	pending map[string]*summary
	targets []*target
	seq     uint64 // last key / event sequence number

	delivered, failures, gaveUp, dropped, coalesced atomic.Uint64

	flush     chan struct{} // wakes the flusher
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New starts a notifier and queues the deliveries the outbox holds.
func New(cfg Config) (*Notifier, error) {
	if len(cfg.URLs) == 0 {
		return nil, ErrNoURL
	}
	if cfg.Secret == "" {
		return nil, ErrNoSecret
	}
	for _, u := range cfg.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("webhook: %q is not an http(s) URL", u)
		}
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	n := &Notifier{
		cfg:     cfg,
		client:  cfg.Client,
		log:     cfg.Logger,
		pending: make(map[string]*summary),
		flush:   make(chan struct{}, 1),
		seq:     uint64(time.Now().UnixNano()),
	}
	if n.client == nil {
		n.client = &http.Client{}
	}
	for _, u := range cfg.URLs {
		n.targets = append(n.targets, &target{url: u, wake: make(chan struct{}, 1)})
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.restore(); err != nil {
		n.cancel()
		return nil, err
	}
	n.wg.Add(1 + len(n.targets))
	go func() { defer n.wg.Done(); n.flusher() }()
	for _, t := range n.targets {
		go func() { defer n.wg.Done(); n.sender(t) }()
	}
	return n, nil
}

func (n *Notifier) target(u string) *target {
	for _, t := range n.targets {
		if t.url == u {
			return t
		}
	}
	return nil
}

// Outbox keys. keyPrefix starts the keys of deliveries; the rest is the
// sequence number in 16 hex digits, so key order is creation order.
// markPrefix + document id holds the newest revision of the document an
// event was queued for (decimal); keyInit says the marks cover every
// document (written by the first start with webhooks).
const (
	keyPrefix  = "webhook/"
	markPrefix = "webhook-mark/"
	keyInit    = "webhook-init"
)

// nextSeq returns a new sequence number. n.mu must be held.
func (n *Notifier) nextSeq() uint64 {
	n.seq++
	return n.seq
}

// Committed records committed records of doc (collab.Config.OnCommitted).
// It is quick and never blocks on I/O.
func (n *Notifier) Committed(doc string, recs []storage.Record) {
	if len(recs) == 0 {
		return
	}
	now := time.Now()
	n.mu.Lock()
	s := n.pending[doc]
	if s == nil {
		s = &summary{from: recs[0].Rev, first: now}
		n.pending[doc] = s
	}
	created, restored := s.created, len(s.restored)
	s.add(recs)
	urgent := s.created != created || len(s.restored) != restored
	s.last = now
	n.mu.Unlock()
	if urgent {
		n.poke()
	}
}

// Deleted queues a doc.deleted event (collab.Config.OnDeleted). The
// changes of doc not yet sent are sent first.
func (n *Notifier) Deleted(doc string) {
	n.enqMu.Lock()
	defer n.enqMu.Unlock()
	n.mu.Lock()
	if s := n.pending[doc]; s != nil {
		s.first = time.Time{} // due now
	}
	n.mu.Unlock()
	evs := n.due(time.Now(), false)
	evs = append(evs, Event{Type: TypeDeleted, Doc: doc, Time: time.Now().UTC()})
	n.enqueue(evs)
}

func (n *Notifier) poke() {
	select {
	case n.flush <- struct{}{}:
	default:
	}
}

// flusher turns the due summaries into events.
func (n *Notifier) flusher() {
	tick := min(n.cfg.Debounce/4, 100*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		case <-n.flush:
		}
		n.enqMu.Lock()
		n.enqueue(n.due(time.Now(), false))
		n.enqMu.Unlock()
	}
}

// due takes the events that are due at now out of the summaries: created
// and restored at once, changes after the debounce or MaxWait; all of
// them with all.
func (n *Notifier) due(now time.Time, all bool) []Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	var evs []Event
	for doc, s := range n.pending {
		if s.created {
			evs = append(evs, Event{Type: TypeCreated, Doc: doc, FromRev: 1, ToRev: 1, Time: now.UTC()})
			s.created = false
		}
		for _, rev := range s.restored {
			evs = append(evs, Event{Type: TypeRestored, Doc: doc, FromRev: rev, ToRev: rev, Time: now.UTC()})
		}
		s.restored = nil
		if all || now.Sub(s.last) >= n.cfg.Debounce || now.Sub(s.first) >= n.cfg.MaxWait {
			evs = append(evs, Event{Type: TypeChanged, Doc: doc, FromRev: s.from, ToRev: s.to,
				Ops: s.ops, Ins: s.ins, Del: s.del, Authors: s.authors, Time: now.UTC()})
			delete(n.pending, doc)
		}
	}
	// Events of one document in revision order, created first.
	slices.SortStableFunc(evs, func(a, b Event) int {
		if c := strings.Compare(a.Doc, b.Doc); c != 0 {
			return c
		}
		if a.ToRev != b.ToRev {
			return int(a.ToRev) - int(b.ToRev)
		}
		return typeOrder(a.Type) - typeOrder(b.Type)
	})
	return evs
}

func typeOrder(t string) int {
	switch t {
	case TypeCreated:
		return 0
	case TypeRestored:
		return 1
	}
	return 2
}

// enqueue stores one delivery per URL of each event (one outbox
// transaction) and queues them.
func (n *Notifier) enqueue(evs []Event) {
	if len(evs) == 0 {
		return
	}
	ds := n.persist(evs)
	var put []storage.OutboxEntry
	var del []string
	n.mu.Lock()
	for ti, t := range n.targets {
		t.queue = append(t.queue, ds[ti]...)
		put, del = n.boundLocked(t, put, del)
	}
	n.mu.Unlock()
	n.write(put, del)
	for _, t := range n.targets {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// persist makes the deliveries of evs (per target) and writes them, with
// the events' marks, to the outbox in one transaction.
func (n *Notifier) persist(evs []Event) [][]*delivery {
	n.mu.Lock()
	ds := n.deliveriesLocked(evs)
	n.mu.Unlock()
	var put []storage.OutboxEntry
	for _, list := range ds {
		put = n.appendEntries(put, list...)
	}
	put, del := n.appendMarks(put, evs)
	n.write(put, del)
	return ds
}

// deliveriesLocked gives each event an id (the same at every URL) and
// makes its deliveries, per target. n.mu must be held.
func (n *Notifier) deliveriesLocked(evs []Event) [][]*delivery {
	ds := make([][]*delivery, len(n.targets))
	for i := range evs {
		evs[i].ID = fmt.Sprintf("%016x", n.nextSeq())
	}
	for ti, t := range n.targets {
		for _, ev := range evs {
			ds[ti] = append(ds[ti], &delivery{key: fmt.Sprintf("%s%016x", keyPrefix, n.nextSeq()), URL: t.url, Event: ev})
		}
	}
	return ds
}

// appendMarks appends the outbox changes that record evs as queued: a
// change event moves its document's mark to its to_rev, a deleted event
// removes the mark. Created and restored events leave it: the change event
// covering their revision is still to come.
func (n *Notifier) appendMarks(put []storage.OutboxEntry, evs []Event) ([]storage.OutboxEntry, []string) {
	if n.cfg.Outbox == nil {
		return put, nil
	}
	type mark struct {
		rev  uint64
		gone bool
	}
	marks := map[string]mark{}
	for _, ev := range evs {
		switch ev.Type {
		case TypeChanged:
			marks[ev.Doc] = mark{rev: ev.ToRev}
		case TypeDeleted:
			marks[ev.Doc] = mark{gone: true}
		}
	}
	var del []string
	for doc, m := range marks {
		if m.gone {
			del = append(del, markPrefix+doc)
		} else {
			put = append(put, markEntry(doc, m.rev))
		}
	}
	return put, del
}

// queueAtStart queues and persists evs during New, before the senders start.
func (n *Notifier) queueAtStart(evs []Event) {
	if len(evs) == 0 {
		return
	}
	ds := n.deliveriesLocked(evs)
	var put []storage.OutboxEntry
	for ti, t := range n.targets {
		put = n.appendEntries(put, ds[ti]...)
		t.queue = append(t.queue, ds[ti]...)
	}
	put, del := n.appendMarks(put, evs)
	n.write(put, del)
}

// appendEntries appends the outbox entries of ds to put. The deliveries
// must not change meanwhile (n.mu held, or not yet queued).
func (n *Notifier) appendEntries(put []storage.OutboxEntry, ds ...*delivery) []storage.OutboxEntry {
	if n.cfg.Outbox == nil {
		return put
	}
	for _, d := range ds {
		b, err := json.Marshal(d)
		if err != nil {
			n.log.Error().Err(err).Str("event", d.Event.ID).Msg("webhook: delivery not persisted")
			continue
		}
		put = append(put, storage.OutboxEntry{Key: d.key, Value: b})
	}
	return put
}

// write applies put and del to the outbox.
func (n *Notifier) write(put []storage.OutboxEntry, del []string) {
	if n.cfg.Outbox == nil || len(put)+len(del) == 0 {
		return
	}
	if err := n.cfg.Outbox.WriteOutbox(context.WithoutCancel(n.ctx), put, del); err != nil {
		n.log.Error().Err(err).Int("put", len(put)).Int("delete", len(del)).Msg("webhook: outbox write failed (deliveries kept in memory, or repeated after a restart)")
	}
}

// boundLocked brings t's queue down to MaxQueue: the oldest change event
// not in flight is merged into the next change event of its document, or
// dropped when there is none. It appends the outbox changes to put and
// del. n.mu must be held.
func (n *Notifier) boundLocked(t *target, put []storage.OutboxEntry, del []string) ([]storage.OutboxEntry, []string) {
	for len(t.queue) > n.cfg.MaxQueue {
		i := slices.IndexFunc(t.queue, func(d *delivery) bool { return !d.inflight })
		if i < 0 {
			break
		}
		old := t.queue[i]
		j := -1
		if old.Event.Type == TypeChanged {
			for k := i + 1; k < len(t.queue); k++ {
				if d := t.queue[k]; d.Event.Type == TypeChanged && d.Event.Doc == old.Event.Doc && !d.inflight {
					j = k
					break
				}
			}
		}
		t.queue = slices.Delete(t.queue, i, i+1)
		del = append(del, old.key)
		if j < 0 {
			n.dropped.Add(1)
			n.log.Warn().Str("url", t.url).Str("event", old.Event.ID).Str("doc", old.Event.Doc).Msg("webhook: queue full, delivery dropped")
			continue
		}
		into := t.queue[j-1] // shifted by the deletion
		into.Event.merge(&old.Event)
		n.coalesced.Add(1)
		put = n.appendEntries(put, into)
	}
	return put, del
}

// Stats returns the counters.
func (n *Notifier) Stats() Stats {
	n.mu.Lock()
	q := 0
	for _, t := range n.targets {
		q += len(t.queue)
	}
	n.mu.Unlock()
	return Stats{
		Delivered: n.delivered.Load(),
		Failures:  n.failures.Load(),
		GaveUp:    n.gaveUp.Load(),
		Dropped:   n.dropped.Load(),
		Coalesced: n.coalesced.Load(),
		Queued:    q,
	}
}

// Close stops the notifier: attempts in flight are abandoned (they stay in
// the outbox), the changes not yet turned into events are, and the
// goroutines are waited for. Call it after the hub is closed, so that every
// commit has been seen. It is idempotent.
func (n *Notifier) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		n.cancel()
		// Persisted for the next start; not sent now.
		n.enqMu.Lock()
		defer n.enqMu.Unlock()
		evs := n.due(time.Now(), true)
		if len(evs) == 0 {
			return
		}
		n.persist(evs)
	})
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
