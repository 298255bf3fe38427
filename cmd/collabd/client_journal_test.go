package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/collabd/collabd/storage"
)

// copyTree copies the regular files of src (one level of directories) to dst.
func copyTree(tb testing.TB, src, dst string) {
	tb.Helper()
	st, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return // a temporary file renamed meanwhile (the journal's spare segment)
	}
	if err != nil {
		tb.Fatal(err)
	}
	if !st.IsDir() {
		b, err := os.ReadFile(src)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			tb.Fatal(err)
		}
		return
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		tb.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		copyTree(tb, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
	}
}

// TestOpenSourceReplaysJournal: the client commands read a data directory
// that a crashed server left with commits only in its journal (a copy of
// a live store's files is that state): the read-only open refuses, so
// openSource opens read-write, which replays them.
func TestOpenSourceReplaysJournal(t *testing.T) {
	ctx := context.Background()
	live := t.TempDir()
	st, err := storage.OpenBolt(filepath.Join(live, dbFile), storage.Options{CheckpointInterval: time.Hour, CheckpointBytes: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := storage.Record{Rev: 1, Op: []byte(`["journal only\n"]`), Client: "c", Seq: 1, Time: time.Now()}
	if err := st.Commit(ctx, []storage.Write{{Doc: "j", Records: []storage.Record{rec}}}); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	copyTree(t, filepath.Join(live, dbFile), filepath.Join(data, dbFile))
	copyTree(t, filepath.Join(live, dbFile+"-journal"), filepath.Join(data, dbFile+"-journal"))

	if ro, err := storage.OpenBolt(filepath.Join(data, dbFile), storage.Options{ReadOnly: true}); !errors.Is(err, storage.ErrJournalPending) {
		if err == nil {
			ro.Close()
		}
		t.Fatalf("read-only open of the crashed copy: %v", err)
	}
	src, err := openSource(clientConfig{Data: data}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	rev, text, err := src.text(ctx, "j", nil)
	src.close()
	if err != nil || rev != 1 || text != "journal only\n" {
		t.Fatalf("text %d %q %v", rev, text, err)
	}
	// Replayed: the file alone now holds it, read-only opens work again.
	src, err = openSource(clientConfig{Data: data}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	defer src.close()
	if _, ok := src.(storeSource); !ok {
		t.Fatalf("source %T", src)
	}
	if err := src.backup(ctx, io.Discard); err != nil {
		t.Fatal(err)
	}
}
