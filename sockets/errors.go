package sockets

import "errors"

// Sentinel errors.
var (
	// ErrClosed is returned once the server, the socket or its connection is closed.
	ErrClosed = errors.New("sockets: closed")
	// ErrDisconnected is given to a pending acknowledgement whose socket disconnected.
	ErrDisconnected = errors.New("sockets: socket disconnected")
	// ErrAckTimeout is given to an acknowledgement that did not arrive in time.
	ErrAckTimeout = errors.New("sockets: acknowledgement timed out")
	// ErrReservedEvent is returned when emitting an event name the protocol reserves
	// (connect, connect_error, disconnect, disconnecting, newListener, removeListener).
	ErrReservedEvent = errors.New("sockets: reserved event name")
	// ErrMissingArg is returned by Decode when the event has fewer arguments than destinations.
	ErrMissingArg = errors.New("sockets: missing argument")
	// ErrAckUsed is returned by a second Ack.Reply, or a Reply on an event without ack id.
	ErrAckUsed = errors.New("sockets: acknowledgement not wanted or already sent")
	// ErrTooManyAttachments is returned when an emit would carry more than 10 binary values.
	ErrTooManyAttachments = errors.New("sockets: more than 10 binary attachments")
	// ErrEmptyArg is returned by Ack.ReplyRaw when an argument is empty (not a JSON value).
	ErrEmptyArg = errors.New("sockets: empty raw JSON argument")
)

// ConnectError is what a middleware returns to refuse a connection with a message and
// optional data: the client receives CONNECT_ERROR {"message": Message, "data": Data}.
// Any other error refuses with its Error() text as message and no data.
type ConnectError struct {
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *ConnectError) Error() string { return "sockets: connection refused: " + e.Message }
