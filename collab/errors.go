package collab

import (
	"context"
	"errors"
	"fmt"

	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// Code is a stable, machine-readable error code. The socket layer sends it
// to clients as is.
type Code string

// Error codes of the wire contract that this package produces.
const (
	CodeBadRequest Code = "bad_request" // malformed op or request
	CodeNotFound   Code = "not_found"   // no such document or revision
	CodeTooLarge   Code = "too_large"   // op or resulting document over a limit
	CodeConflict   Code = "conflict"    // baseRev ahead of head or more than Config.MaxBehind behind it
	CodeInternal   Code = "internal"    // storage failure, shutdown
)

// ErrClosed is wrapped by the internal errors returned after Close.
var ErrClosed = errors.New("collab: hub closed")

// Error is the typed error every exported method of Hub returns (except for
// context errors, returned as they are). Message is safe to show to the
// client; Err, when set, is the underlying cause for logs.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("collab: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("collab: %s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the code of err: its *Error's code, or internal.
func CodeOf(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

func newError(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// opError maps an ot error to a typed error.
func opError(err error) error {
	if errors.Is(err, ot.ErrTooLarge) {
		return &Error{Code: CodeTooLarge, Message: err.Error()}
	}
	return &Error{Code: CodeBadRequest, Message: err.Error()}
}

// storeError maps a storage error to a typed error.
func storeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, storage.ErrNotFound):
		return &Error{Code: CodeNotFound, Message: err.Error()}
	case errors.Is(err, storage.ErrInvalid):
		return &Error{Code: CodeBadRequest, Message: err.Error()}
	}
	return &Error{Code: CodeInternal, Message: "storage failure", Err: err}
}
