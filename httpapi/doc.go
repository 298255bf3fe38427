// Package httpapi is collabd's HTTP API for scripts and operators, over a
// collab.Hub:
//
//	GET    /api/docs                          {"docs":[{id, rev, created, updated}]}, newest update first
//	GET    /api/docs/{id}                     {"id", "rev", "text"}; ETag: "<rev>"
//	PUT    /api/docs/{id}                     body: the full new text; If-Match: <rev> (required) -> {"rev"}
//	DELETE /api/docs/{id}                     204
//	GET    /api/docs/{id}/history?before=&limit=   {"revs":[{rev, client, user, time, ins, del}]}, newest first
//	GET    /api/docs/{id}/revisions/{rev}     {"rev", "text"}
//	GET    /api/docs/{id}/diff?from=&to=      {"diffs":[[op, text]...]}
//	POST   /api/docs/{id}/ops             {"rev", "op", "client"?, "seq"?} -> {"rev"}
//	POST   /api/docs/{id}/append          {"text", "rev"?, "client"?, "seq"?} -> {"rev"}
//	GET    /api/backup                        a consistent copy of the bbolt file
//	GET    /healthz                           200 "ok" while the process serves
//	GET    /readyz                            200 when ready, 503 otherwise (Config.Ready)
//
// A PUT is turned into an op: the server diffs the text at the If-Match
// revision against the body and submits the op with that base revision, so
// edits made concurrently over Socket.IO are transformed, not lost. A PUT
// with an Idempotency-Key header submits under a client id derived from the
// key, so repeating the same request (same key, same If-Match) is applied at
// most once.
//
// Errors are JSON {"error":{"code","message"}} with the codes of the wire
// contract (bad_request 400, unauthorized 401, forbidden 403, not_found 404,
// conflict 409, too_large 413, rate_limited 429, internal 500); a PUT without
// If-Match gets 428 with code bad_request.
//
// With Config.Auth set, every /api request needs "Authorization: Bearer
// <token>" (package auth); reads need view access to the document, PUT, POST and
// DELETE edit access, the listing shows only the documents the token may
// view, and a backup needs view access to every stored document.
//
// # Concurrency
//
// An API is an http.Handler safe for concurrent use; every request works on
// its own, against the Hub's goroutine-safe methods. It starts no goroutines.
package httpapi
