package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Named versions and history retention are not kept in JetStream yet: the
// methods below answer errors.ErrUnsupported (wrapped, naming the feature),
// never a silent success. docs/architecture.md, "The op log on JetStream",
// says what is missing.

func errJetStreamUnsupported(what string) error {
	return fmt.Errorf("storage: %s is not supported by the JetStream store yet: %w", what, errors.ErrUnsupported)
}

// PutVersion is not supported yet (errors.ErrUnsupported).
func (s *JetStream) PutVersion(ctx context.Context, doc string, v Version) error {
	return errJetStreamUnsupported("naming a version")
}

// RenameVersion is not supported yet (errors.ErrUnsupported).
func (s *JetStream) RenameVersion(ctx context.Context, doc, from, to string) (Version, error) {
	return Version{}, errJetStreamUnsupported("renaming a version")
}

// DeleteVersion is not supported yet (errors.ErrUnsupported).
func (s *JetStream) DeleteVersion(ctx context.Context, doc, name string) error {
	return errJetStreamUnsupported("deleting a version")
}

// Versions is not supported yet (errors.ErrUnsupported).
func (s *JetStream) Versions(ctx context.Context, doc string) ([]Version, error) {
	return nil, errJetStreamUnsupported("listing versions")
}

// VersionText is not supported yet (errors.ErrUnsupported).
func (s *JetStream) VersionText(ctx context.Context, doc, name string) (Version, string, error) {
	return Version{}, "", errJetStreamUnsupported("reading a version")
}

// Fold is not supported yet (errors.ErrUnsupported) unless p keeps
// everything, which folds nothing.
func (s *JetStream) Fold(ctx context.Context, doc string, p Retention, now time.Time) (uint64, error) {
	if p.KeepsAll() {
		return 0, nil
	}
	return 0, errJetStreamUnsupported("history retention")
}

// FoldAll is not supported yet (errors.ErrUnsupported) unless def keeps
// everything (no document can have a policy of its own here).
func (s *JetStream) FoldAll(ctx context.Context, def Retention, now time.Time) (uint64, error) {
	if def.KeepsAll() {
		return 0, nil
	}
	return 0, errJetStreamUnsupported("history retention")
}

// SetRetention is not supported yet (errors.ErrUnsupported).
func (s *JetStream) SetRetention(ctx context.Context, doc string, p *Retention) error {
	return errJetStreamUnsupported("a document's retention policy")
}

// DocRetention reports no policy of the document's own: none can be set.
func (s *JetStream) DocRetention(ctx context.Context, doc string) (*Retention, error) {
	return nil, nil
}
