package collab

import (
	"context"
	"sync"
	"testing"

	"github.com/collabd/collabd/storage"
)

// TestCommitHooks: OnCommitted sees every committed record of every
// document in revision order (not a resubmission); OnDeleted sees a
// deletion.
func TestCommitHooks(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]uint64{}
	var deleted []string
	h := newHub(t, Config{
		OnCommitted: func(doc string, recs []storage.Record) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range recs {
				got[doc] = append(got[doc], r.Rev)
			}
		},
		OnDeleted: func(doc string) {
			mu.Lock()
			defer mu.Unlock()
			deleted = append(deleted, doc)
		},
	})
	mustSubmit(t, h, sub("a", "c1", 1, 0, `["x"]`))
	mustSubmit(t, h, sub("b", "c1", 1, 0, `["y"]`))
	mustSubmit(t, h, sub("a", "c1", 2, 1, `[1,"z"]`))
	mustSubmit(t, h, sub("a", "c1", 2, 1, `[1,"z"]`)) // resubmission: no record
	if err := h.Delete(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got["a"]) != 2 || got["a"][0] != 1 || got["a"][1] != 2 || len(got["b"]) != 1 {
		t.Fatalf("committed %v", got)
	}
	if len(deleted) != 1 || deleted[0] != "b" {
		t.Fatalf("deleted %v", deleted)
	}
}
