package collab

import (
	"context"
	"errors"
	"fmt"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// ErrClosed is wrapped by the internal errors returned after Close.
var ErrClosed = errors.New("collab: hub closed")

// Error is the typed error every exported method of Hub returns (except for
// context errors, returned as they are). Code is one of the wire contract's
// codes the hub produces: bad_request, not_found, too_large, conflict
// (a base revision ahead of the head or more than Config.MaxBehind behind
// it), gone (a revision folded by the retention policy; Earliest says
// the earliest one available), unavailable (cluster mode: the shared
// store cannot be reached; resend) or internal. The socket layer and the HTTP
// API send Code and Message
// to clients as they are; Err, when set, is the underlying cause for logs.
type Error struct {
	Code    contract.Code
	Message string
	Err     error
	// Earliest is set with code gone: the earliest revision of the
	// document still available (its fold horizon).
	Earliest uint64
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("collab: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("collab: %s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the code of err: its *Error's code, or internal.
func CodeOf(err error) contract.Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return contract.CodeInternal
}

func newError(code contract.Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// opError maps an ot error to a typed error.
func opError(err error) error {
	if errors.Is(err, ot.ErrTooLarge) {
		return &Error{Code: contract.CodeTooLarge, Message: err.Error()}
	}
	return &Error{Code: contract.CodeBadRequest, Message: err.Error()}
}

// storeError maps a storage error to a typed error.
func storeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, storage.ErrNotFound):
		return &Error{Code: contract.CodeNotFound, Message: err.Error()}
	case errors.Is(err, storage.ErrGone):
		e := &Error{Code: contract.CodeGone, Message: "the revision was folded by the retention policy"}
		if g, ok := errors.AsType[*storage.GoneError](err); ok {
			e.Earliest = g.Earliest
			e.Message = fmt.Sprintf("revision %d was folded by the retention policy; the earliest revision available is %d", g.Rev, g.Earliest)
		}
		return e
	case errors.Is(err, storage.ErrExists):
		return &Error{Code: contract.CodeConflict, Message: err.Error()}
	case errors.Is(err, storage.ErrInvalid):
		return &Error{Code: contract.CodeBadRequest, Message: err.Error()}
	case errors.Is(err, storage.ErrUnavailable):
		return &Error{Code: contract.CodeUnavailable, Message: "the shared store is unreachable; retry", Err: err}
	}
	return &Error{Code: contract.CodeInternal, Message: "storage failure", Err: err}
}
