// Package sioclient is a minimal Socket.IO v5 client over the Engine.IO v4
// WebSocket transport, written for the load program: it connects directly
// over WebSocket (no polling, no upgrade), joins one namespace, answers the
// server's pings, emits events (with or without an acknowledgement) and hands
// every incoming EVENT to a callback. Binary attachments are not supported:
// a binary packet from the server is reported as an error.
//
// Concurrency: a Client owns one reader goroutine, started by Dial, which is
// the only goroutine reading the connection and the only one calling the
// OnEvent callback and ack callbacks (so they must not block for long, or the
// server will see a slow reader, which is what the load program wants when it
// asks for one). Emit, EmitAck and Close are safe for concurrent use; writes
// are serialized by a mutex. Done is closed once the reader goroutine has
// returned; Err then says why.
package sioclient
