package storage

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var _ Follower = (*JetStream)(nil)

// followExpiry bounds one pull request of the follow feed: the server
// sends a heartbeat every half of it, so a consumer lost without a
// reconnection (a leader change) is noticed within it and recreated.
const followExpiry = 5 * time.Second

// Follow feeds fn the records appended to any document of the stream
// after Follow was called (see Follower). It reads the stream with an
// ordered consumer filtered on the documents' subjects, starting after
// the stream's last sequence as Follow found it, so the feed also works
// on an empty stream. The ordered consumer recreates itself after a
// reconnection or a leader change and resumes after the last stream
// sequence it delivered; if it gives up, a new one is created from there
// (backoff up to 1 s), so no message is skipped. A message that does not
// decode (or whose subject names no document) is skipped and counted
// (the undecodable field).
//
// One goroutine reads and calls fn. stop waits until fn is not running
// and never calls it again; it is idempotent and safe to call from any
// goroutine but fn's own (which would deadlock). The goroutine ends soon
// after stop or the end of ctx (during an outage, when nats.go's request
// recreating the consumer times out).
func (s *JetStream) Follow(ctx context.Context, fn func(doc string, recs []Record)) (func(), error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	info, err := call(s, ctx, func(ctx context.Context) (*jetstream.StreamInfo, error) {
		return s.stream.Info(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("storage: follow: stream info: %w", err)
	}
	f := &feed{s: s, fn: fn, last: info.State.LastSeq}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	it, err := f.open(ctx)
	if err != nil {
		f.cancel()
		return nil, fmt.Errorf("storage: follow: %w", err)
	}
	f.it = it
	stopCtx := context.AfterFunc(ctx, f.stop)
	go f.run()
	return func() {
		stopCtx()
		f.stop()
	}, nil
}

// feed is one Follow.
type feed struct {
	s  *JetStream
	fn func(doc string, recs []Record)

	// last is the stream sequence of the last message handed over (or
	// of the stream's end when Follow started). Only run uses it after
	// Follow returns.
	last uint64

	// fnMu is held while fn runs; stopped is set under it.
	fnMu    sync.Mutex
	stopped bool

	// itMu guards it, the current message iterator, and cons, its
	// consumer.
	itMu sync.Mutex
	it   jetstream.MessagesContext
	cons jetstream.Consumer

	// ctx ends at stop: it ends the waits between attempts to reopen.
	ctx    context.Context
	cancel context.CancelFunc
}

// open creates an ordered consumer of every document's subject from the
// stream sequence after f.last and starts iterating it.
func (f *feed) open(ctx context.Context) (jetstream.MessagesContext, error) {
	s := f.s
	cons, err := call(s, ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{s.cfg.Subject + ".>"},
			DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:    f.last + 1,
		})
	})
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(jetstream.PullExpiry(followExpiry))
	if err != nil {
		return nil, unavailable(err)
	}
	f.itMu.Lock()
	f.cons = cons
	f.itMu.Unlock()
	return it, nil
}

// stop ends the feed: fn is not running when it returns and is not
// called again.
func (f *feed) stop() {
	f.fnMu.Lock()
	f.stopped = true
	f.fnMu.Unlock()
	f.itMu.Lock()
	f.cancel()
	if f.it != nil {
		f.it.Stop()
	}
	f.itMu.Unlock()
}

// run reads messages until the feed is stopped or the connection closed.
func (f *feed) run() {
	defer f.deleteConsumer()
	conn := f.s.js.Conn()
	for attempt := 0; ; {
		f.itMu.Lock()
		it := f.it
		f.itMu.Unlock()
		for {
			msg, err := it.Next()
			if err != nil {
				break
			}
			attempt = 0
			if !f.deliver(msg) {
				return
			}
		}
		it.Stop()
		if conn.IsClosed() || f.ctx.Err() != nil {
			return
		}
		// The ordered consumer gave up (its iterator ended or failed):
		// start a new one after the last message handed over.
		f.deleteConsumer()
		attempt++
		if !sleepBackoff(f.ctx, attempt) {
			return
		}
		if next, err := f.open(f.ctx); err == nil {
			f.itMu.Lock()
			f.it = next
			if f.ctx.Err() != nil {
				next.Stop()
			}
			f.itMu.Unlock()
		}
	}
}

// deliver decodes msg and calls fn; it is false once the feed is stopped.
func (f *feed) deliver(msg jetstream.Msg) bool {
	md, err := msg.Metadata()
	if err != nil {
		f.s.undecodable.Add(1)
		return true
	}
	f.last = md.Sequence.Stream
	doc, recs, ok := f.decode(msg.Subject(), msg.Data())
	if !ok {
		f.s.undecodable.Add(1)
		return true
	}
	// The next append to doc from this node expects this message's
	// sequence: learning it here saves that append a lookup of the
	// subject's last message after every other node's append.
	f.s.advance(doc, logPos{head: recs[len(recs)-1].Rev, seq: md.Sequence.Stream})
	f.fnMu.Lock()
	defer f.fnMu.Unlock()
	if f.stopped {
		return false
	}
	f.fn(doc, recs)
	return true
}

func (f *feed) decode(subj string, data []byte) (string, []Record, bool) {
	tok, ok := strings.CutPrefix(subj, f.s.cfg.Subject+".")
	if !ok {
		return "", nil, false
	}
	doc, ok := decodeDoc(tok)
	if !ok {
		return "", nil, false
	}
	recs, err := decodeOps(data)
	return doc, recs, err == nil
}

// deleteConsumer removes the server's consumer of a stopped feed (it
// would otherwise linger until its inactivity threshold).
func (f *feed) deleteConsumer() {
	f.itMu.Lock()
	cons := f.cons
	f.itMu.Unlock()
	if cons == nil || f.s.js.Conn().Status() != nats.CONNECTED {
		return
	}
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.s.cfg.Timeout)
	defer cancel()
	// Best effort: else the server drops it after its inactivity threshold.
	_ = f.s.stream.DeleteConsumer(ctx, info.Name)
}
