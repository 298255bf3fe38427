package storage

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/collabd/collabd/ot"
	"github.com/nats-io/nats.go/jetstream"
)

// The head slot in JetStream: one KV key per document, "head.<enc id>", in
// the snapshot bucket (whose history is 1: a Put replaces the value). Its
// value: version, uvarint revision, uvarint stream sequence (at or before
// the message holding that revision, as in the index), then the text. It
// is not in the snapshot index: a fold never reads or rewrites it, so the
// horizon's snapshot (an index entry) never depends on it. A read uses it
// when it lies at or below the revision asked, above the newest index
// entry there, and its message is still on the subject (entryHolds: a
// slot written by a deleted incarnation of the document names a purged
// message and is ignored).
const headV1 = 1

func headKey(doc string) string { return "head." + encodeDoc(doc) }

func appendJSHead(b []byte, seq uint64, sn Snapshot) []byte {
	b = append(b, headV1)
	b = binary.AppendUvarint(b, sn.Rev)
	b = binary.AppendUvarint(b, seq)
	return append(b, sn.Text...)
}

func decodeJSHead(v []byte) (snapEntry, string, error) {
	if len(v) == 0 || v[0] != headV1 {
		return snapEntry{}, "", fmt.Errorf("%w: head snapshot: unknown format", ErrCorrupt)
	}
	d := decoder{b: v[1:]}
	e := snapEntry{rev: d.uvarint(), seq: d.uvarint()}
	if d.err != nil {
		return snapEntry{}, "", fmt.Errorf("head snapshot: %w", d.err)
	}
	return e, string(d.b), nil
}

// commitHead commits w, which carries a head snapshot: the write without
// it (pre: its message, already published by sendFirst), then the head
// snapshot into the slot. As with a regular snapshot, a
// slot that fails after the records were appended is ErrSnapshotNotStored.
func (s *JetStream) commitHead(ctx context.Context, w *Write, pre *sent) error {
	plain, head := *w, w.HeadSnapshot
	plain.HeadSnapshot = nil
	n := len(w.Records)
	if head.Rev == 0 || (n > 0 && head.Rev > w.Records[n-1].Rev) {
		return fmt.Errorf("%w: %q: head snapshot %d beyond the write", ErrConflict, w.Doc, head.Rev)
	}
	if n == 0 {
		// Validate against the stored head first, as commitOne does
		// for a regular snapshot without records.
		p, ok := s.cached(w.Doc)
		if !ok || head.Rev > p.head {
			var err error
			if p, _, err = s.last(ctx, w.Doc); err != nil {
				return err
			}
		}
		if p.head == 0 || head.Rev > p.head {
			return fmt.Errorf("%w: %q: head snapshot %d, head %d", ErrConflict, w.Doc, head.Rev, p.head)
		}
	}
	if n > 0 || plain.Snapshot != nil {
		if err := s.commitOne(ctx, &plain, pre); err != nil {
			return err
		}
	}
	if plain.Snapshot != nil && head.Rev <= plain.Snapshot.Rev {
		return nil // it would save nothing
	}
	// The message holding head.Rev: the write's own when it went in one
	// message (the remembered position still ends there), else found by
	// putHead.
	var seq uint64
	if p, ok := s.cached(w.Doc); ok && head.Rev <= p.head {
		if n == 0 && head.Rev == p.head {
			seq = p.seq
		} else if n > 0 && p.head == w.Records[n-1].Rev && head.Rev >= w.Records[0].Rev {
			if c, err := s.chunk(w.Records); err == nil && c == n {
				seq = p.seq
			}
		}
	}
	if err := s.putHead(ctx, w.Doc, *head, seq); err != nil {
		if n > 0 {
			return fmt.Errorf("%w: %q: %w", ErrSnapshotNotStored, w.Doc, err)
		}
		return err
	}
	return nil
}

// putHead stores sn in doc's head slot unless the slot holds a newer one
// of the same log: a compare-and-set on the key's revision, as two nodes
// may write it at once. A seq of 0 is found by a scan from the index.
func (s *JetStream) putHead(ctx context.Context, doc string, sn Snapshot, seq uint64) error {
	if seq == 0 {
		idx, _, err := s.snapIndex(ctx, doc)
		if err != nil {
			return err
		}
		if seq, err = s.locate(ctx, doc, startSeq(idx, sn.Rev), sn.Rev); err != nil {
			return err
		}
	}
	v := appendJSHead(nil, seq, sn)
	key := headKey(doc)
	for range 16 {
		e, err := s.kvGet(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = call(s, ctx, func(ctx context.Context) (uint64, error) { return s.kv.Create(ctx, key, v) })
		case err != nil:
			return fmt.Errorf("storage: %q: head snapshot: %w", doc, err)
		default:
			cur, _, derr := decodeJSHead(e.Value())
			if derr == nil && cur.rev >= sn.Rev {
				if holds, err := s.entryHolds(ctx, doc, cur); err != nil || holds {
					return err // a newer one is there
				}
			}
			kvRev := e.Revision()
			_, err = call(s, ctx, func(ctx context.Context) (uint64, error) { return s.kv.Update(ctx, key, v, kvRev) })
		}
		if err == nil {
			return nil
		}
		if !isWrongLastSeq(err) && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("storage: %q: head snapshot: %w", doc, err)
		}
	}
	return fmt.Errorf("storage: %q: head snapshot: too many concurrent updates", doc)
}

// headAtOrBelow returns doc's head slot when a read at rev should start
// there: at or below rev, above the newest index entry at or below rev,
// and on the current log. ok is false otherwise.
func (s *JetStream) headAtOrBelow(ctx context.Context, doc string, idx []snapEntry, rev uint64) (Snapshot, uint64, bool, error) {
	e, err := s.kvGet(ctx, headKey(doc))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Snapshot{}, 0, false, nil
	}
	if err != nil {
		return Snapshot{}, 0, false, fmt.Errorf("storage: %q: head snapshot: %w", doc, err)
	}
	h, text, err := decodeJSHead(e.Value())
	if err != nil {
		return Snapshot{}, 0, false, fmt.Errorf("%q: %w", doc, err)
	}
	i, found := slices.BinarySearchFunc(idx, rev, func(e snapEntry, r uint64) int { return cmp.Compare(e.rev, r) })
	if found {
		i++
	}
	if h.rev > rev || h.rev == 0 || (i > 0 && idx[i-1].rev >= h.rev) {
		return Snapshot{}, 0, false, nil
	}
	if holds, err := s.entryHolds(ctx, doc, h); err != nil || !holds {
		return Snapshot{}, 0, false, err
	}
	return Snapshot{Rev: h.rev, Text: text}, h.seq, true, nil
}

// purgeHead empties doc's head slot (a delete).
func (s *JetStream) purgeHead(ctx context.Context, doc string) error {
	if err := s.kvPurge(ctx, headKey(doc)); err != nil {
		return fmt.Errorf("storage: %q: purge head snapshot: %w", doc, err)
	}
	return nil
}

// checkHead verifies doc's head slot, if it is on the current log: at or
// below the head, and its text is the one the log replays to there.
func (s *JetStream) checkHead(ctx context.Context, doc string, head uint64) error {
	e, err := s.kvGet(ctx, headKey(doc))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: %q: head snapshot: %w", doc, err)
	}
	h, text, err := decodeJSHead(e.Value())
	if err != nil {
		return fmt.Errorf("%q: %w", doc, err)
	}
	if holds, err := s.entryHolds(ctx, doc, h); err != nil || !holds {
		return err // left by a deleted incarnation: ignored by reads
	}
	if h.rev > head {
		return fmt.Errorf("%w: %q: head snapshot %d beyond head %d", ErrCorrupt, doc, h.rev, head)
	}
	idx, _, err := s.snapIndex(ctx, doc)
	if err != nil {
		return err
	}
	if h.rev <= foldedAt(idx, head) {
		return nil // at or below the fold horizon: no read uses it; the next head snapshot replaces it
	}
	// The text at h.rev-1 (which never starts at the slot) plus the op
	// at h.rev.
	before, err := s.textAt(ctx, doc, h.rev-1)
	if err != nil {
		return err
	}
	recs, err := s.Records(ctx, doc, h.rev-1, 1)
	if err != nil {
		return err
	}
	if len(recs) != 1 {
		return fmt.Errorf("%w: %q: no record at the head snapshot's revision %d", ErrCorrupt, doc, h.rev)
	}
	op, err := ot.ParseLimit(recs[0].Op, stored)
	if err != nil {
		return fmt.Errorf("%w: %q record %d: %v", ErrCorrupt, doc, h.rev, err)
	}
	want, err := op.ApplyString(before)
	if err != nil || want != text {
		return fmt.Errorf("%w: %q: head snapshot %d differs from the log's text", ErrCorrupt, doc, h.rev)
	}
	return nil
}
