package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/collabd/collabd/ot"
)

// Sentinel errors. Callers test them with errors.Is; the wrapped messages add
// the document id or revision.
var (
	// ErrNotFound: the document does not exist or the revision is beyond its head.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a write does not continue the stored log (its first revision
	// is not head+1), or a snapshot lies beyond the head.
	ErrConflict = errors.New("storage: write does not continue the log")
	// ErrInvalid: a write or a query is malformed (bad id, empty records, ...).
	ErrInvalid = errors.New("storage: invalid request")
	// ErrCorrupt: stored bytes do not decode or break an invariant.
	ErrCorrupt = errors.New("storage: corrupt data")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("storage: store closed")
	// ErrGone: the revision was folded by the retention policy: neither
	// its op nor (unless a named version keeps it) its text is stored any
	// more. The error is a *GoneError, which says the earliest revision
	// still available.
	ErrGone = errors.New("storage: revision folded by the retention policy")
	// ErrUnavailable: a store shared over the network (JetStream) cannot
	// be reached now. Nothing was written by the failing call unless its
	// error says the outcome is unknown; retrying later is safe.
	ErrUnavailable = errors.New("storage: unavailable")
)

// GoneError is ErrGone with the revision asked for and the earliest one
// still available (the document's fold horizon: its text is kept, the
// ops after it too).
type GoneError struct {
	Doc      string
	Rev      uint64
	Earliest uint64
}

func (e *GoneError) Error() string {
	return fmt.Sprintf("storage: %q revision %d was folded by the retention policy; the earliest revision available is %d", e.Doc, e.Rev, e.Earliest)
}

// Is makes errors.Is(err, ErrGone) true.
func (e *GoneError) Is(target error) bool { return target == ErrGone }

// Record is one entry of a document's op log: the op that produced revision
// Rev, who sent it and when. Op is the normalized JSON form of the op.
type Record struct {
	Rev    uint64          `json:"rev"`
	Op     json.RawMessage `json:"op"`
	Client string          `json:"client"`
	Seq    uint64          `json:"seq"`
	User   string          `json:"user"`
	Time   time.Time       `json:"time"`
	// Ins and Del count the code points the op inserted and deleted; they
	// are stored so that history pages need not parse ops.
	Ins int `json:"-"`
	Del int `json:"-"`
}

// Revision is one line of a document's history. A folded range (the
// revisions the retention policy folded into a snapshot) is one line with
// Folded set: revisions From to Rev; its Time is that of revision Rev's
// op when known, and Client, User, Ins and Del are empty.
type Revision struct {
	Rev    uint64    `json:"rev"`
	Client string    `json:"client"`
	User   string    `json:"user"`
	Time   time.Time `json:"time"`
	Ins    int       `json:"ins"`
	Del    int       `json:"del"`
	Folded bool      `json:"folded,omitempty"`
	From   uint64    `json:"from,omitempty"`
}

// Snapshot is the full text of a document at revision Rev.
type Snapshot struct {
	Rev  uint64
	Text string
}

// Meta is the per-document metadata.
type Meta struct {
	Head    uint64    // revision of the newest record; 0 for an empty log
	Created time.Time // time of the first write
	Updated time.Time // time of the newest write
	// SnapRev is the revision of the newest snapshot, regular or in the
	// head slot; 0 when there is none. The slot, when full, holds it.
	SnapRev uint64
	// Folded is the fold horizon: the ops of revisions 1 to Folded were
	// folded into the snapshot at Folded by the retention policy (0: none).
	Folded uint64
	// FoldedTime is the time of revision Folded's op, kept when it was
	// folded (zero when nothing is folded, or when it was folded by a
	// version that did not keep it).
	FoldedTime time.Time
}

// DocInfo is one line of a document listing.
type DocInfo struct {
	ID string `json:"id"`
	Meta
}

// State is what a sequencer needs to bring a document to life: its metadata,
// the newest snapshot and the records after it (and possibly a few before it,
// for the retained resubmission log).
type State struct {
	Meta Meta
	// Snapshot is the newest snapshot, regular or the head slot's (Rev 0
	// and empty text when there is none).
	Snapshot Snapshot
	// Records are contiguous, ascending, end at Meta.Head and start at or
	// below Snapshot.Rev+1.
	Records []Record
}

// Write is the part of a batch that concerns one document. At most one Write
// per document may appear in a batch.
type Write struct {
	Doc string
	// Records to append: ascending, contiguous, Records[0].Rev == head+1.
	Records []Record
	// Snapshot to store for good, at or below the head after Records are
	// appended: one of the history's regular snapshots, from which TextAt
	// and Diff rebuild old revisions (the sequencer writes one every
	// SnapshotEvery revisions). Only the retention policy deletes it.
	Snapshot *Snapshot
	// HeadSnapshot goes into the document's head slot, which holds at most
	// one snapshot: the newest text that saves an open its replay (the
	// sequencer's snapshots between the regular ones, and the final one of
	// an eviction or a close). It replaces the slot's snapshot in the same
	// commit. One at or below the newest snapshot of either kind may be
	// ignored (it would save nothing); reads start from the newest
	// snapshot of either kind at or below the revision they need (Bolt
	// also empties the slot once a regular snapshot reaches it). Bounds
	// as Snapshot.
	HeadSnapshot *Snapshot
	// Delete removes the document with its log, snapshots and named
	// versions. It excludes Records and both snapshots.
	Delete bool
}

// Store is the durable home of every document. Implementations are safe for
// concurrent use. Commit is the one write path: it applies every Write of a
// batch atomically, all or nothing, and returns once it is durable.
type Store interface {
	// Commit applies writes atomically and returns once they survive a
	// crash (Bolt: one journal append and one fdatasync). On error no
	// reader sees any of the batch; after an I/O error the batch may
	// still have reached the disk and come back at the next open, so its
	// outcome is unknown.
	Commit(ctx context.Context, writes []Write) error
	// Load returns the state of doc, with at least keep records before the
	// head when the log has them. A document that was never written
	// returns an empty State and no error.
	Load(ctx context.Context, doc string, keep int) (State, error)
	// Meta returns the metadata of doc, ErrNotFound when it does not exist.
	Meta(ctx context.Context, doc string) (Meta, error)
	// Records returns up to limit records with revision > after, ascending.
	Records(ctx context.Context, doc string, after uint64, limit int) ([]Record, error)
	// History returns up to limit revisions below before (0: from the head),
	// newest first.
	History(ctx context.Context, doc string, before uint64, limit int) ([]Revision, error)
	// TextAt returns the text of doc at revision rev (0 is the empty text).
	TextAt(ctx context.Context, doc string, rev uint64) (string, error)
	// Diff compares the texts at revisions from and to.
	Diff(ctx context.Context, doc string, from, to uint64) ([]ot.Diff, error)
	// List returns every stored document, ordered by id.
	List(ctx context.Context) ([]DocInfo, error)
	// Backup writes a consistent copy of the whole store to w while it
	// stays online and returns the number of bytes written.
	Backup(ctx context.Context, w io.Writer) (int64, error)
	// PutVersion names revision v.Rev of doc v.Name (ErrExists when the
	// name is taken) and keeps the full text at that revision with it,
	// durably, before it returns.
	PutVersion(ctx context.Context, doc string, v Version) error
	// RenameVersion renames doc's version from to to.
	RenameVersion(ctx context.Context, doc, from, to string) (Version, error)
	// DeleteVersion removes doc's version name.
	DeleteVersion(ctx context.Context, doc, name string) error
	// Versions lists doc's named versions, newest revision first.
	Versions(ctx context.Context, doc string) ([]Version, error)
	// VersionText returns doc's version name and the text it keeps.
	VersionText(ctx context.Context, doc, name string) (Version, string, error)
	// Fold applies a retention policy to doc: the ops it lets go are
	// folded into a snapshot at the new horizon, which it returns.
	Fold(ctx context.Context, doc string, p Retention, now time.Time) (uint64, error)
	// FoldAll folds every document by its own policy or def and returns
	// how many revisions it folded.
	FoldAll(ctx context.Context, def Retention, now time.Time) (uint64, error)
	// SetRetention stores doc's own policy (nil: the server's again).
	SetRetention(ctx context.Context, doc string, p *Retention) error
	// DocRetention returns doc's own policy, nil when it has none.
	DocRetention(ctx context.Context, doc string) (*Retention, error)
	// Check verifies the file and every document's invariants.
	Check(ctx context.Context) error
	// Close releases the store. It is idempotent.
	Close() error
}

// Follower is implemented by stores that several nodes share (JetStream):
// it feeds a node the records every node appends, so that the node's live
// documents keep up with the others' edits.
type Follower interface {
	// Follow calls fn with the records appended to any document from now
	// on, per document in revision order (records of one append together),
	// on one goroutine, until stop is called or ctx ends. Records appended
	// by this process come back too. fn must not block for long. A record
	// may arrive twice (after a reconnection); a record missed while the
	// feed was broken is never skipped silently: the feed resumes where it
	// stopped. After stop returns fn is not called again.
	Follow(ctx context.Context, fn func(doc string, recs []Record)) (stop func(), err error)
}

// validateWrites checks what a batch needs no stored state for, for every
// Store: valid ids, one write per document, contiguous records with ops,
// deletes without records.
func validateWrites(writes []Write) error {
	var seen map[string]struct{}
	if len(writes) > 1 {
		seen = make(map[string]struct{}, len(writes))
	}
	for i := range writes {
		w := &writes[i]
		if err := validDoc(w.Doc); err != nil {
			return err
		}
		if seen != nil {
			if _, dup := seen[w.Doc]; dup {
				return fmt.Errorf("%w: two writes for %q in one batch", ErrInvalid, w.Doc)
			}
			seen[w.Doc] = struct{}{}
		}
		if w.Delete && (len(w.Records) > 0 || w.Snapshot != nil || w.HeadSnapshot != nil) {
			return fmt.Errorf("%w: delete of %q carries records", ErrInvalid, w.Doc)
		}
		for j := range w.Records {
			r := &w.Records[j]
			if j > 0 && r.Rev != w.Records[j-1].Rev+1 {
				return fmt.Errorf("%w: %q records not contiguous at %d", ErrInvalid, w.Doc, r.Rev)
			}
			if len(r.Op) == 0 {
				return fmt.Errorf("%w: %q record %d has no op", ErrInvalid, w.Doc, r.Rev)
			}
		}
	}
	return nil
}
