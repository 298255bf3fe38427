package contract

import (
	"unicode"
	"unicode/utf8"
)

// Code is a stable, machine-readable error code: the "code" of an ack's
// error ({"ok": false, "error": {"code", "message"}}) and of an HTTP API
// error ({"error": {"code", "message"}}). The message is for humans and may
// change; the code does not.
type Code string

// The error codes. docs/protocol.md says which request gets which.
const (
	CodeBadRequest  Code = "bad_request"  // a malformed payload or op, a bad id, an unknown event
	CodeNotFound    Code = "not_found"    // a revision beyond the head, a document being deleted
	CodeForbidden   Code = "forbidden"    // no access, a viewer's edit, an event about a document not joined
	CodeTooLarge    Code = "too_large"    // an op, text, selection or membership over its limit
	CodeRateLimited Code = "rate_limited" // more requests than the per-socket rate allows
	CodeConflict    Code = "conflict"     // a base revision ahead of the head or too far behind it
	CodeInternal    Code = "internal"     // a storage failure or shutdown: the outcome is unknown
	// CodeGone refuses a revision the retention policy folded: its text
	// (unless a named version keeps it), its diff, an op based on it, a
	// resubmission that cannot be checked any more. The error carries
	// "earliest", the earliest revision still available.
	CodeGone Code = "gone"
	// CodeUnauthorized refuses a missing or invalid token: in a Socket.IO
	// CONNECT error's data, in an HTTP 401, and in the ack of an
	// auth:refresh whose token is refused (no other ack carries it).
	CodeUnauthorized Code = "unauthorized"
	// CodeUnavailable refuses a request the node cannot serve now because
	// the storage it shares with other nodes (NATS JetStream) is
	// unreachable. An op answered with it was not acknowledged and may or
	// may not be stored: resend it (same client and seq), it is applied
	// once.
	CodeUnavailable Code = "unavailable"
)

// Codes returns every code, in the order of the constants.
func Codes() []Code {
	return []Code{CodeBadRequest, CodeNotFound, CodeForbidden, CodeTooLarge, CodeRateLimited,
		CodeConflict, CodeInternal, CodeUnauthorized, CodeGone, CodeUnavailable}
}

// HTTPStatus is the status of an HTTP API answer with code c; an unknown
// code is 500, like internal. (Numbers, not net/http's names: this leaf
// does not link net/http into every importer.) The API answers a few requests with another
// status than their code's (428 for a PUT without If-Match, 405 for a known
// path with another method, both bad_request).
func (c Code) HTTPStatus() int {
	switch c {
	case CodeBadRequest:
		return 400 // http.StatusBadRequest
	case CodeUnauthorized:
		return 401 // http.StatusUnauthorized
	case CodeForbidden:
		return 403 // http.StatusForbidden
	case CodeNotFound:
		return 404 // http.StatusNotFound
	case CodeConflict:
		return 409 // http.StatusConflict
	case CodeGone:
		return 410 // http.StatusGone
	case CodeTooLarge:
		return 413 // http.StatusRequestEntityTooLarge
	case CodeRateLimited:
		return 429 // http.StatusTooManyRequests
	case CodeUnavailable:
		return 503 // http.StatusServiceUnavailable
	}
	return 500 // http.StatusInternalServerError
}

// Limits of payload fields. Byte counts are of UTF-8.
const (
	// MaxDocIDLen is the longest document id: 1 to MaxDocIDLen characters
	// of DocIDChars (ASCII, so characters are bytes).
	MaxDocIDLen = 128
	// DocIDChars are the characters of a document id, as the body of a
	// regular expression's character class. They never include the zero
	// byte, which the store's keys use as the separator after the id.
	DocIDChars = "A-Za-z0-9._~-"
	// DocIDRule says what a document id is, for error messages.
	DocIDRule = "1 to 128 characters of " + DocIDChars

	// MaxClientIDBytes is the longest client id (doc:join, doc:op), in
	// bytes; at least one.
	MaxClientIDBytes = 128

	// MaxUserNameRunes is the longest user name, in code points.
	MaxUserNameRunes = 64
	// MaxUserNameBytes is the most bytes a name of MaxUserNameRunes code
	// points takes: the bound of code that counts bytes instead.
	MaxUserNameBytes = MaxUserNameRunes * utf8.UTFMax

	// MaxSelections is the most ranges one doc:presence carries.
	MaxSelections = 100

	// DefaultHistoryLimit is the page size of doc:history and GET
	// /api/docs/{id}/history without a limit; MaxHistoryLimit is the
	// largest (doc:history lowers a larger limit to it, HTTP refuses it).
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 500

	// MaxResumeRecords is the most records a resuming doc:join ack
	// carries; a client further behind gets the text instead.
	MaxResumeRecords = 1000

	// MaxVersionNameRunes is the longest name of a named version, in code
	// points (ValidVersionName).
	MaxVersionNameRunes = 100

	// MaxInteger is the largest integer a payload may hold (revisions,
	// seqs, positions): JavaScript's largest exact integer, 2^53-1.
	MaxInteger = 1<<53 - 1
)

// ValidDocID reports whether id is a document id: 1 to MaxDocIDLen
// characters of DocIDChars.
func ValidDocID(id string) bool {
	if len(id) == 0 || len(id) > MaxDocIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '_' || c == '~' || c == '-':
		default:
			return false
		}
	}
	return true
}

// VersionNameRule says what a version name is, for error messages.
const VersionNameRule = "1 to 100 code points of valid UTF-8, no control characters, not only spaces"

// ValidVersionName reports whether name may name a version: 1 to
// MaxVersionNameRunes code points of valid UTF-8, no control characters
// (the zero byte included) and not only white space.
func ValidVersionName(name string) bool {
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxVersionNameRunes {
		return false
	}
	blank := true
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
		if !unicode.IsSpace(r) {
			blank = false
		}
	}
	return !blank
}
