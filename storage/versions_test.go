package storage

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestNamedVersions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "collabd.db")
	s := openPath(t, path, noCheckpoints) // every commit stays in the journal until a read
	h := makeHistory(t, 3, 250)
	commitHistory(t, s, "doc", h, 9, 100)
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

	put := func(name string, rev uint64) error {
		return s.PutVersion(ctx, "doc", Version{Name: name, Rev: rev, User: "ann", Created: t0})
	}
	if err := put("v1.2", 120); err != nil {
		t.Fatal(err)
	}
	if err := put("Sent to client", 250); err != nil {
		t.Fatal(err)
	}
	if err := put("early", 1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rev  uint64
		want error
	}{
		{"v1.2", 7, ErrExists},
		{"future", 251, ErrNotFound},
		{"zero", 0, ErrInvalid},
		{"bad\x00name", 3, ErrInvalid},
		{"", 3, ErrInvalid},
	} {
		if err := put(tc.name, tc.rev); !errors.Is(err, tc.want) {
			t.Errorf("PutVersion(%q, %d) = %v, want %v", tc.name, tc.rev, err, tc.want)
		}
	}
	if err := s.PutVersion(ctx, "nodoc", Version{Name: "x", Rev: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("version of a missing document: %v", err)
	}

	vs, err := s.Versions(ctx, "doc")
	if err != nil || len(vs) != 3 || vs[0].Name != "Sent to client" || vs[1].Name != "v1.2" || vs[2].Name != "early" {
		t.Fatalf("versions %+v %v", vs, err)
	}
	if vs[1].Rev != 120 || vs[1].User != "ann" || !vs[1].Created.Equal(t0) {
		t.Fatalf("version %+v", vs[1])
	}
	v, text, err := s.VersionText(ctx, "doc", "v1.2")
	if err != nil || v.Rev != 120 || text != h.texts[120] {
		t.Fatalf("text of v1.2: %+v %q %v", v, text, err)
	}

	if _, err := s.RenameVersion(ctx, "doc", "v1.2", "early"); !errors.Is(err, ErrExists) {
		t.Fatalf("rename onto a taken name: %v", err)
	}
	if _, err := s.RenameVersion(ctx, "doc", "nope", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rename of a missing version: %v", err)
	}
	if v, err := s.RenameVersion(ctx, "doc", "v1.2", "v1.2 final"); err != nil || v.Name != "v1.2 final" || v.Rev != 120 {
		t.Fatalf("rename: %+v %v", v, err)
	}
	if _, _, err := s.VersionText(ctx, "doc", "v1.2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old name after rename: %v", err)
	}
	if err := s.DeleteVersion(ctx, "doc", "early"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVersion(ctx, "doc", "early"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}

	// A version survives a crash and a reopen (its write is a synced
	// bbolt transaction, not a journal frame).
	crash(s)
	s = openPath(t, path, Options{})
	v, text, err = s.VersionText(ctx, "doc", "v1.2 final")
	if err != nil || text != h.texts[120] || v.User != "ann" {
		t.Fatalf("after reopen: %+v %v", v, err)
	}
	if vs, _ := s.Versions(ctx, "doc"); len(vs) != 2 {
		t.Fatalf("versions after reopen: %+v", vs)
	}

	// Deleting the document deletes its versions; the id starts afresh.
	commitT(t, s, Write{Doc: "doc", Delete: true})
	commitT(t, s, Write{Doc: "doc", Records: h.recs[:1]})
	if vs, err := s.Versions(ctx, "doc"); err != nil || len(vs) != 0 {
		t.Fatalf("versions after delete: %+v %v", vs, err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
