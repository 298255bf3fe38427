package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Retention is a history retention policy: which ops are kept one by one
// (history lines, text and diffs at any revision, exactly-once for
// resubmissions) and which are folded into a snapshot. An op is folded
// once it is outside both bounds that are set: older than KeepFor and
// more than KeepRevs revisions below the head. The zero value keeps
// everything.
type Retention struct {
	// KeepRevs keeps the ops of the last KeepRevs revisions; 0: no bound
	// by count.
	KeepRevs uint64 `json:"revisions"`
	// KeepFor keeps every op younger than this; 0: no bound by age.
	KeepFor time.Duration `json:"-"`
}

// KeepsAll reports whether the policy never folds anything.
func (p Retention) KeepsAll() bool { return p.KeepRevs == 0 && p.KeepFor <= 0 }

// foldChunk bounds the revisions one fold transaction removes, so that a
// document with a million revisions is folded in transactions of bounded
// memory, each leaving a consistent file.
var foldChunk uint64 = 20000

// foldStats are the retention counters, for /metrics.
type foldStats struct {
	folded atomic.Uint64 // revisions folded since open
	runs   atomic.Uint64 // fold transactions committed
}

// FoldedRevisions returns how many revisions were folded since the store
// was opened, and in how many transactions.
func (s *Bolt) FoldedRevisions() (revisions, transactions uint64) {
	return s.fold.folded.Load(), s.fold.runs.Load()
}

// Fold applies the retention policy p to doc at time now: the ops of the
// revisions p lets go are deleted with every snapshot below the new fold
// horizon H, and the text at H is stored as a snapshot; Meta.Folded
// becomes H. Revision numbers never change; named versions keep their
// texts. It returns the new horizon (the old one when nothing was folded).
// Each transaction folds at most foldChunk revisions and is synced, so a
// crash leaves the file at a consistent horizon.
func (s *Bolt) Fold(ctx context.Context, doc string, p Retention, now time.Time) (uint64, error) {
	if err := validDoc(doc); err != nil {
		return 0, err
	}
	if err := s.barrierDoc(ctx, doc); err != nil {
		return 0, err
	}
	var horizon uint64
	for {
		if err := s.usable(ctx); err != nil {
			return horizon, err
		}
		// A read first: most documents, most of the time, have nothing
		// to fold, and a write transaction would cost an fsync each.
		var due bool
		err := s.view(ctx, func(tx *bolt.Tx) error {
			d, err := openDoc(tx, doc)
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			horizon = d.meta.Folded
			h, err := d.foldTarget(p, now)
			due = h > d.meta.Folded
			return err
		})
		if err != nil || !due {
			return horizon, err
		}
		var done bool
		var n uint64
		s.directMu.Lock()
		err = s.dbUpdate(func(tx *bolt.Tx) error {
			d, err := openDoc(tx, doc)
			if errors.Is(err, ErrNotFound) {
				done = true
				return nil
			}
			if err != nil {
				return err
			}
			horizon = d.meta.Folded
			h, err := d.foldTarget(p, now)
			if err != nil || h <= d.meta.Folded {
				done = true
				return err
			}
			if err := foldTo(tx, d, h); err != nil {
				return err
			}
			n, horizon = h-d.meta.Folded, h
			return nil
		})
		s.directMu.Unlock()
		if err == nil && n > 0 {
			s.fold.folded.Add(n)
			s.fold.runs.Add(1)
		}
		if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
			return horizon, ErrClosed
		}
		if err != nil || done {
			return horizon, err
		}
	}
}

// foldTarget is the horizon p allows for d now, at most foldChunk
// revisions above the current one.
func (d docView) foldTarget(p Retention, now time.Time) (uint64, error) {
	if p.KeepsAll() {
		return d.meta.Folded, nil
	}
	limit := d.meta.Head
	if p.KeepRevs > 0 {
		if limit <= p.KeepRevs {
			return d.meta.Folded, nil
		}
		limit -= p.KeepRevs
	}
	limit = min(limit, d.meta.Folded+foldChunk)
	if p.KeepFor <= 0 {
		return limit, nil
	}
	// The newest op older than the cutoff, scanning up from the horizon
	// (ops are in time order: the sequencer stamps them as it commits).
	cutoff := now.Add(-p.KeepFor).UnixNano()
	h := d.meta.Folded
	c := d.log.Cursor()
	for k, v := c.Seek(docKey(d.id, h+1)); k != nil; k, v = c.Next() {
		rev, ok := keyDocRev(k, d.id)
		if !ok || rev > limit {
			break
		}
		r, _, _, _, err := viewRecord(rev, v)
		if err != nil {
			return 0, err
		}
		if r.Time.UnixNano() >= cutoff {
			break
		}
		h = rev
	}
	return h, nil
}

// foldTo moves d's fold horizon up to h inside tx.
func foldTo(tx *bolt.Tx, d docView, h uint64) error {
	text, err := textAt(tx, d.id, h)
	if err != nil {
		return err
	}
	m := d.meta
	// The history's folded line keeps the time of h's op.
	r, _, _, _, err := viewRecord(h, d.log.Get(docKey(d.id, h)))
	if err != nil {
		return err
	}
	m.FoldedTime = r.Time
	// Snapshots below h go, the one at h is (re)written.
	var keys [][]byte
	c := d.snaps.Cursor()
	for k, _ := c.Seek(docKey(d.id, 0)); k != nil; k, _ = c.Next() {
		rev, ok := keyDocRev(k, d.id)
		if !ok || rev >= h {
			break
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := d.snaps.Delete(k); err != nil {
			return err
		}
	}
	if err := d.snaps.Put(docKey(d.id, h), appendSnapshot(nil, text.String())); err != nil {
		return err
	}
	// The horizon's snapshot is a regular one: only a later fold deletes
	// it. A head slot at or below it goes (it would lie below the newest
	// regular snapshot, or below the horizon).
	if hr, _, ok := d.headSlot(); ok && hr <= h {
		if err := d.heads.Delete([]byte(d.id)); err != nil {
			return err
		}
	}
	// The ops of revisions Folded+1 to h go. bbolt's cursor Delete keeps
	// the cursor on the next key.
	lc := d.log.Cursor()
	k, _ := lc.Seek(docKey(d.id, m.Folded+1))
	for k != nil {
		rev, ok := keyDocRev(k, d.id)
		if !ok || rev > h {
			break
		}
		if err := lc.Delete(); err != nil {
			return err
		}
		k, _ = lc.Seek(docKey(d.id, rev+1))
	}
	m.Folded = h
	m.SnapRev = max(m.SnapRev, h)
	return tx.Bucket(bucketMeta).Put([]byte(d.id), appendMeta(nil, &m))
}

// bucketRet holds the per-document retention overrides: id -> policy.
var bucketRet = []byte("ret")

const retV1 = 1

func appendRetention(p Retention) []byte {
	b := []byte{retV1}
	b = binary.AppendUvarint(b, p.KeepRevs)
	return binary.AppendVarint(b, int64(p.KeepFor))
}

func decodeRetention(v []byte) (Retention, error) {
	if len(v) == 0 || v[0] != retV1 {
		return Retention{}, fmt.Errorf("%w: retention: unknown format", ErrCorrupt)
	}
	d := decoder{b: v[1:]}
	p := Retention{KeepRevs: d.uvarint(), KeepFor: time.Duration(d.varint())}
	if d.err != nil {
		return Retention{}, fmt.Errorf("retention: %w", d.err)
	}
	return p, nil
}

// SetRetention stores doc's own retention policy (nil: doc follows the
// server's policy again). The document must exist; deleting it deletes
// its policy.
func (s *Bolt) SetRetention(ctx context.Context, doc string, p *Retention) error {
	if err := validDoc(doc); err != nil {
		return err
	}
	if p != nil && (p.KeepFor < 0) {
		return fmt.Errorf("%w: negative retention", ErrInvalid)
	}
	return s.update(ctx, doc, func(tx *bolt.Tx) error {
		if _, err := openDoc(tx, doc); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(bucketRet)
		if err != nil {
			return err
		}
		if p == nil {
			return b.Delete([]byte(doc))
		}
		return b.Put([]byte(doc), appendRetention(*p))
	})
}

// DocRetention returns doc's own retention policy, nil when it follows
// the server's.
func (s *Bolt) DocRetention(ctx context.Context, doc string) (*Retention, error) {
	if err := validDoc(doc); err != nil {
		return nil, err
	}
	if err := s.barrierDoc(ctx, doc); err != nil {
		return nil, err
	}
	var out *Retention
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRet)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(doc))
		if v == nil {
			return nil
		}
		p, err := decodeRetention(v)
		out = &p
		return err
	})
	return out, err
}

// FoldAll applies the retention policy to every document: a document's
// own policy (SetRetention) when it has one, else def. It returns how
// many revisions it folded. Documents are read and folded one at a time,
// each in its own transactions, so writers wait at most one chunk.
func (s *Bolt) FoldAll(ctx context.Context, def Retention, now time.Time) (uint64, error) {
	type item struct {
		id   string
		pol  Retention
		head uint64
		fold uint64
	}
	var todo []item
	err := s.view(ctx, func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRet)
		return tx.Bucket(bucketMeta).ForEach(func(k, v []byte) error {
			pol := def
			if rb != nil {
				if pv := rb.Get(k); pv != nil {
					p, err := decodeRetention(pv)
					if err != nil {
						return err
					}
					pol = p
				}
			}
			if pol.KeepsAll() {
				return nil
			}
			m, err := decodeMeta(v)
			if err != nil {
				return err
			}
			if pol.KeepRevs > 0 && m.Head <= m.Folded+pol.KeepRevs {
				return nil // nothing the count lets go
			}
			todo = append(todo, item{string(k), pol, m.Head, m.Folded})
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	var total uint64
	var errs []error
	for _, it := range todo {
		h, err := s.Fold(ctx, it.id, it.pol, now)
		if errors.Is(err, ErrClosed) || ctx.Err() != nil {
			return total, errors.Join(append(errs, err)...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", it.id, err))
			continue
		}
		if h > it.fold {
			total += h - it.fold
		}
	}
	return total, errors.Join(errs...)
}
