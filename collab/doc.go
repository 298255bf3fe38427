// Package collab sequences the edits of collabd's documents: one ordered,
// durable op log per document, with server-side operational transformation
// (package ot) and bbolt storage (package storage).
//
// # Concurrency contract
//
// Every exported method of Hub is safe for concurrent use. Each live
// document has its own mutex, which is its sequencer: an op is transformed,
// validated, applied and given the next revision with that mutex held, so
// the ops of one document are totally ordered while different documents
// never wait for each other. The table of live documents is sharded behind
// read-write mutexes.
//
// A single committer goroutine is the write path. It takes every record
// sequenced since its last commit, across all documents, and stores them
// with one Store.Commit (with storage.Bolt: one journal append and one
// fdatasync). While it commits, documents keep sequencing the next batch in
// memory. Submit returns only after its record is durable; SubmitAsync
// sequences on the caller's goroutine and reports the outcome to a callback
// instead of waiting. If a commit fails, every submission of that batch (and
// every op sequenced on top of it) fails with code internal and each
// document rolls back to its last committed state, in memory as on disk.
//
// Readers (Text, Records, Subscribe, History, TextAt, Diff) only ever see
// committed revisions.
//
// Subscribe callbacks run on the committer goroutine, after the commit and
// before the Submits of those records return, one document's records in
// revision order. They must not block, panic or call into the Hub: copy the
// record into a bounded queue and return. Config.ObserveCommit runs on the
// same goroutine, once per successful commit, before the subscribers of
// that batch; the same rules apply to it. So do the callbacks of
// SubmitAsync that learn the outcome of a commit: they run on the committer
// goroutine after the subscribers of their batch.
//
// Documents load lazily on first use (newest snapshot plus the ops after
// it), stay in memory while used or subscribed, and are evicted after
// Config.IdleTimeout with a final snapshot. Close stops accepting work,
// waits for the commits in flight and writes final snapshots. Snapshots on
// multiples of Config.SnapshotEvery are kept with the history; the others
// (for the replay cost, and the final ones) go into the document's head
// slot in the store, which keeps only the newest.
//
// Errors returned to callers are *Error values with a code of the wire
// contract (internal/contract: bad_request, not_found, too_large, conflict,
// gone, unavailable, internal), or the caller's context error.
//
// # Cluster mode
//
// When Config.Store implements storage.Follower (storage.JetStream), the
// hub is one node of several sharing the store (cluster.go). The store's
// per-document compare-and-set orders the appends of all nodes; other
// nodes' records come in through the store's feed (or a catch-up read)
// and reach the subscribers like local ones, in revision order. An append
// that lost the race has its ops sequenced again over the records that
// won, with the exactly-once rule, and their callbacks follow them. A
// blocking Submit therefore waits on its own callback, not on its batch.
package collab
