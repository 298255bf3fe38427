// Package session is the glue between the Socket.IO server (package sockets)
// and the document sequencer (collab.Hub): it implements the events of the
// collabd wire contract (docs/protocol.md) on the namespace "/".
//
// A document is the room "doc:<id>". A socket joins documents with doc:join,
// submits ops with doc:op, shares its selection with doc:presence, leaves with
// doc:leave, and reads history with doc:history, doc:revision and doc:diff;
// doc:restore makes an old revision current again. The server sends doc:op
// (the records of the other members' ops), doc:presence and doc:member, and
// doc:versions:changed when a named version changed (versions.go).
//
// # Ordering
//
// The Service holds one hub subscription per document that has members. The
// hub calls it on its committer goroutine, once per committed record, in
// revision order, before the Submit of that record returns. From that one
// ordered path the Service sends the record to every member but its author
// and, when the author is waiting on this connection, the author's ack (an op
// handler registers its pending ack keyed by (client, seq) before it calls
// Submit). Every member therefore sees a document's records in revision order,
// and an author's ack for revision N comes after every broadcast below N and
// before any above it. Each member remembers the last revision it was sent,
// so that a record is never sent twice and, together with the join protocol
// (become a member, then read the state, then flush what arrived meanwhile),
// never skipped.
//
// # Tokens over time
//
// An Identity may expire (Identity.Expires) or be revoked (Identity.Check,
// run by Service.Revalidate): the socket then gets auth:expired, its
// memberships end, and every event but doc:leave and auth:refresh is
// answered forbidden. auth:refresh {token} replaces the identity on the open
// connection (Config.Authenticate verifies it); memberships and pending
// acks go on. The expiry timer runs on its own goroutine (time.AfterFunc).
//
// # Cluster
//
// With Config.Peers (NATSPeers on core NATS), the members of a document on
// other nodes are shown to local members like local ones: the node watches
// a document's peer events while it has local members of it, asks the
// other nodes for their members when it starts, publishes its own members'
// joins, leaves and presence and the changes of named versions made on it
// (the others tell their members with doc:versions:changed), and forgets
// the members of a node that says goodbye or misses its heartbeats. Remote
// members are not persisted and count toward no limit. Without Peers none
// of this runs.
//
// # Concurrency contract
//
// Attach registers namespace-level handlers; they run on each connection's
// reader goroutine, one at a time per connection. Handlers that wait for the
// disk (doc:restore, doc:history, doc:revision, doc:diff) hand the work to a
// goroutine and answer the ack from there; doc:join, doc:presence and
// doc:leave are answered on the reader goroutine. doc:op is sequenced on the
// reader goroutine (collab.Hub.SubmitAsync, which reads the store only for an
// op older than the hub's in-memory log) and acknowledged from the hub's
// committer goroutine (by the subscription callback, or by the SubmitAsync
// callback for a resubmission), so no goroutine waits for a commit; an error
// ack is sent from a goroutine of its own. Sends never block (package
// sockets queues them and disconnects a client too slow to read them).
//
// Locks, outermost first: Service.mu (the table of documents), then a
// document's mu (its members and pending acks), then a socket's mu (its
// documents, identity and access). Service.connMu (the sockets Revalidate
// walks) is taken alone. No lock is held while calling into the hub, except a
// document's subMu, which only serializes Subscribe and Cancel of that
// document and is never taken by the subscription callback. The callback takes
// only the document's mu, which no goroutine holds while waiting for the hub.
// Peers.Publish is called with a document's mu held (a version change, not
// ordered with members' events, without it) and never blocks; the events of
// other nodes arrive on the bus's goroutines and take only the document's
// mu.
//
// Every exported method of Service is safe for concurrent use.
//
// # Failure
//
// Every client payload is validated field by field before it reaches the hub;
// a bad one is answered {ok:false, error:{code, message}} (or, for an event
// sent without an ack, only logged) and changes nothing. A handler that panics
// anyway recovers, logs the panic and answers internal.
package session
