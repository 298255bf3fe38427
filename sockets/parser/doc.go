// Package parser encodes and decodes Socket.IO protocol v5 packets.
//
// A packet travels as one Engine.IO text message (the header and the JSON payload) followed,
// for BINARY_EVENT and BINARY_ACK, by one Engine.IO binary message per attachment. Binary values
// inside the payload are replaced by placeholders {"_placeholder":true,"num":N} that point at
// the N-th attachment.
//
// JSON produced by this package is compact, does not escape <, > and &, and keeps numbers as
// they came: raw arguments are carried as json.RawMessage and never re-encoded.
//
// Concurrency: Packet values are plain data; share them read-only. Encode, Decode and
// MarshalArgs are safe for concurrent use. A Decoder holds the state of one stream (a packet
// waiting for its attachments) and must be used by one goroutine at a time.
package parser
