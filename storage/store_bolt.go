package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/collab/ot"
	"github.com/sergi/go-diff/diffmatchpatch"
	bolt "go.etcd.io/bbolt"
)

// Bucket and key names of the bbolt layout (see docs/architecture.md).
var (
	bucketDocs = []byte("docs") // root: one sub-bucket per document id
	bucketLog  = []byte("log")  // in a document: big-endian rev -> record
	bucketSnap = []byte("snap") // in a document: big-endian rev -> snapshot
	keyMeta    = []byte("meta") // in a document: metadata value
)

// MaxDocID is the longest accepted document id, in bytes.
const MaxDocID = 128

// ValidDocID reports whether id is 1 to 128 characters of A-Za-z0-9._~-.
func ValidDocID(id string) bool {
	if len(id) == 0 || len(id) > MaxDocID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '_' || c == '~' || c == '-':
		default:
			return false
		}
	}
	return true
}

// Options configure OpenBolt. The zero value is a safe default.
type Options struct {
	// NoSync skips fsync on commit. For benchmarks only: a crash can lose
	// acknowledged writes or corrupt the file. Never a server default.
	NoSync bool
	// Timeout bounds the wait for the file lock held by another process;
	// zero waits one second.
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock for inspection (the
	// check and backup subcommands); Commit fails.
	ReadOnly bool
}

// Bolt is the bbolt implementation of Store. It is safe for concurrent use;
// bbolt serializes the writers (Commit) and lets readers run in parallel.
type Bolt struct {
	db     *bolt.DB
	closed atomic.Bool
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens or creates the bbolt file at path.
func OpenBolt(path string, opts Options) (*Bolt, error) {
	if err := precheckFile(path); err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  timeout,
		NoSync:   opts.NoSync,
		ReadOnly: opts.ReadOnly,
		// The freelist is rebuilt by scanning on open instead of being
		// written on every commit: smaller commits, slower open.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	var exists bool
	db.View(func(tx *bolt.Tx) error { exists = tx.Bucket(bucketDocs) != nil; return nil })
	if !exists && !opts.ReadOnly {
		err = db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucketDocs)
			return err
		})
	} else if !exists {
		err = fmt.Errorf("%w: no %q bucket", ErrCorrupt, bucketDocs)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: init %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

// Path returns the file name of the store.
func (s *Bolt) Path() string { return s.db.Path() }

// Close closes the file. It is idempotent.
func (s *Bolt) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.db.Close()
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
	err := s.db.View(fn)
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func validDoc(doc string) error {
	if !ValidDocID(doc) {
		return fmt.Errorf("%w: bad document id %q", ErrInvalid, doc)
	}
	return nil
}

// Commit applies every write in one bbolt transaction with one fsync.
func (s *Bolt) Commit(ctx context.Context, writes []Write) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	seen := make(map[string]struct{}, len(writes))
	for i := range writes {
		w := &writes[i]
		if err := validDoc(w.Doc); err != nil {
			return err
		}
		if _, dup := seen[w.Doc]; dup {
			return fmt.Errorf("%w: two writes for %q in one batch", ErrInvalid, w.Doc)
		}
		seen[w.Doc] = struct{}{}
		if w.Delete && (len(w.Records) > 0 || w.Snapshot != nil) {
			return fmt.Errorf("%w: delete of %q carries records", ErrInvalid, w.Doc)
		}
		for j := range w.Records {
			r := &w.Records[j]
			if j > 0 && r.Rev != w.Records[j-1].Rev+1 {
				return fmt.Errorf("%w: %q records not contiguous at %d", ErrInvalid, w.Doc, r.Rev)
			}
			if len(r.Op) == 0 {
				return fmt.Errorf("%w: %q record %d has no op", ErrInvalid, w.Doc, r.Rev)
			}
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketDocs)
		for i := range writes {
			if err := applyWrite(root, &writes[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// applyWrite stores one document's write inside tx.
func applyWrite(root *bolt.Bucket, w *Write) error {
	name := []byte(w.Doc)
	if w.Delete {
		err := root.DeleteBucket(name)
		if errors.Is(err, bolt.ErrBucketNotFound) {
			err = nil
		}
		return err
	}
	db := root.Bucket(name)
	var m Meta
	if db == nil {
		if len(w.Records) == 0 {
			return fmt.Errorf("%w: %q: snapshot of a missing document", ErrConflict, w.Doc)
		}
		var err error
		if db, err = root.CreateBucket(name); err != nil {
			return err
		}
		if _, err = db.CreateBucket(bucketLog); err != nil {
			return err
		}
		if _, err = db.CreateBucket(bucketSnap); err != nil {
			return err
		}
		m.Created = w.Records[0].Time
	} else {
		var err error
		if m, err = decodeMeta(db.Get(keyMeta)); err != nil {
			return fmt.Errorf("%q: %w", w.Doc, err)
		}
	}
	if len(w.Records) > 0 {
		if w.Records[0].Rev != m.Head+1 {
			return fmt.Errorf("%w: %q: first record %d, head %d", ErrConflict, w.Doc, w.Records[0].Rev, m.Head)
		}
		lb := db.Bucket(bucketLog)
		lb.FillPercent = 1 // append-only: pack the pages
		for j := range w.Records {
			r := &w.Records[j]
			// bbolt keeps the value until the transaction ends: one
			// allocation per record, never a reused buffer.
			v := appendRecord(make([]byte, 0, 32+len(r.Client)+len(r.User)+len(r.Op)), r)
			if err := lb.Put(revKey(r.Rev), v); err != nil {
				return err
			}
		}
		last := &w.Records[len(w.Records)-1]
		m.Head = last.Rev
		m.Updated = last.Time
	}
	if sn := w.Snapshot; sn != nil {
		if sn.Rev > m.Head || sn.Rev == 0 {
			return fmt.Errorf("%w: %q: snapshot %d, head %d", ErrConflict, w.Doc, sn.Rev, m.Head)
		}
		if err := db.Bucket(bucketSnap).Put(revKey(sn.Rev), appendSnapshot(nil, sn.Text)); err != nil {
			return err
		}
		m.SnapRev = max(m.SnapRev, sn.Rev)
	}
	return db.Put(keyMeta, appendMeta(nil, &m))
}

// docBucket returns the bucket of doc and its metadata, or ErrNotFound.
func docBucket(tx *bolt.Tx, doc string) (*bolt.Bucket, Meta, error) {
	db := tx.Bucket(bucketDocs).Bucket([]byte(doc))
	if db == nil {
		return nil, Meta{}, fmt.Errorf("%w: document %q", ErrNotFound, doc)
	}
	m, err := decodeMeta(db.Get(keyMeta))
	if err != nil {
		return nil, Meta{}, fmt.Errorf("%q: %w", doc, err)
	}
	return db, m, nil
}

// Meta returns the metadata of doc.
func (s *Bolt) Meta(ctx context.Context, doc string) (Meta, error) {
	if err := validDoc(doc); err != nil {
		return Meta{}, err
	}
	var m Meta
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		_, m, err = docBucket(tx, doc)
		return err
	})
	return m, err
}

// snapshotAtOrBelow returns the newest snapshot at or below rev (Rev 0 and
// empty text when there is none).
func snapshotAtOrBelow(db *bolt.Bucket, rev uint64) (Snapshot, error) {
	c := db.Bucket(bucketSnap).Cursor()
	k, v := c.Seek(revKey(rev))
	if k == nil || !bytes.Equal(k, revKey(rev)) {
		k, v = c.Prev()
	}
	if k == nil {
		return Snapshot{}, nil
	}
	r, ok := keyRev(k)
	if !ok || r > rev {
		return Snapshot{}, fmt.Errorf("%w: snapshot key %x", ErrCorrupt, k)
	}
	text, err := decodeSnapshot(r, v)
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{Rev: r, Text: text}, nil
}

// readRecords returns the records with from <= rev <= to, ascending.
func readRecords(db *bolt.Bucket, from, to uint64, limit int) ([]Record, error) {
	var out []Record
	if to >= from {
		out = make([]Record, 0, min(int(to-from+1), max(limit, 0), 1024))
	}
	c := db.Bucket(bucketLog).Cursor()
	want := from
	for k, v := c.Seek(revKey(from)); k != nil && len(out) < limit; k, v = c.Next() {
		rev, ok := keyRev(k)
		if !ok {
			return nil, fmt.Errorf("%w: log key %x", ErrCorrupt, k)
		}
		if rev > to {
			break
		}
		if rev != want {
			return nil, fmt.Errorf("%w: log gap: want %d, found %d", ErrCorrupt, want, rev)
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
	var st State
	err := s.view(ctx, func(tx *bolt.Tx) error {
		db, m, err := docBucket(tx, doc)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		st.Meta = m
		if st.Snapshot, err = snapshotAtOrBelow(db, m.Head); err != nil {
			return err
		}
		from := st.Snapshot.Rev + 1
		if keep > 0 && m.Head > uint64(keep) {
			from = min(from, m.Head-uint64(keep)+1)
		} else if keep > 0 {
			from = 1
		}
		st.Records, err = readRecords(db, from, m.Head, int(m.Head-from+1))
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
	var out []Record
	err := s.view(ctx, func(tx *bolt.Tx) error {
		db, m, err := docBucket(tx, doc)
		if err != nil {
			return err
		}
		if after > m.Head {
			return fmt.Errorf("%w: revision %d beyond head %d", ErrNotFound, after, m.Head)
		}
		out, err = readRecords(db, after+1, m.Head, limit)
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
	var out []Revision
	err := s.view(ctx, func(tx *bolt.Tx) error {
		db, m, err := docBucket(tx, doc)
		if err != nil {
			return err
		}
		top := m.Head
		if before != 0 && before <= m.Head {
			top = before - 1
		}
		if top == 0 {
			return nil
		}
		out = make([]Revision, 0, min(uint64(limit), top))
		c := db.Bucket(bucketLog).Cursor()
		k, v := c.Seek(revKey(top))
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			rev, ok := keyRev(k)
			if !ok || rev > top {
				return fmt.Errorf("%w: log key %x", ErrCorrupt, k)
			}
			r, err := decodeRecord(rev, v, false)
			if err != nil {
				return err
			}
			out = append(out, Revision{Rev: r.Rev, Client: r.Client, User: r.User, Time: r.Time, Ins: r.Ins, Del: r.Del})
		}
		return nil
	})
	return out, err
}

// textAt rebuilds the text at rev inside tx: newest snapshot at or below rev
// plus a replay of the records after it.
func textAt(tx *bolt.Tx, doc string, rev uint64) (ot.Text, error) {
	db, m, err := docBucket(tx, doc)
	if err != nil {
		if errors.Is(err, ErrNotFound) && rev == 0 {
			return ot.NewText(""), nil
		}
		return noText, err
	}
	if rev > m.Head {
		return noText, fmt.Errorf("%w: revision %d beyond head %d of %q", ErrNotFound, rev, m.Head, doc)
	}
	sn, err := snapshotAtOrBelow(db, rev)
	if err != nil {
		return noText, err
	}
	text := ot.NewText(sn.Text)
	c := db.Bucket(bucketLog).Cursor()
	want := sn.Rev + 1
	for k, v := c.Seek(revKey(want)); k != nil && want <= rev; k, v = c.Next() {
		r, ok := keyRev(k)
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
func (s *Bolt) Diff(ctx context.Context, doc string, from, to uint64) ([]Diff, error) {
	if err := validDoc(doc); err != nil {
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
	return DiffTexts(a, b), nil
}

// DiffTexts returns the semantically cleaned diff-match-patch diff of a and b.
func DiffTexts(a, b string) []Diff {
	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = 2 * time.Second
	ds := dmp.DiffMain(a, b, false)
	ds = dmp.DiffCleanupSemantic(ds)
	out := make([]Diff, 0, len(ds))
	for _, d := range ds {
		op := 0
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			op = -1
		case diffmatchpatch.DiffInsert:
			op = 1
		}
		out = append(out, Diff{Op: op, Text: d.Text})
	}
	return out
}

// List returns every document, ordered by id.
func (s *Bolt) List(ctx context.Context) ([]DocInfo, error) {
	var out []DocInfo
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDocs).ForEachBucket(func(k []byte) error {
			_, m, err := docBucket(tx, string(k))
			if err != nil {
				return err
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
// at or below the head and the newest one is the one metadata names.
func (s *Bolt) Check(ctx context.Context) error {
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
		return tx.Bucket(bucketDocs).ForEachBucket(func(k []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return checkDoc(tx, string(k))
		})
	})
}

func checkDoc(tx *bolt.Tx, doc string) error {
	if !ValidDocID(doc) {
		return fmt.Errorf("%w: bad document id %q", ErrCorrupt, doc)
	}
	db, m, err := docBucket(tx, doc)
	if err != nil {
		return err
	}
	lb, sb := db.Bucket(bucketLog), db.Bucket(bucketSnap)
	if lb == nil || sb == nil {
		return fmt.Errorf("%w: %q: missing log or snapshot bucket", ErrCorrupt, doc)
	}
	want := uint64(1)
	err = lb.ForEach(func(k, v []byte) error {
		rev, ok := keyRev(k)
		if !ok || rev != want {
			return fmt.Errorf("%w: %q: log not contiguous at %d (key %x)", ErrCorrupt, doc, want, k)
		}
		r, err := decodeRecord(rev, v, true)
		if err != nil {
			return fmt.Errorf("%q: %w", doc, err)
		}
		if _, err := ot.ParseLimit(r.Op, stored); err != nil {
			return fmt.Errorf("%w: %q record %d: %v", ErrCorrupt, doc, rev, err)
		}
		want++
		return nil
	})
	if err != nil {
		return err
	}
	if want-1 != m.Head {
		return fmt.Errorf("%w: %q: log ends at %d, head says %d", ErrCorrupt, doc, want-1, m.Head)
	}
	var newest uint64
	err = sb.ForEach(func(k, v []byte) error {
		rev, ok := keyRev(k)
		if !ok || rev == 0 || rev > m.Head {
			return fmt.Errorf("%w: %q: snapshot key %x beyond head %d", ErrCorrupt, doc, k, m.Head)
		}
		if len(v) == 0 || v[0] != snapV1 || !utf8.Valid(v[1:]) {
			return fmt.Errorf("%w: %q: snapshot %d does not decode", ErrCorrupt, doc, rev)
		}
		newest = rev
		return nil
	})
	if err != nil {
		return err
	}
	if newest != m.SnapRev {
		return fmt.Errorf("%w: %q: newest snapshot %d, meta says %d", ErrCorrupt, doc, newest, m.SnapRev)
	}
	return nil
}

// noText is the zero Text returned next to errors.
var noText ot.Text

// stored are the parse limits for ops read back from the file: the server
// wrote them after checking its own limits, so none apply here.
var stored = ot.ParseOptions{MaxBytes: -1, MaxComponents: -1}
