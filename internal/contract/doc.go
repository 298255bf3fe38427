// Package contract is the one table of collabd's wire contract
// (docs/protocol.md) that code checks: the error codes of acks and HTTP
// answers, with the HTTP status of each, and the limits of payload fields
// (document ids, client ids, user names, selections, history pages, resuming
// joins, integers).
//
// The hub (collab), the socket events (collab/session), the HTTP API
// (httpapi), the store's key layout (storage) and the commands use it, and
// so does the browser editor: frontend/src/app/contract.js is written from
// this table by go generate (./genjs), and a test of genjs fails when the
// committed file differs. A limit that a server flag configures (op and
// document sizes, rates, documents per socket) is not here: it belongs to
// the package that applies it.
//
// The package is a leaf: it imports only the standard library, so every
// layer may import it. Changing a value changes what clients see: change
// docs/protocol.md with it. Everything here is a constant or a pure
// function, safe for concurrent use.
package contract

//go:generate go run ./genjs ../../frontend/src/app/contract.js
