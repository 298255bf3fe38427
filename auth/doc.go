// Package auth mints and verifies collabd's access tokens: HS256 JSON Web
// Tokens whose claims name a user and the documents that user may view or
// edit.
//
// # Token format
//
// A token is a compact JWT signed with HMAC-SHA256 and the server's secret.
// Its claims:
//
//	sub   the user name shown to the other editors (1 to 64 code points)
//	iat   issue time (seconds since the epoch)
//	exp   expiry (optional; a token without exp never expires)
//	edit  document id patterns the user may edit (and view)
//	view  document id patterns the user may view
//
// A pattern uses the syntax of path.Match over the document id: "*" matches
// every document, "team-*" every id starting with "team-", "notes.2026" that
// one document. Edit implies view.
//
// # Concurrency
//
// An Authority is immutable after New: Mint and Verify are safe for concurrent
// use. Claims values are plain data; Claims.Level is safe for concurrent use
// as long as nobody modifies the claims.
package auth
