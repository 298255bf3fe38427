// Package engineio is an Engine.IO protocol v4 server: the transport layer
// under Socket.IO. It speaks HTTP long-polling and WebSocket (gorilla), the
// upgrade from polling to WebSocket, heartbeats, and the polling payload
// codec.
//
// A Server is an http.Handler. Each client session is a *Conn, announced to
// Config.OnConnection; the application sets Conn.OnMessage and Conn.OnClose
// there and sends with Conn.Send (or Conn.TrySend for droppable messages). A
// Message is immutable and encodes each wire form once, so one Message can be
// sent to many connections.
//
// # Concurrency contract
//
//   - Server and Conn methods are safe for concurrent use from any goroutine.
//     Send and TrySend never block: they append to a bounded per-connection
//     queue (Config.WriteQueueSize messages). Send closes a connection whose
//     queue is full ("transport error", cause ErrQueueFull); TrySend drops.
//   - Config.OnConnection runs on the handshake request's goroutine, before
//     the session's first message is delivered and before its first ping.
//     OnMessage and OnClose must be set inside it and not changed later.
//   - OnMessage calls of one connection never overlap and arrive in order.
//     They run on the goroutine reading that connection: the WebSocket
//     reader, or the HTTP handler of a polling POST. The data slice is only
//     valid during the call (it is reused): copy what you keep. While
//     OnMessage runs, the connection reads nothing more, so it must not block
//     for long; it may call Send, TrySend and Close.
//   - OnClose is called exactly once, on the goroutine that closed the
//     session: the caller of Close, the reader that saw the failure, the
//     heartbeat timer, or a polling request. It may run while an OnMessage
//     call of the same connection is still running (for example a ping
//     timeout), but no OnMessage call starts after the session is closed. It
//     must not block.
//   - Each WebSocket has exactly one reader goroutine and at most one writer
//     goroutine; the writer is started when there is something to send and
//     exits when the queue is empty, so an idle connection costs one parked
//     goroutine, a small read buffer and one timer. Nobody else writes to the
//     socket. Long-polling sessions own no goroutine while idle.
//   - Heartbeats use one runtime timer per connection (time.AfterFunc), no
//     goroutine: pings every PingInterval from the handshake on; any received
//     packet counts as a sign of life; a session silent for
//     PingInterval+PingTimeout is closed with reason "ping timeout".
//   - Server.Shutdown closes every session ("server shutting down"), flushes
//     what was queued to WebSockets (bounded by a 10s write deadline) and
//     waits for every goroutine of the engine.
//
// Close reasons the engine reports: "transport close" (the client went away,
// sent a close packet, or closed its WebSocket), "transport error" (I/O error,
// full queue, oversized payload, overlapping polls), "ping timeout", "parse
// error" (undecodable packet), and any reason given to Conn.Close.
package engineio
