package storage

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// bucketOutbox holds messages waiting to leave the server (webhook
// deliveries): key -> value, both opaque to the store. It lives beside the
// documents, outside the journal: a write is its own bbolt transaction.
var bucketOutbox = []byte("outbox")

// MaxOutboxKey is the longest outbox key.
const MaxOutboxKey = 512

// OutboxEntry is one stored outbox message.
type OutboxEntry struct {
	Key   string
	Value []byte
}

// WriteOutbox stores the entries of put (replacing previous values) and
// removes the keys of del (absent keys are ignored), durably, in one bbolt
// transaction and its fsync. It does not go through the journal and never
// delays document commits beyond sharing bbolt's single writer with the
// checkpoints.
func (s *Bolt) WriteOutbox(ctx context.Context, put []OutboxEntry, del []string) error {
	if len(put) == 0 && len(del) == 0 {
		return nil
	}
	for _, e := range put {
		if e.Key == "" || len(e.Key) > MaxOutboxKey {
			return fmt.Errorf("storage: outbox key of %d bytes (1 to %d)", len(e.Key), MaxOutboxKey)
		}
	}
	return s.updateOutbox(ctx, func(b *bolt.Bucket) error {
		for _, e := range put {
			if err := b.Put([]byte(e.Key), e.Value); err != nil {
				return err
			}
		}
		for _, k := range del {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Outbox returns every stored message in key order.
func (s *Bolt) Outbox(ctx context.Context) ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out = append(out, OutboxEntry{Key: string(k), Value: append([]byte(nil), v...)})
			return nil
		})
	})
	return out, err
}

func (s *Bolt) updateOutbox(ctx context.Context, fn func(*bolt.Bucket) error) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if s.opts.ReadOnly {
		return fmt.Errorf("storage: outbox: %w", bolterrors.ErrDatabaseReadOnly)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketOutbox)
		if err != nil {
			return err
		}
		return fn(b)
	})
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
