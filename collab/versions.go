package collab

import (
	"context"
	"time"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/storage"
)

// NameVersion names revision rev of doc (0: the committed head) and keeps
// its full text for good; user is who named it. A taken name is conflict,
// a missing document or a revision beyond the head not_found, a bad name
// bad_request.
func (h *Hub) NameVersion(ctx context.Context, doc, name string, rev uint64, user string) (storage.Version, error) {
	if err := h.precheck(doc); err != nil {
		return storage.Version{}, err
	}
	if !contract.ValidVersionName(name) {
		return storage.Version{}, newError(contract.CodeBadRequest, "version names are %s", contract.VersionNameRule)
	}
	if rev == 0 {
		m, err := h.store.Meta(ctx, doc)
		if err != nil {
			return storage.Version{}, storeError(err)
		}
		rev = m.Head
	}
	v := storage.Version{Name: name, Rev: rev, User: user, Created: time.Now().UTC().Truncate(time.Millisecond)}
	if err := h.store.PutVersion(ctx, doc, v); err != nil {
		return storage.Version{}, storeError(err)
	}
	return v, nil
}

// Versions lists doc's named versions, newest revision first (none for a
// document never written).
func (h *Hub) Versions(ctx context.Context, doc string) ([]storage.Version, error) {
	if err := h.precheck(doc); err != nil {
		return nil, err
	}
	vs, err := h.store.Versions(ctx, doc)
	return vs, storeError(err)
}

// VersionText returns doc's version name with the text it keeps.
func (h *Hub) VersionText(ctx context.Context, doc, name string) (storage.Version, string, error) {
	if err := h.precheck(doc); err != nil {
		return storage.Version{}, "", err
	}
	v, text, err := h.store.VersionText(ctx, doc, name)
	return v, text, storeError(err)
}

// RenameVersion renames doc's version from to to (conflict when to is
// taken).
func (h *Hub) RenameVersion(ctx context.Context, doc, from, to string) (storage.Version, error) {
	if err := h.precheck(doc); err != nil {
		return storage.Version{}, err
	}
	if !contract.ValidVersionName(to) {
		return storage.Version{}, newError(contract.CodeBadRequest, "version names are %s", contract.VersionNameRule)
	}
	v, err := h.store.RenameVersion(ctx, doc, from, to)
	return v, storeError(err)
}

// DeleteVersion removes doc's version name; the revision's text stays
// available as long as the log keeps it.
func (h *Hub) DeleteVersion(ctx context.Context, doc, name string) error {
	if err := h.precheck(doc); err != nil {
		return err
	}
	return storeError(h.store.DeleteVersion(ctx, doc, name))
}
