package ot

import "errors"

// Sentinel errors. Every error returned by this package matches ErrInvalid
// with errors.Is; the more specific ones match their own sentinel as well,
// so a caller can map ErrTooLarge to a "too_large" code before falling back
// to "bad_request" for ErrInvalid.
var (
	// ErrInvalid reports a malformed operation (or diff segment) or an
	// operation that does not fit the text it is applied to.
	ErrInvalid = errors.New("ot: invalid operation")
	// ErrTooLarge reports an operation over a size limit (bytes,
	// components or total length). It also matches ErrInvalid.
	ErrTooLarge = errors.New("ot: operation too large")
	// ErrOutOfRange reports an operation that consumes more code points
	// than the text has. It also matches ErrInvalid.
	ErrOutOfRange = errors.New("ot: operation out of range")
)

// opError carries a precise message and the sentinels it matches.
type opError struct {
	msg  string
	kind error // ErrInvalid, ErrTooLarge or ErrOutOfRange
}

func (e *opError) Error() string { return e.kind.Error() + ": " + e.msg }

func (e *opError) Unwrap() []error {
	if e.kind == ErrInvalid {
		return []error{ErrInvalid}
	}
	return []error{e.kind, ErrInvalid}
}

func invalidf(msg string) error   { return &opError{msg: msg, kind: ErrInvalid} }
func tooLarge(msg string) error   { return &opError{msg: msg, kind: ErrTooLarge} }
func outOfRange(msg string) error { return &opError{msg: msg, kind: ErrOutOfRange} }
