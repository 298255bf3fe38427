// Package storage keeps collabd's documents durable: per document an op log
// keyed by revision, snapshots of the full text every so many revisions, a
// head slot that keeps one more (the newest, replaced by each new one) and
// metadata, in one embedded bbolt file, with a write-ahead journal in front
// of it (see docs/architecture.md for the layout).
//
// # Concurrency contract
//
// A Store is safe for concurrent use by any number of goroutines. Readers
// (Load, Records, History, TextAt, Diff, List, Backup, Check) run in
// parallel, each in its own read transaction, and see a consistent state
// that includes every Commit that returned before they started. Commit is
// the only write path and Commits are serialized, so callers are expected to
// group many documents' records into one Commit (collab's committer does);
// Commit returns only after the batch is durable (unless Options.NoSync). No
// byte slice handed out by bbolt outlives its transaction: every value
// returned is a copy, and Commit copies what it keeps of its argument (the
// caller may reuse its slices at once).
//
// Named versions (PutVersion, RenameVersion, DeleteVersion), folds (Fold,
// FoldAll) and retention policies (SetRetention) are rare writes that
// bypass the journal: each is a synced bbolt transaction after the
// document's pending frames are checkpointed. CompactOnline may run at any
// time: checkpoints and those writes wait for its copy, commits go on into
// the journal, reads go on until the file is swapped.
//
// Bolt runs one background goroutine (journal checkpoints and spare
// segments), stopped by Close. Close waits for the Commit in flight,
// checkpoints and closes the files; it is idempotent.
//
// # Durability
//
// With the journal (the default), a Commit is validated against the
// logical state (bbolt plus the frames not yet checkpointed), encoded as one
// frame, written with one pwrite into a zero-filled or recycled segment and
// fdatasynced. Checkpoints apply many frames in one bbolt transaction in the
// background and record the newest frame's LSN in it; a read of a document
// with frames not yet checkpointed (and List, Backup, Check) checkpoints
// first. OpenBolt replays the frames after the checkpoint LSN, stopping at
// the first torn, zero or foreign frame, then starts a new epoch so that
// no frame already on disk can be replayed again. A read-only open refuses
// with ErrJournalPending when there is something to replay. A failed
// journal write or sync fails that Commit and every later one.
//
// bbolt writes a transaction's pages, fsyncs, then writes one of its two
// meta pages and fsyncs again. A crash (or a torn write) before the second
// fsync completes leaves the previous meta page, whose checksum is valid,
// describing the previous transaction: the file reopens at the last
// committed state without repair (with the journal: at the last checkpoint,
// and the journal replays the rest). Bytes beyond the pages a meta page
// references are ignored. Options.NoJournal commits straight into bbolt.
package storage
