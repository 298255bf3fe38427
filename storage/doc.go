// Package storage keeps collabd's documents durable: per document an op log
// keyed by revision, snapshots of the full text every so many revisions and
// metadata, in one embedded bbolt file (see docs/architecture.md for the
// layout).
//
// # Concurrency contract
//
// A Store is safe for concurrent use by any number of goroutines. Readers
// (Load, Records, History, TextAt, Diff, List, Backup, Check) run in
// parallel, each in its own read transaction, and see a consistent state.
// Commit is the only write path: bbolt admits one writer at a time, and an
// fsync costs milliseconds, so callers are expected to group many
// documents' records into one Commit (collab's committer does); Commit
// returns only after the transaction is durable (unless Options.NoSync).
// No byte slice handed out by bbolt outlives its transaction: every value
// returned is a copy.
//
// # Durability
//
// bbolt writes the pages of a transaction, fsyncs, then writes one of its
// two meta pages and fsyncs again. A crash (or a torn write) before the
// second fsync completes leaves the previous meta page, whose checksum is
// valid, describing the previous transaction: the file reopens at the last
// committed state without repair. Bytes beyond the pages a meta page
// references are ignored.
package storage
