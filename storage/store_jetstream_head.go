package storage

import (
	"context"
	"fmt"
)

// commitHead commits w, which carries a head snapshot. The JetStream store
// has no head slot: it keeps a head snapshot as a regular one (in the
// bucket and the index, until a fold deletes it), so its snapshots grow
// as they did before the slot existed (see docs/architecture.md, "Large
// histories and retention").
func (s *JetStream) commitHead(ctx context.Context, w *Write) error {
	plain, head := *w, w.HeadSnapshot
	plain.HeadSnapshot = nil
	if plain.Snapshot == nil || plain.Snapshot.Rev == head.Rev {
		plain.Snapshot = head
		return s.commitOne(ctx, &plain)
	}
	if n := len(w.Records); head.Rev == 0 || (n > 0 && head.Rev > w.Records[n-1].Rev) {
		return fmt.Errorf("%w: %q: head snapshot %d beyond the write", ErrConflict, w.Doc, head.Rev)
	}
	if err := s.commitOne(ctx, &plain); err != nil || head.Rev < plain.Snapshot.Rev {
		return err // one below the regular snapshot would save nothing
	}
	if err := s.putSnapshot(ctx, w.Doc, *head, 0); err != nil {
		if len(w.Records) > 0 {
			return fmt.Errorf("%w: %q: %w", ErrSnapshotNotStored, w.Doc, err)
		}
		return err
	}
	return nil
}
