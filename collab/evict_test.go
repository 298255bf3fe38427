package collab

import (
	"context"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/collabd/collabd/storage"
)

func TestEvictionAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "collabd.db")
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store, err := storage.OpenBolt(path, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		h, err := New(Config{Store: store, IdleTimeout: time.Minute, SnapshotEvery: 1000})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close(ctx)
		for i := range 3 {
			mustSubmit(t, h, sub("d", "a", uint64(i+1), uint64(i), `["ab"]`))
		}
		mustSubmit(t, h, sub("e", "a", 1, 0, `["e"]`))
		s, err := h.Subscribe(ctx, "e", func(storage.Record) {})
		if err != nil {
			t.Fatal(err)
		}
		if n := h.Stats().LiveDocs; n != 2 {
			t.Fatalf("%d live docs", n)
		}

		time.Sleep(50 * time.Second) // used recently: stays
		synctest.Wait()
		if n := h.Stats().LiveDocs; n != 2 {
			t.Fatalf("%d live docs before the idle timeout", n)
		}
		time.Sleep(40 * time.Second) // idle for more than a minute
		synctest.Wait()
		if n := h.Stats().LiveDocs; n != 1 {
			t.Fatalf("%d live docs after the idle timeout, want 1 (the subscribed one)", n)
		}
		if m, err := store.Meta(ctx, "d"); err != nil || m.SnapRev != 3 {
			t.Fatalf("final snapshot on eviction: %+v %v", m, err)
		}

		// Reload: the state, the resubmission log and new ops all work.
		if rev := mustSubmit(t, h, sub("d", "a", 3, 2, `["ab"]`)); rev != 3 {
			t.Fatalf("resubmission after reload got %d", rev)
		}
		if rev := mustSubmit(t, h, sub("d", "b", 1, 3, `[6,"!"]`)); rev != 4 {
			t.Fatalf("new op after reload got %d", rev)
		}
		if rev, text := textOf(t, h, "d"); rev != 4 || text != "ababab!" {
			t.Fatalf("reloaded text %q at %d", text, rev)
		}

		s.Cancel()
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if n := h.Stats().LiveDocs; n != 0 {
			t.Fatalf("%d live docs after everything went idle", n)
		}
	})
}
