package collab

import (
	"context"
	"testing"

	"github.com/collabd/collabd/internal/contract"
)

func TestNamedVersionsThroughHub(t *testing.T) {
	ctx := context.Background()
	h := newHub(t, Config{})
	mustSubmit(t, h, sub("d", "c1", 1, 0, `["hello"]`))
	mustSubmit(t, h, sub("d", "c1", 2, 1, `[5," world"]`))

	v, err := h.NameVersion(ctx, "d", "first", 1, "ann")
	if err != nil || v.Rev != 1 || v.User != "ann" || v.Created.IsZero() {
		t.Fatalf("name rev 1: %+v %v", v, err)
	}
	v, err = h.NameVersion(ctx, "d", "head", 0, "bob")
	if err != nil || v.Rev != 2 {
		t.Fatalf("name the head: %+v %v", v, err)
	}
	for _, tc := range []struct {
		doc, name string
		rev       uint64
		code      contract.Code
	}{
		{"d", "first", 2, contract.CodeConflict},
		{"d", "later", 3, contract.CodeNotFound},
		{"never", "x", 0, contract.CodeNotFound},
		{"d", "", 1, contract.CodeBadRequest},
		{"bad id", "x", 1, contract.CodeBadRequest},
	} {
		if _, err := h.NameVersion(ctx, tc.doc, tc.name, tc.rev, "ann"); CodeOf(err) != tc.code {
			t.Errorf("NameVersion(%q, %q, %d) = %v, want %s", tc.doc, tc.name, tc.rev, err, tc.code)
		}
	}
	// Edits go on; the named texts do not move.
	mustSubmit(t, h, sub("d", "c1", 3, 2, `[-5]`))
	if _, text, err := h.VersionText(ctx, "d", "first"); err != nil || text != "hello" {
		t.Fatalf("first: %q %v", text, err)
	}
	if _, text, err := h.VersionText(ctx, "d", "head"); err != nil || text != "hello world" {
		t.Fatalf("head: %q %v", text, err)
	}
	if _, err := h.RenameVersion(ctx, "d", "head", "first"); CodeOf(err) != contract.CodeConflict {
		t.Fatalf("rename onto a taken name: %v", err)
	}
	if v, err := h.RenameVersion(ctx, "d", "head", "v2"); err != nil || v.Name != "v2" || v.User != "bob" {
		t.Fatalf("rename: %+v %v", v, err)
	}
	if err := h.DeleteVersion(ctx, "d", "first"); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteVersion(ctx, "d", "first"); CodeOf(err) != contract.CodeNotFound {
		t.Fatalf("second delete: %v", err)
	}
	vs, err := h.Versions(ctx, "d")
	if err != nil || len(vs) != 1 || vs[0].Name != "v2" {
		t.Fatalf("versions: %+v %v", vs, err)
	}
	if err := h.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if vs, err := h.Versions(ctx, "d"); err != nil || len(vs) != 0 {
		t.Fatalf("versions after the document's delete: %+v %v", vs, err)
	}
}
