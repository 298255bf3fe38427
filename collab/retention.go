package collab

import (
	"context"
	"time"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/storage"
)

// FoldAll applies the retention policy to every stored document (its own
// policy, else Config.Retention) and returns how many revisions it folded.
// Documents stay live meanwhile: a fold touches only revisions at or
// below the store's head. An op whose base the fold passed fails with
// gone once the document's in-memory log no longer holds that base.
func (h *Hub) FoldAll(ctx context.Context) (uint64, error) {
	if err := h.checkOpen(); err != nil {
		return 0, err
	}
	n, err := h.store.FoldAll(ctx, h.cfg.Retention, time.Now())
	return n, storeError(err)
}

// Retention returns the policy that applies to doc and whether it is the
// document's own (false: the server's).
func (h *Hub) Retention(ctx context.Context, doc string) (storage.Retention, bool, error) {
	if err := h.precheck(doc); err != nil {
		return storage.Retention{}, false, err
	}
	p, err := h.store.DocRetention(ctx, doc)
	if err != nil {
		return storage.Retention{}, false, storeError(err)
	}
	if p == nil {
		return h.cfg.Retention, false, nil
	}
	return *p, true, nil
}

// SetRetention gives doc a policy of its own (nil: the server's again).
// The document must exist (not_found); the policy applies at the next
// FoldAll and goes with the document when it is deleted.
func (h *Hub) SetRetention(ctx context.Context, doc string, p *storage.Retention) error {
	if err := h.precheck(doc); err != nil {
		return err
	}
	if p != nil && p.KeepFor < 0 {
		return newError(contract.CodeBadRequest, "retention must not be negative")
	}
	return storeError(h.store.SetRetention(ctx, doc, p))
}
