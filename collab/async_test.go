package collab

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/storage"
)

// asyncResult collects the callbacks of SubmitAsync.
type asyncResult struct {
	rev uint64
	err error
}

func submitAsync(h *Hub, s Submission) chan asyncResult {
	ch := make(chan asyncResult, 2) // 2: a second call would be seen
	h.SubmitAsync(context.Background(), s, func(rev uint64, err error) { ch <- asyncResult{rev, err} })
	return ch
}

func TestSubmitAsync(t *testing.T) {
	ctx := context.Background()
	h := newHub(t, Config{Retain: 2})
	var mu sync.Mutex
	var seen []uint64
	s, err := h.Subscribe(ctx, "d", func(r storage.Record) { mu.Lock(); seen = append(seen, r.Rev); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cancel()

	var afterSubs bool
	done := make(chan struct{})
	h.SubmitAsync(ctx, sub("d", "a", 1, 0, `["abc"]`), func(rev uint64, err error) {
		mu.Lock()
		afterSubs = len(seen) == 1 && seen[0] == rev
		mu.Unlock()
		if rev != 1 || err != nil {
			t.Errorf("first op: %d, %v", rev, err)
		}
		close(done)
	})
	<-done
	if !afterSubs {
		t.Fatal("callback ran before the subscriber got the record")
	}
	for seq := uint64(2); seq <= 6; seq++ {
		mustSubmit(t, h, sub("d", "a", seq, seq-1, `["x"]`))
	}

	tests := []struct {
		name    string
		s       Submission
		wantRev uint64
		want    contract.Code
	}{
		{"new op", sub("d", "b", 1, 6, `["y"]`), 7, ""},
		{"resubmission in memory", sub("d", "b", 1, 6, `["y"]`), 7, ""},
		{"resubmission older than memory", sub("d", "a", 2, 1, `["x"]`), 2, ""},
		{"op on a base older than memory", sub("d", "c", 1, 1, `[3,"z"]`), 8, ""},
		{"bad op", sub("d", "c", 2, 8, `[0]`), 0, contract.CodeBadRequest},
		{"bad document", sub("a b", "c", 2, 8, `["x"]`), 0, contract.CodeBadRequest},
		{"ahead of the head", sub("d", "c", 2, 99, `["x"]`), 0, contract.CodeConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := <-submitAsync(h, tt.s)
			if tt.want != "" {
				if CodeOf(r.err) != tt.want {
					t.Fatalf("got %d, %v; want code %s", r.rev, r.err, tt.want)
				}
				return
			}
			if r.err != nil || r.rev != tt.wantRev {
				t.Fatalf("got %d, %v; want %d", r.rev, r.err, tt.wantRev)
			}
		})
	}
	if rev, text := textOf(t, h, "d"); rev != 8 || text != "yxxxxxabcz" {
		t.Fatalf("text %q at %d", text, rev)
	}
}

// TestSubmitAsyncCommitFailure checks that the callbacks of a failed batch,
// and of the ops sequenced on top of it, get the failure.
func TestSubmitAsyncCommitFailure(t *testing.T) {
	fs := &failingStore{Store: openStore(t, "")}
	h := newHub(t, Config{Store: fs})
	mustSubmit(t, h, sub("d", "a", 1, 0, `["abc"]`))
	gate := make(chan struct{})
	fs.set(true, gate)
	first := submitAsync(h, sub("d", "a", 2, 1, `[3,"d"]`))
	waitFor(t, func() bool { r, _ := headOf(h, "d"); return r == 2 })
	onTop := submitAsync(h, sub("d", "b", 1, 1, `["0"]`))
	resub := submitAsync(h, sub("d", "a", 2, 1, `[3,"d"]`)) // in flight: same wait
	waitFor(t, func() bool { r, _ := headOf(h, "d"); return r == 3 })
	close(gate)
	for name, ch := range map[string]chan asyncResult{"first": first, "on top": onTop, "resubmission": resub} {
		if r := <-ch; CodeOf(r.err) != contract.CodeInternal || !errors.Is(r.err, errInjected) {
			t.Fatalf("%s: %d, %v", name, r.rev, r.err)
		}
	}
	fs.set(false, nil)
	if r := <-submitAsync(h, sub("d", "a", 2, 1, `[3,"d"]`)); r.err != nil || r.rev != 2 {
		t.Fatalf("after recovery: %d, %v", r.rev, r.err)
	}
	for name, ch := range map[string]chan asyncResult{"first": first, "on top": onTop, "resubmission": resub} {
		if len(ch) != 0 {
			t.Fatalf("%s: callback called twice", name)
		}
	}
}
