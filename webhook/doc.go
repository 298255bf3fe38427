// Package webhook tells other services about document changes: it POSTs
// signed JSON events to configured URLs after a document has been quiet
// for a debounce time (and at most every MaxWait while it keeps changing),
// and when a document is created, restored or deleted.
//
// # Delivery
//
// Each event goes to every URL, at least once: a delivery is stored in
// the data store's outbox (storage.Bolt.PutOutbox) before it is first
// tried and removed once a URL answered 2xx, so the deliveries pending at a
// shutdown or crash are sent after the restart. A failed attempt (an error,
// a timeout, a status other than 2xx) is retried with exponential backoff
// and full jitter, up to MaxAttempts. Deliveries to one URL leave in order,
// one at a time. Receivers de-duplicate on the Collabd-Delivery header (the
// event id).
//
// The outbox also keeps, per document, the newest revision a change event
// was queued for (its mark). New compares the marks with the documents'
// heads (Outbox.List) and queues events for the revisions a crash left
// unreported (those still inside their debounce), reading their authors
// from the log (Outbox.Records).
//
// The body is signed: Collabd-Signature: t=<unix seconds>,v1=<hex
// HMAC-SHA256 of "<t>.<body>" with the secret>; receivers check it and
// refuse old timestamps (replay). Sign and Verify implement it.
//
// # Bounds
//
// Nothing here ever slows editing: Committed (called on the hub's
// committer goroutine) only updates a small per-document summary under a
// mutex. Each URL's queue holds at most MaxQueue deliveries; beyond it the
// oldest change event is coalesced into a newer one of the same document
// (their revision ranges and authors merged), or dropped when the document
// has no newer one (counted in Stats.Dropped).
//
// # Concurrency
//
// A Notifier is safe for concurrent use. It runs one flusher goroutine and
// one sender goroutine per URL; Close stops them, writes the changes not
// yet sent into the outbox, and waits.
package webhook
