package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/ot"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bucket names of the bbolt layout (see docs/architecture.md). The layout
// is flat: every document's records share one log bucket, keyed by the
// document id, a zero byte and the big-endian revision, so one document's
// records are contiguous and in revision order, and a commit that appends
// to a thousand documents dirties about one page per document instead of
// one per nesting level.
var (
	bucketMeta = []byte("meta") // document id -> metadata value
	bucketLog  = []byte("log")  // id 0x00 rev(8, BE) -> record
	bucketSnap = []byte("snap") // id 0x00 rev(8, BE) -> snapshot
	// bucketHead is the head slot: id -> rev(8, BE) snapshot. Made by the
	// first read-write open of a file that lacks it.
	bucketHead = []byte("head")
	// bucketJournal holds the journal's checkpoint: keyCheckpoint -> LSN
	// (8 bytes, big endian) of the newest frame applied to this file.
	bucketJournal = []byte("journal")
	keyCheckpoint = []byte("checkpoint")
)

// logFillPercent is how full bbolt leaves the left page when it splits a
// log page (see applyWrite).
const logFillPercent = 0.9

// docKey returns the key of revision rev of doc in the log or snapshot
// bucket: the id, a zero byte (ids never contain one, and it sorts before
// every id character, so documents do not interleave) and the revision.
func docKey(doc string, rev uint64) []byte {
	return appendDocKey(make([]byte, 0, len(doc)+9), doc, rev)
}

// appendDocKey appends the key of revision rev of doc to b.
func appendDocKey(b []byte, doc string, rev uint64) []byte {
	b = append(b, doc...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, rev)
}

// keyDocRev returns the revision in k if k belongs to doc.
func keyDocRev(k []byte, doc string) (uint64, bool) {
	if len(k) != len(doc)+9 || string(k[:len(doc)]) != doc || k[len(doc)] != 0 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[len(doc)+1:]), true
}

// docPrefix is the common prefix of doc's keys.
func docPrefix(doc string) []byte { return append([]byte(doc), 0) }

// initialMmapSize is the size of bbolt's first map of the file.
const initialMmapSize = 256 << 20

// Defaults of the checkpoint thresholds (Options).
const (
	DefaultCheckpointBytes    = 4 << 20
	DefaultCheckpointInterval = time.Second
)

// Options configure OpenBolt. The zero value is a safe default.
type Options struct {
	// NoSync skips fsync on commit. For benchmarks only: a crash can lose
	// acknowledged writes or corrupt the file. Never a server default.
	NoSync bool
	// Timeout bounds the wait for the file lock held by another process;
	// zero waits one second.
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock for inspection (the
	// check and backup subcommands); Commit fails. It fails with
	// ErrJournalPending when the journal holds commits the file lacks.
	ReadOnly bool
	// NoJournal commits straight into bbolt (one transaction and two
	// fsyncs per Commit), as before the journal existed: for comparison
	// benchmarks and as a fallback. A journal left by a crash is still
	// replayed on open.
	NoJournal bool
	// CheckpointBytes: a checkpoint starts once the journal holds this
	// many bytes not yet in bbolt; zero means DefaultCheckpointBytes.
	CheckpointBytes int64
	// CheckpointInterval: a checkpoint starts once the oldest frame not
	// yet in bbolt is this old; zero means DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// JournalSegmentSize is the size of a journal segment file in bytes;
	// zero means 16 MiB. A larger Commit gets a segment of its own size.
	JournalSegmentSize int64
}

// withDefaults fills the zero fields of o.
func (o Options) withDefaults() Options {
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	if o.CheckpointBytes <= 0 {
		o.CheckpointBytes = DefaultCheckpointBytes
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.JournalSegmentSize <= 0 {
		o.JournalSegmentSize = 16 << 20
	}
	return o
}

// Bolt is the bbolt implementation of Store. It is safe for concurrent use;
// Commits are serialized, readers run in parallel. With the journal (the
// default) a Commit is one append to the journal and one fdatasync; bbolt
// is brought up to date by checkpoints (see store_journal.go).
type Bolt struct {
	// swapMu guards db, which an online compaction (CompactOnline)
	// replaces: every transaction runs with swapMu read-locked (dbView,
	// dbUpdate), the swap write-locks it.
	swapMu sync.RWMutex
	db     *bolt.DB
	path   string
	opts   Options
	closed atomic.Bool
	fold   foldStats
	// directMu serializes the bbolt writes that bypass the journal (named
	// versions, folds, NoJournal commits) with an online compaction,
	// which must not miss one while it copies the file. Lock order:
	// commitMu, ckptMu, directMu, swapMu.
	directMu sync.Mutex
	jstate   // nil journal with NoJournal or ReadOnly
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens or creates the bbolt file at path.
func OpenBolt(path string, opts Options) (*Bolt, error) {
	if err := precheckFile(path); err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	opts = opts.withDefaults()
	before, _ := os.Stat(path)
	db, err := bolt.Open(path, 0o600, boltOptions(opts))
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	// A compaction (Compact) renames a new file over path while it holds
	// the old one's lock: a process that waited for that lock holds a
	// file no longer in the directory, and opens the new one instead.
	if after, err := os.Stat(path); before != nil && err == nil && !os.SameFile(before, after) {
		db.Close()
		return OpenBolt(path, opts)
	}
	var exists bool
	db.View(func(tx *bolt.Tx) error {
		exists = tx.Bucket(bucketMeta) != nil && tx.Bucket(bucketLog) != nil && tx.Bucket(bucketSnap) != nil
		return nil
	})
	if !exists && !opts.ReadOnly {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketMeta, bucketLog, bucketSnap} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
	} else if !exists {
		err = fmt.Errorf("%w: missing buckets", ErrCorrupt)
	}
	if err == nil && !opts.ReadOnly {
		err = db.Update(func(tx *bolt.Tx) error {
			if tx.Bucket(bucketHead) != nil {
				return nil
			}
			_, err := tx.CreateBucket(bucketHead)
			return err
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: init %s: %w", path, err)
	}
	s := &Bolt{db: db, path: path, opts: opts}
	if err := s.recover(path); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	return s, nil
}

// boltOptions are the bbolt options of a store opened with opts.
func boltOptions(opts Options) *bolt.Options {
	return &bolt.Options{
		Timeout:  opts.Timeout,
		NoSync:   opts.NoSync,
		ReadOnly: opts.ReadOnly,
		// The freelist is rebuilt by scanning on open instead of being
		// written on every commit: smaller commits, slower open.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		// Address space only (RSS counts the pages touched): a file
		// that grows within it is never remapped. A remap dereferences
		// every node of the writing transaction and waits for all
		// readers; it was a tenth of a checkpoint's CPU while a fresh
		// file grew.
		InitialMmapSize: initialMmapSize,
	}
}

// Path returns the file name of the store.
func (s *Bolt) Path() string { return s.path }

// dbView runs fn in a read transaction of the current file.
func (s *Bolt) dbView(fn func(*bolt.Tx) error) error {
	s.swapMu.RLock()
	defer s.swapMu.RUnlock()
	return s.db.View(fn)
}

// dbUpdate runs fn in a write transaction of the current file.
func (s *Bolt) dbUpdate(fn func(*bolt.Tx) error) error {
	s.swapMu.RLock()
	defer s.swapMu.RUnlock()
	return s.db.Update(fn)
}

// Close checkpoints every journal frame into bbolt and closes the files
// (a cleanly closed store is one self-contained bbolt file). It is
// idempotent.
func (s *Bolt) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	jerr := s.closeJournal()
	s.directMu.Lock() // an online compaction ends first
	defer s.directMu.Unlock()
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	err := s.db.Close()
	return errors.Join(jerr, err)
}

func (s *Bolt) usable(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

func (s *Bolt) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	err := s.dbView(fn)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func validDoc(doc string) error {
	if !contract.ValidDocID(doc) {
		return fmt.Errorf("%w: bad document id %q", ErrInvalid, doc)
	}
	return nil
}

// Commit validates writes against the store's state and makes them
// durable: with the journal, one frame and one fdatasync; with NoJournal,
// one bbolt transaction.
func (s *Bolt) Commit(ctx context.Context, writes []Write) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := validateWrites(writes); err != nil {
		return err
	}
	if s.journal != nil {
		return s.commitJournal(writes)
	}
	// bbolt keeps the keys and values it is given until the transaction
	// ends, so they are fresh memory: one arena for the whole batch.
	size := 0
	for i := range writes {
		for j := range writes[i].Records {
			r := &writes[i].Records[j]
			size += len(writes[i].Doc) + 9 + recordOverhead + len(r.Client) + len(r.User) + len(r.Op)
		}
	}
	arena := make([]byte, 0, size)
	s.directMu.Lock()
	defer s.directMu.Unlock()
	err := s.dbUpdate(func(tx *bolt.Tx) error {
		for i := range writes {
			if err := applyWrite(tx, &writes[i], &arena); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// carve appends n bytes made by fill to the arena and returns them with
// their capacity cut, so that nothing appended later can overwrite them. A
// full arena is replaced by a new one (the old one stays alive through
// the slices already handed out).
func carve(arena *[]byte, n int, fill func([]byte) []byte) []byte {
	a := *arena
	if cap(a)-len(a) < n {
		a = make([]byte, 0, max(n, 4096))
	}
	start := len(a)
	a = fill(a)
	*arena = a
	return a[start:len(a):len(a)]
}

// applyWrite stores one document's write inside tx; the keys and values
// of its records are carved from arena.
func applyWrite(tx *bolt.Tx, w *Write, arena *[]byte) error {
	mb := tx.Bucket(bucketMeta)
	cur, exists, err := storedMeta(mb, w.Doc)
	if err != nil {
		return err
	}
	shape := shapeOf(w)
	m, _, err := advanceMeta(w.Doc, cur, exists, shape)
	if err != nil {
		return err
	}
	if w.Delete {
		return deleteDoc(tx, w.Doc)
	}
	switch slotAction(cur, shape) {
	case slotPut:
		sn := w.HeadSnapshot
		if err := tx.Bucket(bucketHead).Put([]byte(w.Doc), appendHead(nil, sn.Rev, sn.Text)); err != nil {
			return err
		}
	case slotDrop:
		if err := tx.Bucket(bucketHead).Delete([]byte(w.Doc)); err != nil {
			return err
		}
	}
	if len(w.Records) > 0 {
		lb := tx.Bucket(bucketLog)
		// A document's records are appended at the end of its key range:
		// split full pages unevenly so that the left one, which no append
		// touches again, stays nearly full (bbolt's default, half, would
		// leave the log's pages half empty).
		lb.FillPercent = logFillPercent
		for j := range w.Records {
			r := &w.Records[j]
			k := carve(arena, len(w.Doc)+9, func(b []byte) []byte { return appendDocKey(b, w.Doc, r.Rev) })
			v := carve(arena, recordOverhead+len(r.Client)+len(r.User)+len(r.Op), func(b []byte) []byte { return appendRecord(b, r) })
			if err := lb.Put(k, v); err != nil {
				return err
			}
		}
	}
	if sn := w.Snapshot; sn != nil {
		if err := tx.Bucket(bucketSnap).Put(docKey(w.Doc, sn.Rev), appendSnapshot(nil, sn.Text)); err != nil {
			return err
		}
	}
	return mb.Put([]byte(w.Doc), appendMeta(nil, &m))
}

// deleteDoc removes doc's metadata, log, snapshots and named versions
// inside tx.
func deleteDoc(tx *bolt.Tx, doc string) error {
	if err := tx.Bucket(bucketMeta).Delete([]byte(doc)); err != nil {
		return err
	}
	for _, name := range [][]byte{bucketRet, bucketHead} {
		if b := tx.Bucket(name); b != nil {
			if err := b.Delete([]byte(doc)); err != nil {
				return err
			}
		}
	}
	for _, name := range [][]byte{bucketLog, bucketSnap, bucketVer} {
		b := tx.Bucket(name)
		if b == nil {
			continue // no named version was ever made in this file
		}
		if err := deleteRange(b, docPrefix(doc)); err != nil {
			return err
		}
	}
	return nil
}

// storedMeta returns doc's metadata in the meta bucket mb; exists is
// false when there is none.
func storedMeta(mb *bolt.Bucket, doc string) (m Meta, exists bool, err error) {
	v := mb.Get([]byte(doc))
	if v == nil {
		return Meta{}, false, nil
	}
	if m, err = decodeMeta(v); err != nil {
		return Meta{}, false, fmt.Errorf("%q: %w", doc, err)
	}
	return m, true, nil
}

// writeShape is what the metadata rules need to know of a write.
type writeShape struct {
	del              bool
	n                int    // records
	first            uint64 // revision of the first record
	created, updated time.Time
	hasSnap          bool
	snapRev          uint64
	hasHead          bool // a head snapshot
	headRev          uint64
}

func shapeOf(w *Write) writeShape {
	s := writeShape{del: w.Delete, n: len(w.Records)}
	if s.n > 0 {
		s.first = w.Records[0].Rev
		// As stored: Unix nanoseconds, read back in UTC.
		s.created = time.Unix(0, w.Records[0].Time.UnixNano()).UTC()
		s.updated = time.Unix(0, w.Records[s.n-1].Time.UnixNano()).UTC()
	}
	if w.Snapshot != nil {
		s.hasSnap, s.snapRev = true, w.Snapshot.Rev
	}
	if w.HeadSnapshot != nil {
		s.hasHead, s.headRev = true, w.HeadSnapshot.Rev
	}
	return s
}

// advanceMeta applies the rules of a write to the metadata of its
// document (exists false: the document has none) and returns the metadata
// after it (exists false: deleted). Commit validates with it against the
// logical state (bbolt plus journal), and bbolt transactions apply with
// it, so a journal frame accepted by Commit always applies.
func advanceMeta(doc string, m Meta, exists bool, w writeShape) (Meta, bool, error) {
	if w.del {
		return Meta{}, false, nil
	}
	if !exists {
		if w.n == 0 {
			return Meta{}, false, fmt.Errorf("%w: %q: snapshot of a missing document", ErrConflict, doc)
		}
		m = Meta{Created: w.created}
	}
	if w.n > 0 {
		if w.first != m.Head+1 {
			return Meta{}, false, fmt.Errorf("%w: %q: first record %d, head %d", ErrConflict, doc, w.first, m.Head)
		}
		m.Head = w.first + uint64(w.n) - 1
		m.Updated = w.updated
	}
	if w.hasSnap {
		if w.snapRev > m.Head || w.snapRev == 0 {
			return Meta{}, false, fmt.Errorf("%w: %q: snapshot %d, head %d", ErrConflict, doc, w.snapRev, m.Head)
		}
		m.SnapRev = max(m.SnapRev, w.snapRev)
	}
	if w.hasHead {
		if w.headRev > m.Head || w.headRev == 0 {
			return Meta{}, false, fmt.Errorf("%w: %q: head snapshot %d, head %d", ErrConflict, doc, w.headRev, m.Head)
		}
		m.SnapRev = max(m.SnapRev, w.headRev)
	}
	return m, true, nil
}

// What a write does to its document's head slot (slotAction).
const (
	slotKeep = iota
	slotPut  // store the write's head snapshot in the slot, replacing it
	slotDrop // empty the slot: a regular snapshot at or above it came
)

// slotAction says what a write of shape w does to the head slot of a
// document whose metadata was cur before it. The rule keeps an invariant
// that needs nothing but the metadata: a full slot holds the newest
// snapshot, at Meta.SnapRev, above every regular one. So a regular
// snapshot at or above SnapRev makes the slot useless, and a head snapshot
// is kept only above every snapshot.
func slotAction(cur Meta, w writeShape) int {
	if w.del {
		return slotKeep // deleteDoc empties it
	}
	newest := cur.SnapRev
	if w.hasSnap {
		newest = max(newest, w.snapRev)
	}
	switch {
	case w.hasHead && w.headRev > newest:
		return slotPut
	case w.hasSnap && w.snapRev >= cur.SnapRev:
		return slotDrop
	}
	return slotKeep
}

// deleteRange deletes every key of b that starts with prefix.
func deleteRange(b *bolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// docView is one document inside a transaction.
type docView struct {
	id         string
	meta       Meta
	log, snaps *bolt.Bucket
	heads      *bolt.Bucket // nil in a file opened read-only that predates the head slot
}

// openDoc returns doc inside tx, or ErrNotFound.
func openDoc(tx *bolt.Tx, doc string) (docView, error) {
	v := tx.Bucket(bucketMeta).Get([]byte(doc))
	if v == nil {
		return docView{}, fmt.Errorf("%w: document %q", ErrNotFound, doc)
	}
	m, err := decodeMeta(v)
	if err != nil {
		return docView{}, fmt.Errorf("%q: %w", doc, err)
	}
	return docView{id: doc, meta: m, log: tx.Bucket(bucketLog), snaps: tx.Bucket(bucketSnap), heads: tx.Bucket(bucketHead)}, nil
}

// Meta returns the metadata of doc.
func (s *Bolt) Meta(ctx context.Context, doc string) (Meta, error) {
	if err := validDoc(doc); err != nil {
		return Meta{}, err
	}
	if m, exists, ok := s.pendingMeta(doc); ok {
		if err := s.usable(ctx); err != nil {
			return Meta{}, err
		}
		if !exists {
			return Meta{}, fmt.Errorf("%w: document %q", ErrNotFound, doc)
		}
		return m, nil
	}
	var m Meta
	err := s.view(ctx, func(tx *bolt.Tx) error {
		d, err := openDoc(tx, doc)
		m = d.meta
		return err
	})
	return m, err
}

// snapshotAtOrBelow returns the newest snapshot at or below rev, regular or
// the head slot's (Rev 0 and empty text when there is none).
func (d docView) snapshotAtOrBelow(rev uint64) (Snapshot, error) {
	if hr, v, ok := d.headSlot(); ok && hr <= rev {
		// A full slot lies above every regular snapshot.
		text, err := decodeSnapshot(hr, v)
		if err != nil {
			return Snapshot{}, fmt.Errorf("%q: head %w", d.id, err)
		}
		return Snapshot{Rev: hr, Text: text}, nil
	}
	return d.regularAtOrBelow(rev)
}

// headSlot returns the revision and the snapshot value (snapshot encoding)
// in d's head slot; ok is false when it is empty.
func (d docView) headSlot() (rev uint64, v []byte, ok bool) {
	if d.heads == nil {
		return 0, nil, false
	}
	hv := d.heads.Get([]byte(d.id))
	if len(hv) < 8 {
		return 0, nil, hv != nil // a short value: fails to decode as a snapshot
	}
	return binary.BigEndian.Uint64(hv), hv[8:], true
}

// regularAtOrBelow returns the newest regular snapshot at or below rev.
func (d docView) regularAtOrBelow(rev uint64) (Snapshot, error) {
	c := d.snaps.Cursor()
	k, v := c.Seek(docKey(d.id, rev))
	if r, ok := keyDocRev(k, d.id); !ok || r != rev {
		k, v = c.Prev()
	}
	r, ok := keyDocRev(k, d.id)
	if !ok {
		return Snapshot{}, nil // before the document's first snapshot
	}
	if r > rev {
		return Snapshot{}, fmt.Errorf("%w: %q: snapshot key %x", ErrCorrupt, d.id, k)
	}
	text, err := decodeSnapshot(r, v)
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{Rev: r, Text: text}, nil
}

// records returns the records with from <= rev <= to, at most limit,
// ascending.
func (d docView) records(from, to uint64, limit int) ([]Record, error) {
	if from >= 1 && from <= d.meta.Folded && to >= from {
		return nil, &GoneError{Doc: d.id, Rev: from - 1, Earliest: d.meta.Folded}
	}
	var out []Record
	if to >= from {
		out = make([]Record, 0, min(int(to-from+1), max(limit, 0), 1024))
	}
	c := d.log.Cursor()
	want := from
	for k, v := c.Seek(docKey(d.id, from)); k != nil && len(out) < limit && want <= to; k, v = c.Next() {
		rev, ok := keyDocRev(k, d.id)
		if !ok || rev != want {
			return nil, fmt.Errorf("%w: %q: log gap: want %d, found key %x", ErrCorrupt, d.id, want, k)
		}
		r, err := decodeRecord(rev, v, true)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		want++
	}
	return out, nil
}

// Load returns the newest snapshot and the records after it; it reaches
// further back when needed to return at least keep records.
func (s *Bolt) Load(ctx context.Context, doc string, keep int) (State, error) {
	if err := validDoc(doc); err != nil {
		return State{}, err
	}
	if err := s.barrierDoc(ctx, doc); err != nil {
		return State{}, err
	}
	var st State
	err := s.view(ctx, func(tx *bolt.Tx) error {
		d, err := openDoc(tx, doc)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		m := d.meta
		st.Meta = m
		if st.Snapshot, err = d.snapshotAtOrBelow(m.Head); err != nil {
			return err
		}
		from := st.Snapshot.Rev + 1
		if keep > 0 && m.Head > uint64(keep) {
			from = min(from, m.Head-uint64(keep)+1)
		} else if keep > 0 {
			from = 1
		}
		from = max(from, m.Folded+1) // the ops before are folded
		st.Records, err = d.records(from, m.Head, int(m.Head-from+1))
		if err == nil && uint64(len(st.Records)) != m.Head-from+1 {
			err = fmt.Errorf("%w: %q: log ends before head %d", ErrCorrupt, doc, m.Head)
		}
		return err
	})
	return st, err
}

// Records returns up to limit records after revision after.
func (s *Bolt) Records(ctx context.Context, doc string, after uint64, limit int) ([]Record, error) {
	if err := validDoc(doc); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d", ErrInvalid, limit)
	}
	// A sequencer catching a late op up reads the newest records of a
	// busy document: they are served from the journal's pending frames
	// rather than forcing a checkpoint.
	if out, ok, err := s.pendingRecords(ctx, doc, after, limit); ok {
		return out, err
	}
	if err := s.barrierDoc(ctx, doc); err != nil {
		return nil, err
	}
	var out []Record
	err := s.view(ctx, func(tx *bolt.Tx) error {
		d, err := openDoc(tx, doc)
		if err != nil {
			return err
		}
		if after > d.meta.Head {
			return fmt.Errorf("%w: revision %d beyond head %d", ErrNotFound, after, d.meta.Head)
		}
		out, err = d.records(after+1, d.meta.Head, limit)
		return err
	})
	return out, err
}

// History returns up to limit revisions strictly below before (0 means
// from the head), newest first.
func (s *Bolt) History(ctx context.Context, doc string, before uint64, limit int) ([]Revision, error) {
	if err := validDoc(doc); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d", ErrInvalid, limit)
	}
	if err := s.barrierDoc(ctx, doc); err != nil {
		return nil, err
	}
	var out []Revision
	err := s.view(ctx, func(tx *bolt.Tx) error {
		d, err := openDoc(tx, doc)
		if err != nil {
			return err
		}
		m := d.meta
		top := m.Head
		if before != 0 && before <= m.Head {
			top = before - 1
		}
		if top == 0 || top < m.Folded {
			return nil // nothing below before, or the folded range was on the previous page
		}
		out = make([]Revision, 0, min(uint64(limit), top-m.Folded+1))
		c := d.log.Cursor()
		k, v := c.Seek(docKey(doc, top))
		want := top
		for ; want > m.Folded && len(out) < limit; k, v = c.Prev() {
			rev, ok := keyDocRev(k, doc)
			if !ok || rev != want {
				return fmt.Errorf("%w: %q: log gap at %d (key %x)", ErrCorrupt, doc, want, k)
			}
			want--
			r, err := decodeRecord(rev, v, false)
			if err != nil {
				return err
			}
			out = append(out, Revision{Rev: r.Rev, Client: r.Client, User: r.User, Time: r.Time, Ins: r.Ins, Del: r.Del})
		}
		if want == m.Folded && m.Folded > 0 && len(out) < limit {
			// One line for the folded range.
			out = append(out, Revision{Rev: m.Folded, From: 1, Folded: true, Time: m.FoldedTime})
		}
		return nil
	})
	return out, err
}

// textAt rebuilds the text at rev inside tx: newest snapshot at or below rev
// plus a replay of the records after it.
func textAt(tx *bolt.Tx, doc string, rev uint64) (ot.Text, error) {
	d, err := openDoc(tx, doc)
	if err != nil {
		if errors.Is(err, ErrNotFound) && rev == 0 {
			return ot.NewText(""), nil
		}
		return noText, err
	}
	if rev > d.meta.Head {
		return noText, fmt.Errorf("%w: revision %d beyond head %d of %q", ErrNotFound, rev, d.meta.Head, doc)
	}
	if rev < d.meta.Folded && rev > 0 {
		// Folded: only a named version still keeps that text.
		if text, ok, err := versionAt(tx, doc, rev); err != nil || ok {
			return ot.NewText(text), err
		}
		return noText, &GoneError{Doc: doc, Rev: rev, Earliest: d.meta.Folded}
	}
	sn, err := d.snapshotAtOrBelow(rev)
	if err != nil {
		return noText, err
	}
	text := ot.NewText(sn.Text)
	c := d.log.Cursor()
	want := sn.Rev + 1
	for k, v := c.Seek(docKey(doc, want)); k != nil && want <= rev; k, v = c.Next() {
		r, ok := keyDocRev(k, doc)
		if !ok || r != want {
			return noText, fmt.Errorf("%w: %q: log gap at %d", ErrCorrupt, doc, want)
		}
		rec, err := decodeRecord(r, v, true)
		if err != nil {
			return noText, err
		}
		op, err := ot.ParseLimit(rec.Op, stored)
		if err != nil {
			return noText, fmt.Errorf("%w: %q record %d: %v", ErrCorrupt, doc, r, err)
		}
		if text, err = op.Apply(text); err != nil {
			return noText, fmt.Errorf("%w: %q record %d does not apply: %v", ErrCorrupt, doc, r, err)
		}
		want++
	}
	if want != rev+1 {
		return noText, fmt.Errorf("%w: %q: log ends at %d before %d", ErrCorrupt, doc, want-1, rev)
	}
	return text, nil
}

// TextAt returns the text of doc at revision rev.
func (s *Bolt) TextAt(ctx context.Context, doc string, rev uint64) (string, error) {
	if err := validDoc(doc); err != nil {
		return "", err
	}
	if err := s.barrierDoc(ctx, doc); err != nil {
		return "", err
	}
	var out string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		t, err := textAt(tx, doc, rev)
		out = t.String()
		return err
	})
	return out, err
}

// Diff returns the semantically cleaned diff from the text at from to the
// text at to.
func (s *Bolt) Diff(ctx context.Context, doc string, from, to uint64) ([]ot.Diff, error) {
	if err := validDoc(doc); err != nil {
		return nil, err
	}
	if err := s.barrierDoc(ctx, doc); err != nil {
		return nil, err
	}
	var a, b string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		ta, err := textAt(tx, doc, from)
		if err != nil {
			return err
		}
		tb, err := textAt(tx, doc, to)
		if err != nil {
			return err
		}
		a, b = ta.String(), tb.String()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ot.DiffTexts(a, b), nil
}

// List returns every document, ordered by id.
func (s *Bolt) List(ctx context.Context) ([]DocInfo, error) {
	if err := s.barrierAll(ctx); err != nil {
		return nil, err
	}
	var out []DocInfo
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).ForEach(func(k, v []byte) error {
			m, err := decodeMeta(v)
			if err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			out = append(out, DocInfo{ID: string(k), Meta: m})
			return nil
		})
	})
	return out, err
}

// Backup writes a consistent copy of the store to w inside one read
// transaction; writers keep running meanwhile.
func (s *Bolt) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := s.barrierAll(ctx); err != nil {
		return 0, err
	}
	var n int64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// BackupFile writes a consistent copy of the store to a new file at path
// (synced before it returns).
func (s *Bolt) BackupFile(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("storage: backup: %w", err)
	}
	if _, err := s.Backup(ctx, f); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("storage: backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("storage: backup: %w", err)
	}
	return f.Close()
}

// Check runs bbolt's page consistency check and then verifies, for every
// document: the metadata decodes, the log is contiguous from 1 to the head,
// every record decodes with a parsable op, every snapshot decodes as UTF-8
// at or below the head and the newest one is the one metadata names (the
// head slot's when it is full: it lies above every regular snapshot and
// the fold horizon). A folded document's log starts after its fold
// horizon, where a regular snapshot must lie, and no snapshot lies below
// it.
func (s *Bolt) Check(ctx context.Context) error {
	if err := s.barrierAll(ctx); err != nil {
		return err
	}
	return s.view(ctx, func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
			if len(errs) > 10 {
				break
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: bbolt check: %w", ErrCorrupt, errors.Join(errs...))
		}
		var logKeys, snapKeys, headKeys int
		err := tx.Bucket(bucketMeta).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			nl, ns, nh, err := checkDoc(tx, string(k))
			logKeys += nl
			snapKeys += ns
			headKeys += nh
			return err
		})
		if err != nil {
			return err
		}
		// Keys of no document (say, left behind by a partial delete).
		if n := tx.Bucket(bucketLog).Stats().KeyN; n != logKeys {
			return fmt.Errorf("%w: %d log keys, %d belong to documents", ErrCorrupt, n, logKeys)
		}
		if n := tx.Bucket(bucketSnap).Stats().KeyN; n != snapKeys {
			return fmt.Errorf("%w: %d snapshot keys, %d belong to documents", ErrCorrupt, n, snapKeys)
		}
		if b := tx.Bucket(bucketHead); b != nil && b.Stats().KeyN != headKeys {
			return fmt.Errorf("%w: %d head slots, %d belong to documents", ErrCorrupt, b.Stats().KeyN, headKeys)
		}
		return checkVersions(tx)
	})
}

// checkDoc checks one document and returns how many log, snapshot and head
// slot keys it has.
func checkDoc(tx *bolt.Tx, doc string) (logKeys, snapKeys, headKeys int, err error) {
	if !contract.ValidDocID(doc) {
		return 0, 0, 0, fmt.Errorf("%w: bad document id %q", ErrCorrupt, doc)
	}
	d, err := openDoc(tx, doc)
	if err != nil {
		return 0, 0, 0, err
	}
	m := d.meta
	prefix := docPrefix(doc)
	want := m.Folded + 1 // the ops through the fold horizon are folded
	c := d.log.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		rev, ok := keyDocRev(k, doc)
		if !ok || rev != want {
			return 0, 0, 0, fmt.Errorf("%w: %q: log not contiguous at %d (key %x)", ErrCorrupt, doc, want, k)
		}
		r, err := decodeRecord(rev, v, true)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("%q: %w", doc, err)
		}
		if _, err := ot.ParseLimit(r.Op, stored); err != nil {
			return 0, 0, 0, fmt.Errorf("%w: %q record %d: %v", ErrCorrupt, doc, rev, err)
		}
		want++
	}
	if want-1 != m.Head {
		return 0, 0, 0, fmt.Errorf("%w: %q: log ends at %d, head says %d", ErrCorrupt, doc, want-1, m.Head)
	}
	var newest uint64
	foldSnap := m.Folded == 0
	c = d.snaps.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		rev, ok := keyDocRev(k, doc)
		if !ok || rev == 0 || rev > m.Head {
			return 0, 0, 0, fmt.Errorf("%w: %q: snapshot key %x beyond head %d", ErrCorrupt, doc, k, m.Head)
		}
		if rev < m.Folded {
			return 0, 0, 0, fmt.Errorf("%w: %q: snapshot %d below the fold horizon %d", ErrCorrupt, doc, rev, m.Folded)
		}
		foldSnap = foldSnap || rev == m.Folded
		if len(v) == 0 || v[0] != snapV1 || !utf8.Valid(v[1:]) {
			return 0, 0, 0, fmt.Errorf("%w: %q: snapshot %d does not decode", ErrCorrupt, doc, rev)
		}
		newest = rev
		snapKeys++
	}
	if hr, v, ok := d.headSlot(); ok {
		// The slot holds the newest snapshot, above every regular one
		// and the fold horizon (slotAction, foldTo).
		if hr <= newest || hr <= m.Folded || hr > m.Head {
			return 0, 0, 0, fmt.Errorf("%w: %q: head snapshot %d: newest regular %d, fold horizon %d, head %d", ErrCorrupt, doc, hr, newest, m.Folded, m.Head)
		}
		if len(v) == 0 || v[0] != snapV1 || !utf8.Valid(v[1:]) {
			return 0, 0, 0, fmt.Errorf("%w: %q: head snapshot %d does not decode", ErrCorrupt, doc, hr)
		}
		newest, headKeys = hr, 1
	}
	if newest != m.SnapRev {
		return 0, 0, 0, fmt.Errorf("%w: %q: newest snapshot %d, meta says %d", ErrCorrupt, doc, newest, m.SnapRev)
	}
	if !foldSnap {
		return 0, 0, 0, fmt.Errorf("%w: %q: no snapshot at the fold horizon %d", ErrCorrupt, doc, m.Folded)
	}
	return int(m.Head - m.Folded), snapKeys, headKeys, nil
}

// noText is the zero Text returned next to errors.
var noText ot.Text

// stored are the parse limits for ops read back from the file: the server
// wrote them after checking its own limits, so none apply here.
var stored = ot.ParseOptions{MaxBytes: -1, MaxComponents: -1}
