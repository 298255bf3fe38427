package storage

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/ot"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrStale: a JetStream append lost the race for its document's next
// revision (another node appended first). The error is a *StaleError,
// which also matches ErrConflict.
var ErrStale = errors.New("storage: another node appended first")

// ErrSnapshotNotStored: the records of a JetStream write were appended but
// its snapshot could not be stored. The records are durable; only the
// snapshot (an optimization of reads) is missing.
var ErrSnapshotNotStored = errors.New("storage: records appended, snapshot not stored")

// StaleError is the error of a write whose first record was not head+1 on
// the stream any more. A caller catches up with Records(ctx, Doc, Rev-1,
// ...), applies its exactly-once rule on (client, seq), transforms and
// retries at Head+1: this store has already learned Head and Seq, so the
// retry's compare-and-set expects the right stream sequence.
type StaleError struct {
	Doc  string
	Rev  uint64 // first revision the write wanted to append
	Head uint64 // the document's head when the conflict was seen
	Seq  uint64 // stream sequence of the message holding Head (0: none)
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("storage: %q: append of revision %d lost the race, head is %d", e.Doc, e.Rev, e.Head)
}

// Is makes errors.Is(err, ErrStale) and errors.Is(err, ErrConflict) true.
func (e *StaleError) Is(target error) bool { return target == ErrStale || target == ErrConflict }

// WriteErrors is what a JetStream Commit of several writes returns when
// some failed: JetStream has no transaction across subjects, so each
// document's write succeeds or fails on its own. Errs[i] is the outcome of
// writes[i], nil when it was applied.
type WriteErrors struct {
	Errs []error
}

func (e *WriteErrors) Error() string {
	var b strings.Builder
	n := 0
	for _, err := range e.Errs {
		if err == nil {
			continue
		}
		if n > 0 {
			b.WriteString("; ")
		}
		n++
		if n > 3 {
			fmt.Fprintf(&b, "...")
			break
		}
		b.WriteString(err.Error())
	}
	return fmt.Sprintf("storage: %d of %d writes failed: %s", e.failed(), len(e.Errs), b.String())
}

func (e *WriteErrors) failed() int {
	n := 0
	for _, err := range e.Errs {
		if err != nil {
			n++
		}
	}
	return n
}

// Unwrap returns the failures, so errors.Is(err, ErrStale) says whether any
// write lost a race.
func (e *WriteErrors) Unwrap() []error {
	var out []error
	for _, err := range e.Errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// Defaults of JetStreamConfig.
const (
	DefaultJetStreamStream  = "COLLABD_OPS"
	DefaultJetStreamSubject = "collabd.ops"
	DefaultSnapshotBucket   = "collabd_snapshots"
)

// JetStreamConfig configures OpenJetStream. The zero value is usable.
type JetStreamConfig struct {
	// Stream is the name of the op log stream; "" means
	// DefaultJetStreamStream.
	Stream string
	// Subject is the prefix of the per-document subjects (the stream
	// binds Subject+".>"); "" means DefaultJetStreamSubject.
	Subject string
	// Replicas of the stream and the snapshot bucket when this call
	// creates them; 0 means 1. Production clusters want 3. An existing
	// stream keeps its replicas (change them with the nats CLI).
	Replicas int
	// SnapshotBucket is the KV bucket of snapshots and their index; ""
	// means DefaultSnapshotBucket.
	SnapshotBucket string
	// MaxMessageBytes bounds the payload of one appended message; a
	// write with more records is appended as several messages, and one
	// record must fit in one. 0 means the server's max_payload less
	// 4 KiB for the headers (512 KiB when the connection does not say);
	// a larger value is capped there.
	MaxMessageBytes int
	// Timeout bounds one request to JetStream (a publish attempt, a
	// read): a request that reached a server as it shut down is never
	// answered. 0 means 5 s.
	Timeout time.Duration
	// Attempts bounds the attempts of one request when JetStream answers
	// "unavailable" or not at all (a leader election); 0 means 8.
	Attempts int
	// Disconnected bounds how long a request waits for a lost NATS
	// connection to come back before it fails with ErrUnavailable, so
	// that clients hear at once that the store is away instead of after
	// every attempt timed out; 0 means 2 s.
	Disconnected time.Duration
}

func (c JetStreamConfig) withDefaults() JetStreamConfig {
	if c.Stream == "" {
		c.Stream = DefaultJetStreamStream
	}
	if c.Subject == "" {
		c.Subject = DefaultJetStreamSubject
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.SnapshotBucket == "" {
		c.SnapshotBucket = DefaultSnapshotBucket
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 512 << 10
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 8
	}
	if c.Disconnected <= 0 {
		c.Disconnected = 2 * time.Second
	}
	return c
}

// JetStream is the NATS JetStream implementation of Store: every document's
// op log is one subject of one stream, appended with a compare-and-set on
// the subject's last stream sequence, and snapshots live in a KV bucket
// (see docs/architecture.md, "The op log on JetStream").
//
// It is safe for concurrent use, by goroutines and by other instances on
// other nodes sharing the stream: appends to one document from anywhere
// are serialized by JetStream, and all but one of those racing for a
// revision fail with a *StaleError. Readers see every append JetStream
// acknowledged before they started (the head comes from the stream's
// leader, and what a range consumer on a replica behind has not yet is
// read from the leader). Commit runs the writes of different documents
// concurrently. Besides a Commit's own, the only goroutine it starts is
// a Follow feed's, which ends after its stop. A request that fails
// because NATS or JetStream cannot be reached (after its attempts) wraps
// ErrUnavailable. The NATS connection belongs to the caller, who closes
// it after Close.
type JetStream struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	kv     jetstream.KeyValue
	cfg    JetStreamConfig
	closed atomic.Bool

	// mu guards pos.
	mu sync.Mutex
	// pos caches, per document, the head and the stream sequence of the
	// message holding it: the expected last subject sequence of the next
	// append. A stale entry costs one failed compare-and-set and a lookup.
	pos map[string]logPos

	// gets counts the stream messages read, by sequence or through a
	// range consumer (tests use it to prove that reads start at a
	// snapshot).
	gets atomic.Int64
	// ranges counts the range consumers created (tests tell the two
	// ways of reading apart with it).
	ranges atomic.Int64
	// undecodable counts the messages the follow feed skipped because
	// they do not decode.
	undecodable atomic.Int64
}

// logPos is where a document's log ends.
type logPos struct {
	head uint64 // revision of the newest record, 0 when none
	seq  uint64 // stream sequence of the message holding head, 0 when none
}

var _ Store = (*JetStream)(nil)

// OpenJetStream creates, or binds to, the op log stream and the snapshot
// bucket. Creating is idempotent and safe when several nodes start at once:
// each tries to create and, when another was first, binds to what exists
// (after checking that it is compatible); it never updates an existing
// stream's configuration.
func OpenJetStream(ctx context.Context, js jetstream.JetStream, cfg JetStreamConfig) (*JetStream, error) {
	chosen := cfg.MaxMessageBytes > 0
	cfg = cfg.withDefaults()
	if mp := js.Conn().MaxPayload(); mp > 0 && (!chosen || int64(cfg.MaxMessageBytes) > mp-4096) {
		cfg.MaxMessageBytes = int(mp - 4096)
	}
	scfg := jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "collabd op logs, one subject per document",
		Subjects:    []string{cfg.Subject + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Retention:   jetstream.LimitsPolicy,
		// Reads go to the stream leader, so a node reads its own appends
		// (direct gets may be answered by a lagging replica).
		AllowDirect: false,
		DenyDelete:  true,
		Duplicates:  2 * time.Minute,
	}
	stream, err := untilReady(ctx, cfg.Timeout, func(ctx context.Context) (jetstream.Stream, error) {
		stream, err := js.CreateStream(ctx, scfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			stream, err = js.Stream(ctx, cfg.Stream)
			if err == nil {
				err = compatibleStream(stream.CachedInfo().Config, scfg)
			}
		}
		return stream, err
	})
	if err != nil {
		return nil, fmt.Errorf("storage: jetstream stream %s: %w", cfg.Stream, err)
	}
	kcfg := jetstream.KeyValueConfig{
		Bucket:      cfg.SnapshotBucket,
		Description: "collabd snapshots",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	}
	kv, err := untilReady(ctx, cfg.Timeout, func(ctx context.Context) (jetstream.KeyValue, error) {
		kv, err := js.CreateKeyValue(ctx, kcfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.SnapshotBucket)
		}
		return kv, err
	})
	if err != nil {
		return nil, fmt.Errorf("storage: jetstream bucket %s: %w", cfg.SnapshotBucket, err)
	}
	return &JetStream{js: js, stream: stream, kv: kv, cfg: cfg, pos: make(map[string]logPos)}, nil
}

// untilReady retries f, each attempt bounded by timeout, while JetStream
// is unavailable and ctx lasts: a cluster that has just started answers
// nothing until it has elected its meta leader.
func untilReady[T any](ctx context.Context, timeout time.Duration, f func(context.Context) (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, timeout)
		v, err := f(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !retryable(err) || !sleepBackoff(ctx, attempt) {
			return v, unavailable(err)
		}
	}
}

// compatibleStream refuses an existing stream this store cannot work with.
func compatibleStream(have, want jetstream.StreamConfig) error {
	if !slices.Contains(have.Subjects, want.Subjects[0]) {
		return fmt.Errorf("existing stream binds %v, not %s", have.Subjects, want.Subjects[0])
	}
	if have.AllowDirect || have.DenyPurge || have.Retention != jetstream.LimitsPolicy ||
		have.MaxMsgs > 0 || have.MaxBytes > 0 || have.MaxAge > 0 || have.MaxMsgsPerSubject > 0 {
		return errors.New("existing stream has limits, direct gets or purge denied: it would lose or hide records")
	}
	return nil
}

// Close forgets the store; the NATS connection belongs to the caller. It
// is idempotent.
func (s *JetStream) Close() error {
	s.closed.Store(true)
	return nil
}

func (s *JetStream) usable(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// Subject and key encoding. Document ids are 1-128 characters of
// A-Za-z0-9._~- ; a subject token cannot hold '.', and a KV key cannot hold
// '~'. Both are written as '=' and two hex digits ('=' is in neither the id
// alphabet nor needs escaping in subjects or keys), so the encoding is
// injective and readable: "notes.v2" becomes "notes=2Ev2".
func encodeDoc(doc string) string {
	if !strings.ContainsAny(doc, ".~") {
		return doc
	}
	var b strings.Builder
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		if c == '.' || c == '~' {
			fmt.Fprintf(&b, "=%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// decodeDoc inverts encodeDoc; ok is false for a token no id encodes to.
func decodeDoc(tok string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(tok) {
			return "", false
		}
		v, err := strconv.ParseUint(tok[i+1:i+3], 16, 8)
		if err != nil || (v != '.' && v != '~') || tok[i+1:i+3] != strings.ToUpper(tok[i+1:i+3]) {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	doc := b.String()
	return doc, contract.ValidDocID(doc) && encodeDoc(doc) == tok
}

// MaxMessageBytes returns the largest payload of one appended message
// (JetStreamConfig.MaxMessageBytes as the server allows it): a record (an
// op with its client and user) must fit in one, and a snapshot (a text)
// in one KV value of that size.
func (s *JetStream) MaxMessageBytes() int { return s.cfg.MaxMessageBytes }

func (s *JetStream) subject(doc string) string { return s.cfg.Subject + "." + encodeDoc(doc) }

// KV keys: the snapshot index of a document and one key per snapshot.
func snapIndexKey(doc string) string        { return "idx." + encodeDoc(doc) }
func snapKey(doc string, rev uint64) string { return fmt.Sprintf("snap.%s.%016x", encodeDoc(doc), rev) }

// Message payload: version, uvarint first revision, uvarint count, then
// per record a uvarint length and the record as the bbolt log stores it.
const opsV1 = 1

func appendOps(b []byte, recs []Record) []byte {
	b = append(b, opsV1)
	b = binary.AppendUvarint(b, recs[0].Rev)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	var rec []byte
	for i := range recs {
		rec = appendRecord(rec[:0], &recs[i])
		b = binary.AppendUvarint(b, uint64(len(rec)))
		b = append(b, rec...)
	}
	return b
}

func decodeOps(data []byte) ([]Record, error) {
	if len(data) == 0 || data[0] != opsV1 {
		return nil, fmt.Errorf("%w: op message: unknown format", ErrCorrupt)
	}
	d := decoder{b: data[1:]}
	first, n := d.uvarint(), d.uvarint()
	if d.err != nil || n == 0 || n > uint64(len(data)) {
		return nil, fmt.Errorf("%w: op message header", ErrCorrupt)
	}
	out := make([]Record, 0, n)
	for i := uint64(0); i < n; i++ {
		l := d.uvarint()
		if d.err != nil || l > uint64(len(d.b)) {
			return nil, fmt.Errorf("%w: op message record %d", ErrCorrupt, first+i)
		}
		r, err := decodeRecord(first+i, d.b[:l], true)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		d.b = d.b[l:]
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: op message has trailing bytes", ErrCorrupt)
	}
	return out, nil
}

// msgRange returns the revisions a message holds without decoding records.
func msgRange(data []byte) (first, last uint64, err error) {
	if len(data) == 0 || data[0] != opsV1 {
		return 0, 0, fmt.Errorf("%w: op message: unknown format", ErrCorrupt)
	}
	d := decoder{b: data[1:]}
	first, n := d.uvarint(), d.uvarint()
	if d.err != nil || n == 0 || first == 0 {
		return 0, 0, fmt.Errorf("%w: op message header", ErrCorrupt)
	}
	return first, first + n - 1, nil
}

// isWrongLastSeq reports a failed compare-and-set (R1 and replicated
// streams answer with different codes).
func isWrongLastSeq(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// retryable reports an error after which the publish may or may not have
// been stored and JetStream may answer again soon (leader elections).
func retryable(err error) bool {
	var ae *jetstream.APIError
	if errors.As(err, &ae) && ae.Code == 503 {
		return true
	}
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, nats.ErrDisconnected)
}

// unreachable reports an error that says NATS or JetStream cannot be
// reached now: a retryable error, or a connection that is closed or
// draining (not retried: it will not come back by itself).
func unreachable(err error) bool {
	return retryable(err) || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionDraining)
}

// unavailable wraps ErrUnavailable around an error of the last attempt of
// a request when that error says JetStream could not be reached; other
// errors (nil included) are returned as they are.
func unavailable(err error) error {
	if err == nil || !unreachable(err) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// last returns where doc's log ends on the stream, and remembers it.
func (s *JetStream) last(ctx context.Context, doc string) (logPos, time.Time, error) {
	m, err := call(s, ctx, func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
		return s.stream.GetLastMsgForSubject(ctx, s.subject(doc))
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		s.remember(doc, logPos{}, true)
		return logPos{}, time.Time{}, nil
	}
	if err != nil {
		return logPos{}, time.Time{}, fmt.Errorf("storage: %q: last message: %w", doc, err)
	}
	recs, err := decodeOps(m.Data)
	if err != nil {
		return logPos{}, time.Time{}, fmt.Errorf("%q: %w", doc, err)
	}
	p := logPos{head: recs[len(recs)-1].Rev, seq: m.Sequence}
	s.remember(doc, p, true)
	return p, recs[len(recs)-1].Time, nil
}

// remember stores p as doc's end of log. It only moves forward, but for
// a fresh lookup that found the subject empty.
func (s *JetStream) remember(doc string, p logPos, fresh bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A lookup answered before one of our own appends must not move the
	// position back; only an empty subject (a delete) does.
	if cur, ok := s.pos[doc]; ok && cur.seq > p.seq && (!fresh || p.seq != 0) {
		return
	}
	s.pos[doc] = p
}

// advance moves doc's remembered end of log forward to p, if doc is
// remembered at all (the feed brings every document's appends; only those
// this store has used are worth keeping).
func (s *JetStream) advance(doc string, p logPos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.pos[doc]; ok && p.seq > cur.seq {
		s.pos[doc] = p
	}
}

func (s *JetStream) cached(doc string) (logPos, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pos[doc]
	return p, ok
}

func (s *JetStream) forget(doc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pos, doc)
}

// Commit appends each write's records to its document's subject, each
// message with the expected last subject sequence, then stores its
// snapshot. Writes of different documents are independent (JetStream has
// no transaction across subjects): they run concurrently and the error is
// a *WriteErrors when there are several writes and some failed. A write
// that lost the race fails with a *StaleError and appended nothing, unless
// it was split into several messages (over MaxMessageBytes) and a later
// one lost: the error then says which revisions were appended, and the
// catch-up finds them under the writer's own (client, seq).
//
// Commit returns once JetStream acknowledged: the stream's replicas (a
// quorum with R3) hold the records, but a server fsyncs only every
// sync_interval (2 minutes by default) unless it runs with
// sync_interval: always.
func (s *JetStream) Commit(ctx context.Context, writes []Write) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := validateWrites(writes); err != nil {
		return err
	}
	if len(writes) == 1 {
		return s.commitOne(ctx, &writes[0], nil)
	}
	pre := s.sendFirst(writes)
	errs := make([]error, len(writes))
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range writes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			errs[i] = s.commitOne(ctx, &writes[i], pre[i])
			<-sem
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return &WriteErrors{Errs: errs}
		}
	}
	return nil
}

// sent is the one message of a write that Commit published asynchronously
// before waiting for any answer, at p.
type sent struct {
	id   string
	data []byte
	p    logPos
	fut  jetstream.PubAckFuture
}

// sendFirst publishes, without waiting, the message of every write of a
// batch that is one message long and continues the log as this store
// knows it: the publishes of a commit across many documents leave in a
// few writes to the socket instead of one request-reply each. Each
// commitOne then only waits for its answer. The others get nil.
func (s *JetStream) sendFirst(writes []Write) []*sent {
	pre := make([]*sent, len(writes))
	if s.js.Conn().Status() != nats.CONNECTED {
		return pre
	}
	for i := range writes {
		w := &writes[i]
		if w.Delete || len(w.Records) == 0 {
			continue
		}
		p, ok := s.cached(w.Doc)
		if !ok || w.Records[0].Rev != p.head+1 {
			continue
		}
		if n, err := s.chunk(w.Records); err != nil || n < len(w.Records) {
			continue
		}
		m := &sent{id: newMsgID(), data: appendOps(nil, w.Records), p: p}
		msg := &nats.Msg{Subject: s.subject(w.Doc), Data: m.data, Header: nats.Header{}}
		fut, err := s.js.PublishMsgAsync(msg, jetstream.WithMsgID(m.id), jetstream.WithExpectLastSequencePerSubject(p.seq))
		if err != nil {
			continue // not sent: commitOne appends it the usual way
		}
		m.fut = fut
		pre[i] = m
	}
	return pre
}

// awaitSent waits for the answer to m, the message of a write holding
// revisions from first on. Without an answer in time, or with one saying
// JetStream was unavailable, the message may be stored: it is sent again
// with the same id, as append's retries are.
func (s *JetStream) awaitSent(ctx context.Context, doc string, m *sent, first uint64) (uint64, error) {
	t := time.NewTimer(s.cfg.Timeout)
	defer t.Stop()
	select {
	case ack := <-m.fut.Ok():
		return ack.Sequence, nil
	case err := <-m.fut.Err():
		if isWrongLastSeq(err) {
			return s.lostRace(ctx, doc, m.id, first, m.p, false)
		}
		if !retryable(err) {
			return 0, fmt.Errorf("storage: %q: append (outcome unknown): %w", doc, unavailable(err))
		}
	case <-t.C:
	case <-ctx.Done():
		return 0, fmt.Errorf("storage: %q: append: outcome unknown: %w", doc, ctx.Err())
	}
	return s.appendID(ctx, doc, m.id, m.data, first, m.p, true)
}

// commitOne applies one write; pre, when not nil, is its message already
// published by sendFirst.
func (s *JetStream) commitOne(ctx context.Context, w *Write, pre *sent) error {
	if w.Delete {
		return s.deleteDoc(ctx, w.Doc)
	}
	if w.HeadSnapshot != nil {
		return s.commitHead(ctx, w, pre)
	}
	p, ok := s.cached(w.Doc)
	if pre != nil {
		p, ok = pre.p, true
	}
	if ok && len(w.Records) > 0 && w.Records[0].Rev <= p.head && w.Records[0].Rev > 1 {
		// The feed (or an ack) already showed a later append: this one
		// would lose its compare-and-set, so it is not sent. (After a
		// delete on another node the head is behind; the caller's
		// catch-up reads the log's end, which this store then learns.
		// A first record starts a new log: the lookup below tells.)
		return &StaleError{Doc: w.Doc, Rev: w.Records[0].Rev, Head: p.head, Seq: p.seq}
	}
	if !ok || (len(w.Records) > 0 && w.Records[0].Rev != p.head+1) ||
		(len(w.Records) == 0 && w.Snapshot != nil && w.Snapshot.Rev > p.head) {
		var err error
		if p, _, err = s.last(ctx, w.Doc); err != nil {
			return err
		}
	}
	newHead := p.head
	if n := len(w.Records); n > 0 {
		first := w.Records[0].Rev
		if first <= p.head {
			return &StaleError{Doc: w.Doc, Rev: first, Head: p.head, Seq: p.seq}
		}
		if first != p.head+1 {
			return fmt.Errorf("%w: %q: first record %d, head %d", ErrConflict, w.Doc, first, p.head)
		}
		newHead = w.Records[n-1].Rev
	}
	if w.Snapshot == nil && len(w.Records) == 0 && newHead == 0 {
		return fmt.Errorf("%w: %q: empty write to a missing document", ErrConflict, w.Doc)
	}
	if sn := w.Snapshot; sn != nil && (newHead == 0 || sn.Rev == 0 || sn.Rev > newHead) {
		return fmt.Errorf("%w: %q: snapshot %d, head %d", ErrConflict, w.Doc, sn.Rev, newHead)
	}
	// snapSeq: the message holding the snapshot's revision, or one before it.
	var snapSeq uint64
	if w.Snapshot != nil && w.Snapshot.Rev == p.head {
		snapSeq = p.seq
	}
	for recs := w.Records; len(recs) > 0; {
		n, err := s.chunk(recs)
		if err != nil {
			return err
		}
		var seq uint64
		if pre != nil && len(recs) == len(w.Records) {
			seq, err = s.awaitSent(ctx, w.Doc, pre, recs[0].Rev)
		} else {
			seq, err = s.append(ctx, w.Doc, appendOps(nil, recs[:n]), recs[0].Rev, p)
		}
		if err != nil {
			if len(recs) < len(w.Records) {
				err = fmt.Errorf("storage: %q: revisions %d-%d appended, the rest not: %w",
					w.Doc, w.Records[0].Rev, recs[0].Rev-1, err)
			}
			return err
		}
		p = logPos{head: recs[n-1].Rev, seq: seq}
		s.remember(w.Doc, p, false)
		if sn := w.Snapshot; sn != nil && sn.Rev >= recs[0].Rev && sn.Rev <= p.head {
			snapSeq = seq
		}
		recs = recs[n:]
	}
	if w.Snapshot != nil {
		if err := s.putSnapshot(ctx, w.Doc, *w.Snapshot, snapSeq); err != nil {
			if len(w.Records) > 0 {
				return fmt.Errorf("%w: %q: %w", ErrSnapshotNotStored, w.Doc, err)
			}
			return err
		}
	}
	return nil
}

// chunk returns how many of recs fit in one message.
func (s *JetStream) chunk(recs []Record) (int, error) {
	size := 1 + 2*binary.MaxVarintLen64
	for i := range recs {
		r := &recs[i]
		size += binary.MaxVarintLen64 + recordOverhead + len(r.Client) + len(r.User) + len(r.Op)
		if size > s.cfg.MaxMessageBytes {
			if i == 0 {
				return 0, fmt.Errorf("%w: record %d is larger than a message (%d bytes)", ErrInvalid, r.Rev, s.cfg.MaxMessageBytes)
			}
			return i, nil
		}
	}
	return len(recs), nil
}

// append publishes one message after p.seq on doc's subject and returns
// its stream sequence. Each message carries a random Nats-Msg-Id: when an
// attempt's answer was lost and the retry finds the slot taken, the id of
// the message in the slot says whether it is ours.
func (s *JetStream) append(ctx context.Context, doc string, data []byte, first uint64, p logPos) (uint64, error) {
	return s.appendID(ctx, doc, newMsgID(), data, first, p, false)
}

// newMsgID returns a random Nats-Msg-Id.
func newMsgID() string {
	var idb [12]byte
	crand.Read(idb[:])
	return hex.EncodeToString(idb[:])
}

// appendID is append with the message id given; tried says that a message
// with this id was sent before (it may be on the stream).
func (s *JetStream) appendID(ctx context.Context, doc, id string, data []byte, first uint64, p logPos, tried bool) (uint64, error) {
	subj := s.subject(doc)
	var err error
	for attempt := 0; attempt < s.cfg.Attempts; attempt++ {
		if attempt > 0 && !sleepBackoff(ctx, attempt) {
			return 0, fmt.Errorf("storage: %q: append: outcome unknown: %w (last error: %w)", doc, ctx.Err(), unavailable(err))
		}
		if cerr := s.connected(ctx); cerr != nil {
			if attempt > 0 {
				return 0, fmt.Errorf("storage: %q: append (outcome unknown): %w", doc, cerr)
			}
			return 0, fmt.Errorf("storage: %q: append: %w", doc, cerr)
		}
		actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		msg := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
		var ack *jetstream.PubAck
		ack, err = s.js.PublishMsg(actx, msg, jetstream.WithMsgID(id), jetstream.WithExpectLastSequencePerSubject(p.seq))
		cancel()
		if err == nil {
			return ack.Sequence, nil
		}
		if isWrongLastSeq(err) {
			return s.lostRace(ctx, doc, id, first, p, tried || attempt > 0)
		}
		if ctx.Err() != nil || !retryable(err) {
			break
		}
	}
	return 0, fmt.Errorf("storage: %q: append (outcome unknown): %w", doc, unavailable(err))
}

// connected waits up to cfg.Disconnected for the NATS connection to be up
// and fails with ErrUnavailable when it is not.
func (s *JetStream) connected(ctx context.Context) error {
	nc := s.js.Conn()
	if nc.Status() == nats.CONNECTED {
		return nil
	}
	deadline := time.Now().Add(s.cfg.Disconnected)
	for {
		st := nc.Status()
		switch {
		case st == nats.CONNECTED:
			return nil
		case st == nats.CLOSED || time.Now().After(deadline):
			return fmt.Errorf("%w: the NATS connection is %s", ErrUnavailable, strings.ToLower(st.String()))
		case ctx.Err() != nil:
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sleepBackoff waits before retry number attempt (1, 2, ...): jittered
// and exponential from 20 ms to 1 s, so that nodes retrying after the same
// leader election do not come back in step. It is false when ctx ended.
func sleepBackoff(ctx context.Context, attempt int) bool {
	b := min(20*time.Millisecond<<min(attempt-1, 6), time.Second)
	t := time.NewTimer(b/2 + rand.N(b))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// call runs the JetStream request f, each attempt bounded by
// cfg.Timeout, and retries it while JetStream is unavailable; when the
// attempts are exhausted (or the connection is closed) its error wraps
// ErrUnavailable. Only requests that are safe to repeat go through it
// (reads, puts of whole values, purges, and compare-and-sets whose
// callers re-read on conflict).
func call[T any](s *JetStream, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	var v T
	var err error
	for attempt := 0; attempt < s.cfg.Attempts; attempt++ {
		if attempt > 0 && !sleepBackoff(ctx, attempt) {
			break
		}
		if cerr := s.connected(ctx); cerr != nil {
			return v, cerr
		}
		actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		v, err = f(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !retryable(err) {
			return v, unavailable(err)
		}
	}
	return v, unavailable(err)
}

// getMsg returns the first message of subj at or after stream sequence seq.
func (s *JetStream) getMsg(ctx context.Context, seq uint64, subj string) (*jetstream.RawStreamMsg, error) {
	s.gets.Add(1)
	return call(s, ctx, func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
		return s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
	})
}

func (s *JetStream) kvGet(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	return call(s, ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return s.kv.Get(ctx, key) })
}

func (s *JetStream) kvPurge(ctx context.Context, key string) error {
	_, err := call(s, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.kv.Purge(ctx, key) })
	return err
}

// lostRace is called when the subject's last sequence is not p.seq: the
// message that took the slot after p.seq is either an earlier attempt of
// ours (id matches: success; only possible when retried) or another
// node's (a *StaleError). The head it reports comes from the feed when
// the feed has already seen a later append (no request: a hot document
// edited through several nodes loses races often), else from the stream.
func (s *JetStream) lostRace(ctx context.Context, doc, id string, first uint64, p logPos, retried bool) (uint64, error) {
	if retried {
		m, err := s.getMsg(ctx, p.seq+1, s.subject(doc))
		if err == nil && m.Header.Get(jetstream.MsgIDHeader) == id {
			return m.Sequence, nil
		}
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, fmt.Errorf("storage: %q: append lost the race, then: %w", doc, err)
		}
	}
	if cur, ok := s.cached(doc); ok && cur.seq > p.seq {
		return 0, &StaleError{Doc: doc, Rev: first, Head: cur.head, Seq: cur.seq}
	}
	// Nothing after p.seq means the subject was purged (a delete).
	now, _, err := s.last(ctx, doc)
	if err != nil {
		return 0, err
	}
	return 0, &StaleError{Doc: doc, Rev: first, Head: now.head, Seq: now.seq}
}

// Snapshot index: the revisions of a document's snapshots, each with a
// stream sequence at or before the message holding that revision, so that
// a scan for the records after the snapshot starts there. Encoding:
// version, then (uvarint rev, uvarint seq) pairs in ascending rev order.
const snapIndexV1 = 1

type snapEntry struct {
	rev, seq uint64
	// fold marks the snapshot at the fold horizon; created is then
	// Meta.Created, whose message the fold purged (see
	// store_jetstream_history.go, which also encodes them).
	fold    bool
	created int64
}

func decodeSnapIndex(v []byte) ([]snapEntry, error) {
	if len(v) > 0 && v[0] == snapIndexV2 {
		return decodeFoldedIndex(v)
	}
	if len(v) == 0 || v[0] != snapIndexV1 {
		return nil, fmt.Errorf("%w: snapshot index: unknown format", ErrCorrupt)
	}
	d := decoder{b: v[1:]}
	var out []snapEntry
	for len(d.b) > 0 && d.err == nil {
		e := snapEntry{rev: d.uvarint(), seq: d.uvarint()}
		if len(out) > 0 && e.rev <= out[len(out)-1].rev {
			return nil, fmt.Errorf("%w: snapshot index not ascending", ErrCorrupt)
		}
		out = append(out, e)
	}
	if d.err != nil {
		return nil, fmt.Errorf("snapshot index: %w", d.err)
	}
	return out, nil
}

func appendSnapIndex(b []byte, idx []snapEntry) []byte {
	b = appendFoldHeader(b, idx)
	b = append(b, snapIndexV1)
	for _, e := range idx {
		b = binary.AppendUvarint(b, e.rev)
		b = binary.AppendUvarint(b, e.seq)
	}
	return b
}

// snapIndex returns doc's snapshot index and its KV revision (0: none).
func (s *JetStream) snapIndex(ctx context.Context, doc string) ([]snapEntry, uint64, error) {
	e, err := s.kvGet(ctx, snapIndexKey(doc))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("storage: %q: snapshot index: %w", doc, err)
	}
	idx, err := decodeSnapIndex(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("%q: %w", doc, err)
	}
	return idx, e.Revision(), nil
}

// putSnapshot stores the text, then adds it to the index with a
// compare-and-set on the index key (two nodes may snapshot one document
// at once). A seq of 0 is replaced by the best lower bound the index has.
func (s *JetStream) putSnapshot(ctx context.Context, doc string, sn Snapshot, seq uint64) error {
	put := func(ctx context.Context) (uint64, error) {
		return s.kv.Put(ctx, snapKey(doc, sn.Rev), appendSnapshot(nil, sn.Text))
	}
	if _, err := call(s, ctx, put); err != nil {
		return fmt.Errorf("storage: %q: snapshot %d: %w", doc, sn.Rev, err)
	}
	for range 16 {
		idx, kvRev, err := s.snapIndex(ctx, doc)
		if err != nil {
			return err
		}
		if seq == 0 {
			// Not known from the write: find the message once, so that
			// every later read starts there.
			if seq, err = s.locate(ctx, doc, startSeq(idx, sn.Rev), sn.Rev); err != nil {
				return err
			}
		}
		i, found := slices.BinarySearchFunc(idx, sn.Rev, func(e snapEntry, r uint64) int { return cmp.Compare(e.rev, r) })
		if found && idx[i].seq == seq {
			return nil
		}
		if found {
			// Left by a deleted incarnation of the document.
			idx = slices.Delete(idx, i, i+1)
		}
		idx = slices.Insert(idx, i, snapEntry{rev: sn.Rev, seq: seq})
		v := appendSnapIndex(nil, idx)
		if kvRev == 0 {
			_, err = call(s, ctx, func(ctx context.Context) (uint64, error) { return s.kv.Create(ctx, snapIndexKey(doc), v) })
		} else {
			_, err = call(s, ctx, func(ctx context.Context) (uint64, error) { return s.kv.Update(ctx, snapIndexKey(doc), v, kvRev) })
		}
		if err == nil {
			return nil
		}
		if !isWrongLastSeq(err) && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("storage: %q: snapshot index: %w", doc, err)
		}
	}
	return fmt.Errorf("storage: %q: snapshot index: too many concurrent updates", doc)
}

// snapshotAtOrBelow returns the newest snapshot at or below rev and the
// stream sequence to scan from for the records after it. A snapshot the
// index names but the bucket lacks (a replica behind, a concurrent
// delete) is skipped for an older one.
func (s *JetStream) snapshotAtOrBelow(ctx context.Context, doc string, idx []snapEntry, rev uint64) (Snapshot, uint64, error) {
	if sn, seq, ok, err := s.headAtOrBelow(ctx, doc, idx, rev); err != nil || ok {
		return sn, seq, err
	}
	i, found := slices.BinarySearchFunc(idx, rev, func(e snapEntry, r uint64) int { return cmp.Compare(e.rev, r) })
	if found {
		i++
	}
	for i--; i >= 0; i-- {
		if ok, err := s.entryHolds(ctx, doc, idx[i]); err != nil {
			return Snapshot{}, 0, err
		} else if !ok {
			continue
		}
		e, err := s.kvGet(ctx, snapKey(doc, idx[i].rev))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return Snapshot{}, 0, fmt.Errorf("storage: %q: snapshot %d: %w", doc, idx[i].rev, err)
		}
		text, err := decodeSnapshot(idx[i].rev, e.Value())
		if err != nil {
			return Snapshot{}, 0, fmt.Errorf("%q: %w", doc, err)
		}
		return Snapshot{Rev: idx[i].rev, Text: text}, idx[i].seq, nil
	}
	return Snapshot{}, 0, nil
}

// entryHolds reports whether the index entry e belongs to the log on the
// stream now: the message at e.seq is on doc's subject and holds e.rev. An
// entry of a deleted incarnation of the document (a snapshot that raced the
// delete) points at a purged message, and is ignored.
func (s *JetStream) entryHolds(ctx context.Context, doc string, e snapEntry) (bool, error) {
	m, err := s.getMsg(ctx, e.seq, s.subject(doc))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: %q: read: %w", doc, err)
	}
	first, last, err := msgRange(m.Data)
	if err != nil {
		return false, fmt.Errorf("%q: %w", doc, err)
	}
	return m.Sequence == e.seq && first <= e.rev && e.rev <= last, nil
}

// startSeq returns a stream sequence at or before the message holding
// revision rev (1: scan from the subject's first message).
func startSeq(idx []snapEntry, rev uint64) uint64 {
	i, found := slices.BinarySearchFunc(idx, rev, func(e snapEntry, r uint64) int { return cmp.Compare(e.rev, r) })
	if found {
		i++
	}
	if i == 0 || idx[i-1].seq == 0 {
		return 1
	}
	return idx[i-1].seq
}

// scan reads doc's messages from stream sequence from on and returns the
// records with revisions in [lo, hi], which must all be there. The first
// messages are read one request each (most reads need one or two); past
// directReads, a range consumer fetches the rest in batches.
func (s *JetStream) scan(ctx context.Context, doc string, from, lo, hi uint64) ([]Record, error) {
	subj := s.subject(doc)
	out := make([]Record, 0, min(hi-lo+1, 1024))
	want := lo
	rr := rangeReader{s: s, subj: subj}
	defer rr.close()
	for seq, n := max(from, 1), 0; want <= hi; n++ {
		var batch []streamMsg
		if n >= directReads {
			// At most one message per revision still wanted, and one
			// before them until a record was found (the message
			// holding a snapshot's revision).
			need := hi - want + 1
			if want == lo {
				need++
			}
			var err error
			if batch, err = rr.read(ctx, seq, need); err != nil {
				return nil, fmt.Errorf("storage: %q: read: %w", doc, err)
			}
		}
		if len(batch) == 0 {
			// Also where the range consumer has nothing (a replica
			// behind the leader) or failed: the leader answers gets.
			m, err := s.getMsg(ctx, seq, subj)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil, fmt.Errorf("%w: %q: log ends before revision %d", ErrNotFound, doc, want)
			}
			if err != nil {
				return nil, fmt.Errorf("storage: %q: read: %w", doc, err)
			}
			batch = []streamMsg{{seq: m.Sequence, data: m.Data}}
		}
		for _, m := range batch {
			if want > hi {
				break
			}
			seq = m.seq + 1
			first, last, err := msgRange(m.data)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", doc, err)
			}
			if last < want {
				continue
			}
			if first > want {
				return nil, fmt.Errorf("%w: %q: log gap: want %d, message %d starts at %d", ErrCorrupt, doc, want, m.seq, first)
			}
			recs, err := decodeOps(m.data)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", doc, err)
			}
			for _, r := range recs[want-first:] {
				if r.Rev > hi {
					break
				}
				out = append(out, r)
				want++
			}
		}
	}
	return out, nil
}

// directReads is how many messages a scan reads with one get each before
// it starts a range consumer (a consumer costs a request to create and
// one to delete).
const directReads = 2

// rangeBatch bounds the messages of one fetch of a range consumer.
const rangeBatch = 256

// streamMsg is a message of a document's subject: its stream sequence
// and payload.
type streamMsg struct {
	seq  uint64
	data []byte
}

// rangeReader reads a subject forward in batches with an ephemeral pull
// consumer, created at the first read and deleted by close. Any failure
// (or a message missing from the consumer's delivery sequence) disables
// it, and the scan goes on with gets, which report the error if there is
// one.
type rangeReader struct {
	s      *JetStream
	subj   string
	cons   jetstream.Consumer
	next   uint64 // stream sequence the consumer delivers from
	dseq   uint64 // consumer sequence of the last message delivered
	failed bool
}

// read returns up to limit messages of the subject from stream sequence
// seq on, none when the consumer has none or failed. Its error is
// ErrUnavailable: creating the consumer failed for want of JetStream
// (gets would fail the same way, after as many attempts again).
func (r *rangeReader) read(ctx context.Context, seq, limit uint64) ([]streamMsg, error) {
	if r.failed || (r.cons != nil && seq != r.next) {
		r.failed = true
		return nil, nil
	}
	if r.cons == nil {
		cons, err := call(r.s, ctx, func(ctx context.Context) (jetstream.Consumer, error) {
			return r.s.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
				FilterSubject:     r.subj,
				DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
				OptStartSeq:       seq,
				AckPolicy:         jetstream.AckNonePolicy,
				MemoryStorage:     true,
				Replicas:          1,
				InactiveThreshold: rangeInactive,
			})
		})
		if err != nil {
			r.failed = true
			if errors.Is(err, ErrUnavailable) {
				return nil, err
			}
			return nil, nil
		}
		r.cons, r.next = cons, seq
		r.s.ranges.Add(1)
	}
	res, err := r.cons.FetchNoWait(int(min(limit, rangeBatch)))
	if err != nil {
		r.failed = true
		return nil, nil
	}
	var out []streamMsg
	for m := range res.Messages() {
		md, err := m.Metadata()
		if r.failed || err != nil || md.Sequence.Consumer != r.dseq+1 {
			r.failed = true // drain the batch, keep what came in order
			continue
		}
		r.dseq = md.Sequence.Consumer
		r.next = md.Sequence.Stream + 1
		out = append(out, streamMsg{seq: md.Sequence.Stream, data: m.Data()})
	}
	if res.Error() != nil || len(out) == 0 {
		r.failed = true
	}
	r.s.gets.Add(int64(len(out)))
	return out, nil
}

// rangeInactive is the inactivity after which the server deletes a range
// consumer that close could not delete.
const rangeInactive = 30 * time.Second

// close deletes the consumer, if any (best effort: the server drops it
// after rangeInactive anyway, so not tried while disconnected).
func (r *rangeReader) close() {
	if r.cons == nil || r.s.js.Conn().Status() != nats.CONNECTED {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.s.cfg.Timeout)
	defer cancel()
	_ = r.s.stream.DeleteConsumer(ctx, r.cons.CachedInfo().Name)
}

// locate returns the stream sequence of the message holding revision rev,
// scanning from stream sequence from.
func (s *JetStream) locate(ctx context.Context, doc string, from, rev uint64) (uint64, error) {
	subj := s.subject(doc)
	for seq := max(from, 1); ; {
		m, err := s.getMsg(ctx, seq, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, fmt.Errorf("%w: %q: log ends before revision %d", ErrConflict, doc, rev)
		}
		if err != nil {
			return 0, fmt.Errorf("storage: %q: read: %w", doc, err)
		}
		first, last, err := msgRange(m.Data)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", doc, err)
		}
		if first <= rev && rev <= last {
			return m.Sequence, nil
		}
		if first > rev {
			return 0, fmt.Errorf("%w: %q: log gap before revision %d", ErrCorrupt, doc, rev)
		}
		seq = m.Sequence + 1
	}
}

// firstTime returns the time of doc's first record (Meta.Created).
func (s *JetStream) firstTime(ctx context.Context, doc string) (time.Time, error) {
	m, err := s.getMsg(ctx, 1, s.subject(doc))
	if err != nil {
		return time.Time{}, fmt.Errorf("storage: %q: first message: %w", doc, err)
	}
	recs, err := decodeOps(m.Data)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: %w", doc, err)
	}
	return recs[0].Time, nil
}

// meta reads doc's metadata; exists is false for a document never written.
func (s *JetStream) meta(ctx context.Context, doc string) (Meta, logPos, []snapEntry, bool, error) {
	p, updated, err := s.last(ctx, doc)
	if err != nil || p.head == 0 {
		return Meta{}, p, nil, false, err
	}
	m := Meta{Head: p.head, Updated: updated}
	idx, _, err := s.snapIndex(ctx, doc)
	if err != nil {
		return Meta{}, p, nil, false, err
	}
	if f, ok := foldEntry(idx, p.head); ok {
		m.Folded, m.Created = f.rev, time.Unix(0, f.created).UTC()
	} else if m.Created, err = s.firstTime(ctx, doc); err != nil {
		return Meta{}, p, nil, false, err
	}
	// Entries beyond the head: a snapshot left by a write that raced a
	// delete. They are ignored.
	for i := len(idx) - 1; i >= 0; i-- {
		if idx[i].rev <= p.head {
			m.SnapRev = idx[i].rev
			break
		}
	}
	return m, p, idx, true, nil
}

// Meta returns the metadata of doc.
func (s *JetStream) Meta(ctx context.Context, doc string) (Meta, error) {
	if err := s.check(ctx, doc); err != nil {
		return Meta{}, err
	}
	m, _, _, ok, err := s.meta(ctx, doc)
	if err == nil && !ok {
		err = fmt.Errorf("%w: document %q", ErrNotFound, doc)
	}
	return m, err
}

func (s *JetStream) check(ctx context.Context, doc string) error {
	if err := validDoc(doc); err != nil {
		return err
	}
	return s.usable(ctx)
}

// Load returns the newest snapshot and the records after it, reaching
// further back for at least keep records; it also learns the stream
// sequence the next append must expect.
func (s *JetStream) Load(ctx context.Context, doc string, keep int) (State, error) {
	if err := s.check(ctx, doc); err != nil {
		return State{}, err
	}
	m, p, idx, ok, err := s.meta(ctx, doc)
	if err != nil || !ok {
		return State{}, err
	}
	st := State{Meta: m}
	var seq uint64
	if st.Snapshot, seq, err = s.snapshotAtOrBelow(ctx, doc, idx, m.Head); err != nil {
		return State{}, err
	}
	st.Meta.SnapRev = st.Snapshot.Rev
	from := st.Snapshot.Rev + 1
	if keep > 0 && m.Head > uint64(keep) {
		from = min(from, m.Head-uint64(keep)+1)
	} else if keep > 0 {
		from = 1
	}
	from = max(from, m.Folded+1) // the ops before are folded
	if from <= st.Snapshot.Rev {
		seq = startSeq(idx, from)
	}
	if from <= p.head {
		if st.Records, err = s.scan(ctx, doc, seq, from, p.head); err != nil {
			if errors.Is(err, ErrCorrupt) && s.foldedSince(ctx, doc, m.Folded) {
				return s.Load(ctx, doc, keep) // a fold purged what it read: each retry sees a higher horizon
			}
			return State{}, err
		}
	}
	return st, nil
}

// Records returns up to limit records after revision after.
func (s *JetStream) Records(ctx context.Context, doc string, after uint64, limit int) ([]Record, error) {
	if err := s.check(ctx, doc); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d", ErrInvalid, limit)
	}
	p, _, err := s.last(ctx, doc)
	if err != nil {
		return nil, err
	}
	if p.head == 0 {
		return nil, fmt.Errorf("%w: document %q", ErrNotFound, doc)
	}
	if after > p.head {
		return nil, fmt.Errorf("%w: revision %d beyond head %d", ErrNotFound, after, p.head)
	}
	if after == p.head {
		return []Record{}, nil
	}
	idx, _, err := s.snapIndex(ctx, doc)
	if err != nil {
		return nil, err
	}
	if h := foldedAt(idx, p.head); after < h {
		return nil, &GoneError{Doc: doc, Rev: after, Earliest: h}
	}
	return s.scanFolded(ctx, doc, startSeq(idx, after+1), after+1, min(p.head, after+uint64(limit)))
}

// History returns up to limit revisions strictly below before (0 means
// from the head), newest first.
func (s *JetStream) History(ctx context.Context, doc string, before uint64, limit int) ([]Revision, error) {
	if err := s.check(ctx, doc); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d", ErrInvalid, limit)
	}
	p, _, err := s.last(ctx, doc)
	if err != nil {
		return nil, err
	}
	if p.head == 0 {
		return nil, fmt.Errorf("%w: document %q", ErrNotFound, doc)
	}
	top := p.head
	if before != 0 && before <= p.head {
		top = before - 1
	}
	if top == 0 {
		return nil, nil
	}
	lo := uint64(1)
	if top > uint64(limit) {
		lo = top - uint64(limit) + 1
	}
	idx, _, err := s.snapIndex(ctx, doc)
	if err != nil {
		return nil, err
	}
	h := foldedAt(idx, p.head)
	if top < h {
		return nil, nil // the folded range was on the previous page
	}
	lo = max(lo, h+1)
	var recs []Record
	if lo <= top {
		if recs, err = s.scanFolded(ctx, doc, startSeq(idx, lo), lo, top); err != nil {
			return nil, err
		}
	}
	out := make([]Revision, 0, len(recs)+1)
	for i := len(recs) - 1; i >= 0; i-- {
		r := &recs[i]
		out = append(out, Revision{Rev: r.Rev, Client: r.Client, User: r.User, Time: r.Time, Ins: r.Ins, Del: r.Del})
	}
	if h > 0 && len(out) < limit {
		// One line for the folded range, with the time of the horizon's
		// op: the fold keeps the message holding it (the purge stops
		// before it), so one get finds it.
		line := Revision{Rev: h, From: 1, Folded: true}
		if hr, err := s.scanFolded(ctx, doc, startSeq(idx, h), h, h); err == nil && len(hr) == 1 {
			line.Time = hr[0].Time
		}
		out = append(out, line)
	}
	return out, nil
}

// textAt rebuilds the text at rev: newest snapshot at or below it plus a
// replay of the records after it.
func (s *JetStream) textAt(ctx context.Context, doc string, rev uint64) (string, error) {
	p, _, err := s.last(ctx, doc)
	if err != nil {
		return "", err
	}
	if rev == 0 {
		return "", nil
	}
	if p.head == 0 {
		return "", fmt.Errorf("%w: document %q", ErrNotFound, doc)
	}
	if rev > p.head {
		return "", fmt.Errorf("%w: revision %d beyond head %d of %q", ErrNotFound, rev, p.head, doc)
	}
	idx, _, err := s.snapIndex(ctx, doc)
	if err != nil {
		return "", err
	}
	if h := foldedAt(idx, p.head); rev < h {
		return s.foldedText(ctx, doc, rev, h)
	}
	sn, seq, err := s.snapshotAtOrBelow(ctx, doc, idx, rev)
	if err != nil {
		return "", err
	}
	text := ot.NewText(sn.Text)
	if sn.Rev == rev {
		return sn.Text, nil
	}
	recs, err := s.scan(ctx, doc, seq, sn.Rev+1, rev)
	if err != nil {
		return "", err
	}
	for _, r := range recs {
		op, err := ot.ParseLimit(r.Op, stored)
		if err != nil {
			return "", fmt.Errorf("%w: %q record %d: %v", ErrCorrupt, doc, r.Rev, err)
		}
		if text, err = op.Apply(text); err != nil {
			return "", fmt.Errorf("%w: %q record %d does not apply: %v", ErrCorrupt, doc, r.Rev, err)
		}
	}
	return text.String(), nil
}

// TextAt returns the text of doc at revision rev.
func (s *JetStream) TextAt(ctx context.Context, doc string, rev uint64) (string, error) {
	if err := s.check(ctx, doc); err != nil {
		return "", err
	}
	return s.textAtFolded(ctx, doc, rev)
}

// Diff returns the semantically cleaned diff from the text at from to the
// text at to.
func (s *JetStream) Diff(ctx context.Context, doc string, from, to uint64) ([]ot.Diff, error) {
	if err := s.check(ctx, doc); err != nil {
		return nil, err
	}
	a, err := s.textAtFolded(ctx, doc, from)
	if err != nil {
		return nil, err
	}
	b, err := s.textAtFolded(ctx, doc, to)
	if err != nil {
		return nil, err
	}
	return ot.DiffTexts(a, b), nil
}

// List returns every document with records on the stream, ordered by id.
// It costs a stream info and, per document, the reads of Meta.
func (s *JetStream) List(ctx context.Context) ([]DocInfo, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	info, err := call(s, ctx, func(ctx context.Context) (*jetstream.StreamInfo, error) {
		return s.stream.Info(ctx, jetstream.WithSubjectFilter(s.cfg.Subject+".>"))
	})
	if err != nil {
		return nil, fmt.Errorf("storage: list: %w", err)
	}
	prefix := s.cfg.Subject + "."
	ids := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		doc, ok := decodeDoc(strings.TrimPrefix(subj, prefix))
		if !ok || !strings.HasPrefix(subj, prefix) {
			return nil, fmt.Errorf("%w: subject %q names no document", ErrCorrupt, subj)
		}
		ids = append(ids, doc)
	}
	slices.Sort(ids)
	out := make([]DocInfo, 0, len(ids))
	for _, doc := range ids {
		m, _, _, ok, err := s.meta(ctx, doc)
		if err != nil {
			return nil, err
		}
		if ok { // else deleted since the stream info
			out = append(out, DocInfo{ID: doc, Meta: m})
		}
	}
	return out, nil
}

// deleteDoc purges doc's subject, then its snapshots and index. The purge
// makes the subject's last sequence 0, so an append by a node that has not
// seen the delete fails its compare-and-set.
func (s *JetStream) deleteDoc(ctx context.Context, doc string) error {
	idx, _, err := s.snapIndex(ctx, doc)
	if err != nil {
		return err
	}
	purge := func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.stream.Purge(ctx, jetstream.WithPurgeSubject(s.subject(doc)))
	}
	if _, err := call(s, ctx, purge); err != nil {
		return fmt.Errorf("storage: %q: purge: %w", doc, err)
	}
	s.forget(doc)
	for _, e := range idx {
		if err := s.kvPurge(ctx, snapKey(doc, e.rev)); err != nil {
			return fmt.Errorf("storage: %q: purge snapshot %d: %w", doc, e.rev, err)
		}
	}
	if err := s.kvPurge(ctx, snapIndexKey(doc)); err != nil {
		return fmt.Errorf("storage: %q: purge snapshot index: %w", doc, err)
	}
	if err := s.purgeHead(ctx, doc); err != nil {
		return err
	}
	return s.deleteHistory(ctx, doc)
}

// Backup is not offered: the error names the streams to copy with the
// nats CLI (backupStreams), each a consistent copy of its stream.
func (s *JetStream) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return 0, fmt.Errorf("storage: backup is not supported in JetStream mode; back up these streams with the nats CLI (nats stream backup STREAM DIR): %s: %w",
		strings.Join(s.backupStreams(), ", "), errors.ErrUnsupported)
}

// Check verifies every document: its log is contiguous from 1 to the head
// and every op parses and applies, and every snapshot is at or below the
// head and equals the text the log replays to. It reads every log whole.
func (s *JetStream) Check(ctx context.Context) error {
	docs, err := s.List(ctx)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if err := s.checkDoc(ctx, d.ID, d.Head); err != nil {
			return err
		}
		if err := s.checkHead(ctx, d.ID, d.Head); err != nil {
			return err
		}
	}
	return nil
}

// checkDoc verifies doc's log (from revision 1, or from the snapshot at
// its fold horizon) replays onto every snapshot the index names, and its
// named versions.
func (s *JetStream) checkDoc(ctx context.Context, doc string, head uint64) error {
	idx, _, err := s.snapIndex(ctx, doc)
	if err != nil {
		return err
	}
	if err := s.checkVersions(ctx, doc, head); err != nil {
		return err
	}
	text, from, seq := ot.NewText(""), uint64(0), uint64(1)
	if h := foldedAt(idx, head); h > 0 {
		sn, sseq, err := s.snapshotAtOrBelow(ctx, doc, idx, h)
		if err != nil {
			return err
		}
		if sn.Rev != h {
			return fmt.Errorf("%w: %q: no snapshot at the fold horizon %d", ErrCorrupt, doc, h)
		}
		text, from, seq = ot.NewText(sn.Text), h, sseq
		idx = idx[slices.IndexFunc(idx, func(e snapEntry) bool { return e.rev == h })+1:]
	}
	recs, err := s.scan(ctx, doc, seq, from+1, head)
	if err != nil {
		return err
	}
	for _, r := range recs {
		op, err := ot.ParseLimit(r.Op, stored)
		if err != nil {
			return fmt.Errorf("%w: %q record %d: %v", ErrCorrupt, doc, r.Rev, err)
		}
		if text, err = op.Apply(text); err != nil {
			return fmt.Errorf("%w: %q record %d does not apply: %v", ErrCorrupt, doc, r.Rev, err)
		}
		for len(idx) > 0 && idx[0].rev <= r.Rev {
			sn, _, err := s.snapshotAtOrBelow(ctx, doc, idx[:1], idx[0].rev)
			if err != nil {
				return err
			}
			if sn.Rev == idx[0].rev && sn.Text != text.String() {
				return fmt.Errorf("%w: %q: snapshot %d differs from the log's text", ErrCorrupt, doc, sn.Rev)
			}
			idx = idx[1:]
		}
	}
	if len(idx) > 0 {
		return fmt.Errorf("%w: %q: snapshot %d beyond head %d", ErrCorrupt, doc, idx[0].rev, head)
	}
	return nil
}
