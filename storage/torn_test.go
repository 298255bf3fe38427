package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// What bbolt guarantees, and what these tests pin down: a transaction
// writes its new pages (copy on write: never a page the previous state
// references), fsyncs, then writes its meta page (one of two, alternating)
// and fsyncs again. On open, bbolt uses the valid meta page (its checksum
// matches) with the highest transaction id. So a write torn anywhere before
// the second fsync completes leaves the file at the previous committed
// transaction, which no Commit caller was told about yet; and bytes beyond
// what the chosen meta page references are ignored. What bbolt does not
// survive is the loss of pages that a valid meta page references (a file
// truncated below its high-water mark): bbolt would fault on them, so
// OpenBolt compares the file size with the newest valid meta page first and
// refuses such a file with ErrCorrupt (TestTruncatedFileIsRefused).

const pageSize = 4096 // the page size bbolt picks on this machine (os.Getpagesize)

// commitRange stores records from..to of h in one commit.
func commitRange(tb testing.TB, path string, h *history, from, to int) {
	tb.Helper()
	commitRangeOpts(tb, path, h, from, to, Options{})
}

func commitRangeOpts(tb testing.TB, path string, h *history, from, to int, opts Options) {
	tb.Helper()
	s, err := OpenBolt(path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	if err := s.Commit(context.Background(), []Write{{Doc: "d", Records: h.recs[from-1 : to]}}); err != nil {
		tb.Fatal(err)
	}
}

// reopenAt opens path and checks that it holds exactly revisions 1..head.
func reopenAt(tb testing.TB, path string, h *history, head uint64) *Bolt {
	tb.Helper()
	s, err := OpenBolt(path, Options{})
	if err != nil {
		tb.Fatalf("reopen: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.Check(ctx); err != nil {
		tb.Fatalf("check after reopen: %v", err)
	}
	m, err := s.Meta(ctx, "d")
	if err != nil || m.Head != head {
		tb.Fatalf("head %d (%v), want %d", m.Head, err, head)
	}
	if txt, err := s.TextAt(ctx, "d", head); err != nil || txt != h.texts[head] {
		tb.Fatalf("text at %d: %v", head, err)
	}
	return s
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestTornWrites(t *testing.T) {
	h := makeHistory(t, 11, 400)
	tests := []struct {
		name string
		// tear turns the files after commit A and after commit B into the
		// file a crash during commit B could leave.
		tear func(t *testing.T, a, b []byte) []byte
		head uint64 // revisions expected after reopening
	}{
		{"meta page of the last commit never written", func(t *testing.T, a, b []byte) []byte {
			out := bytes.Clone(b)
			copy(out[:2*pageSize], a[:2*pageSize])
			return out
		}, 200},
		{"data pages torn, meta page never written", func(t *testing.T, a, b []byte) []byte {
			out := bytes.Clone(b)
			copy(out[:2*pageSize], a[:2*pageSize])
			torn := 0
			for off := 2 * pageSize; off+pageSize <= len(out); off += pageSize {
				if off+pageSize > len(a) || !bytes.Equal(a[off:off+pageSize], out[off:off+pageSize]) {
					rand.Read(out[off+pageSize/2 : off+pageSize]) // half a page landed
					torn++
				}
			}
			if torn == 0 {
				t.Fatal("commit B wrote no new page")
			}
			return out
		}, 200},
		{"meta page torn (bad checksum)", func(t *testing.T, a, b []byte) []byte {
			out := bytes.Clone(b)
			newest := 0 // the meta page with the higher transaction id is B's
			if binary.LittleEndian.Uint64(b[pageSize+64:]) > binary.LittleEndian.Uint64(b[64:]) {
				newest = pageSize
			}
			out[newest+60] ^= 0x5a // the high-water mark, covered by the checksum
			return out
		}, 200},
		{"garbage appended after the last page", func(t *testing.T, a, b []byte) []byte {
			junk := make([]byte, 3*pageSize+123)
			rand.Read(junk)
			return append(bytes.Clone(b), junk...)
		}, 400},
	}
	// With NoJournal, commit B is one bbolt transaction and a torn one
	// leaves commit A. With the journal, commit B is a journal frame and
	// the torn bbolt transaction is the checkpoint that applied it: the
	// frame is still in the journal (the file says it was not
	// checkpointed), so reopening replays it.
	for _, mode := range []struct {
		name    string
		opts    Options
		journal bool
	}{{"nojournal", Options{NoJournal: true}, false}, {"journal", Options{}, true}} {
		for _, tt := range tests {
			t.Run(mode.name+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "d.db")
				commitRangeOpts(t, path, h, 1, 200, mode.opts)
				a := readFile(t, path)
				commitRangeOpts(t, path, h, 201, 400, mode.opts)
				b := readFile(t, path)
				if err := os.WriteFile(path, tt.tear(t, a, b), 0o600); err != nil {
					t.Fatal(err)
				}
				head := tt.head
				if mode.journal {
					head = 400
				}
				s := reopenAt(t, path, h, head)
				// The store keeps working: the lost commit can be made again.
				if head < 400 {
					if err := s.Commit(context.Background(), []Write{{Doc: "d", Records: h.recs[tt.head:]}}); err != nil {
						t.Fatal(err)
					}
					s.Close()
					reopenAt(t, path, h, 400)
				}
			})
		}
	}
}

func TestTruncatedFileIsRefused(t *testing.T) {
	h := makeHistory(t, 12, 300)
	path := filepath.Join(t.TempDir(), "d.db")
	commitRange(t, path, h, 1, 300)
	b := readFile(t, path)
	if err := os.WriteFile(path, b[:3*pageSize], 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenBolt(path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("a file truncated below its high-water mark opened")
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open: %v, want ErrCorrupt", err)
	}
}
