package engineio

import (
	"errors"
	"net/http"
)

// Sentinel errors.
var (
	// ErrClosed is returned by Send and TrySend once the connection is closed.
	ErrClosed = errors.New("engineio: connection closed")
	// ErrQueueFull means the connection's outgoing queue held more than
	// Config.WriteQueueBytes. Send closes the connection with a cause that
	// wraps it; TrySend drops the messages and keeps the connection.
	ErrQueueFull = errors.New("engineio: write queue full")
	// ErrParse means an incoming packet or payload could not be decoded.
	ErrParse = errors.New("engineio: malformed packet")
	// ErrPayloadTooLarge means an incoming HTTP body or WebSocket message was
	// larger than Config.MaxPayload.
	ErrPayloadTooLarge = errors.New("engineio: payload too large")
	// ErrDuplicatePoll means a client sent a second long-polling GET while
	// one was still pending.
	ErrDuplicatePoll = errors.New("engineio: overlapping polling requests")
)

// Engine.IO HTTP error codes, sent as {"code":N,"message":"..."} with 400.
const (
	codeUnknownTransport = 0
	codeUnknownSID       = 1
	codeBadHandshake     = 2
	codeBadRequest       = 3
	codeForbidden        = 4
	codeUnsupportedProto = 5
)

// errorBodies are the exact JSON bodies of the protocol errors.
var errorBodies = map[int]string{
	codeUnknownTransport: `{"code":0,"message":"Transport unknown"}`,
	codeUnknownSID:       `{"code":1,"message":"Session ID unknown"}`,
	codeBadHandshake:     `{"code":2,"message":"Bad handshake method"}`,
	codeBadRequest:       `{"code":3,"message":"Bad request"}`,
	codeForbidden:        `{"code":4,"message":"Forbidden"}`,
	codeUnsupportedProto: `{"code":5,"message":"Unsupported protocol version"}`,
}

// writeError answers with the protocol error code (400, or 403 for
// codeForbidden).
func writeError(w http.ResponseWriter, code int) {
	status := http.StatusBadRequest
	if code == codeForbidden {
		status = http.StatusForbidden
	}
	body := errorBodies[code]
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
