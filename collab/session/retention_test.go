package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/storage"
)

// TestGoneOverTheWire: past the fold horizon an op, a resubmission and a
// revision query get gone with the earliest revision; a resuming join
// gets the text.
func TestGoneOverTheWire(t *testing.T) {
	e := newEnv(t, envOpts{hubCfg: collab.Config{Retain: 8}})
	a := e.client()
	a.mustOK("doc:join", obj("doc", "g", "client", "ann"))
	a.mustOK("doc:op", obj("doc", "g", "client", "ann", "seq", 1, "rev", 0, "op", raw(`["x"]`)))
	for i := 2; i <= 60; i++ {
		a.mustOK("doc:op", obj("doc", "g", "client", "ann", "seq", i, "rev", i-1, "op", raw(fmt.Sprintf(`[%d,"x"]`, i-1))))
	}
	horizon, err := e.store.Fold(context.Background(), "g", storage.Retention{KeepRevs: 10}, time.Now())
	if err != nil || horizon != 50 {
		t.Fatalf("fold: %d %v", horizon, err)
	}
	earliest := func(ack ack) uint64 {
		var v struct{ Error struct{ Earliest uint64 } }
		json.Unmarshal(ack.raw, &v)
		return v.Error.Earliest
	}
	for _, tc := range []struct {
		event   string
		payload map[string]any
	}{
		{"doc:op", obj("doc", "g", "client", "ann", "seq", 5, "rev", 4, "op", raw(`[4,"x"]`))},
		{"doc:op", obj("doc", "g", "client", "ann", "seq", 61, "rev", 20, "op", raw(`["y"]`))},
		{"doc:revision", obj("doc", "g", "rev", 3)},
		{"doc:diff", obj("doc", "g", "from", 3, "to", 60)},
	} {
		got := a.call(tc.event, tc.payload)
		if got.code() != "gone" || earliest(got) != 50 {
			t.Errorf("%s %v: %s, want gone with earliest 50", tc.event, tc.payload, got.raw)
		}
	}
	if rev, _ := e.text("g"); rev != 60 {
		t.Fatalf("head %d after refused ops", rev)
	}
	b := e.client()
	got := b.mustOK("doc:join", obj("doc", "g", "client", "bob", "rev", 10))
	if got.Text == nil || got.Rev != 60 || len(*got.Text) != 60 {
		t.Fatalf("resuming join behind the horizon: %s", got.raw)
	}
}
