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
//     Send and TrySend never block: they append to a per-connection queue
//     bounded in bytes (Config.WriteQueueBytes), on both transports. Send
//     closes a connection whose queue went past the bound ("transport
//     error", a cause wrapping ErrQueueFull); TrySend drops. The other
//     connections, and the sender, are not affected.
//   - Config.OnConnection runs on the handshake request's goroutine, before
//     the session's first message is delivered and before its first ping.
//     OnMessage and OnClose must be set inside it and not changed later.
//   - OnMessage calls of one connection never overlap and arrive in order.
//     They run on the goroutine reading that connection: the WebSocket
//     reader (not always the same goroutine: see below), or the HTTP
//     handler of a polling POST. The data slice is only
//     valid during the call (it is reused): copy what you keep. While
//     OnMessage runs, the connection reads nothing more, so it must not block
//     for long; it may call Send, TrySend and Close.
//   - OnClose is called exactly once, on the goroutine that closed the
//     session: the caller of Close, the reader that saw the failure, the
//     heartbeat timer, or a polling request. It may run while an OnMessage
//     call of the same connection is still running (for example a ping
//     timeout), but no OnMessage call starts after the session is closed. It
//     must not block.
//   - Each WebSocket has at most one reader and at most one writer at any
//     time. The writer goroutine is started when there is something to send
//     and exits when the queue is empty; nobody else writes to the socket
//     but the reader, for the pong and close control frames it answers.
//     Every write carries whole frames in one Write or writev, which the
//     connection serializes, so frames never interleave. Long-polling
//     sessions own no goroutine while idle.
//   - gorilla/websocket performs the opening handshake; the engine reads
//     the client's frames itself (RFC 6455: masking, fragments, control
//     frames, the MaxPayload limit). By default, on Linux, a WebSocket's
//     reader runs only while its connection has bytes to read: an idle
//     connection is parked in the server's epoll poller (one goroutine per
//     Server) with no goroutine and no read buffer of its own, and a busy
//     one (its previous message less than a second ago) keeps its reader
//     waiting up to a second for the next message. OnMessage calls of one
//     WebSocket may therefore run on different goroutines over time, never
//     two at once. With Config.BlockingReads, over TLS and on other
//     systems, each WebSocket has one reader goroutine blocked in its read
//     for its whole life. Either way, every message that has reached the
//     server is handled without waiting for more bytes. The read path is
//     wsreader.go; docs/sockets.md gives its reasons and figures.
//   - Heartbeats use one runtime timer per connection (time.AfterFunc), no
//     goroutine: pings every PingInterval from the handshake on; any received
//     packet counts as a sign of life; a session silent for
//     PingInterval+PingTimeout is closed with reason "ping timeout".
//   - Server.Shutdown closes every session ("server shutting down"), flushes
//     what was queued to WebSockets (bounded by a 10s write deadline), keeps
//     a polling session without a pending GET for up to a second so that
//     its next GET collects the close packet, and waits for every goroutine
//     of the engine.
//
// # Upgrade
//
// A polling session upgrades as engine.io-client drives it: "2probe" on the
// new WebSocket is answered with "3probe", the pending GET is released with
// a noop ("6"), and the client's "5" switches the session to WebSocket; the
// queue is one and the same for both transports, so nothing queued is lost
// or reordered. A GET that arrives during an upgrade is answered according
// to what the client sent on the WebSocket before it: the GET first lets
// the probe's reader handle every byte the WebSocket has received (bounded
// by 100 ms), then it is refused (400) if that included "5", as the official
// test suite expects, or else answered with its packets or a noop (after a
// 20 ms settle, for a "5" still on its way on the other TCP connection). A
// second WebSocket for an upgraded or upgrading session is accepted and
// closed at once.
//
// # Requests
//
// Conn.Request is a compact copy of the handshake request: method, URL,
// headers (without the WebSocket handshake headers Upgrade, Connection and
// Sec-WebSocket-*), Host, RemoteAddr and TLS state; no body, no context.
// It is built on the first call from the few fields the session keeps.
//
// Close reasons the engine reports: "transport close" (the client went away,
// sent a close packet, or closed its WebSocket), "transport error" (I/O error,
// full queue, oversized payload, overlapping polls), "ping timeout", "parse
// error" (undecodable packet), and any reason given to Conn.Close.
//
// Conn.Close on a polling session delivers the queued messages in one GET
// and the close packet in the next (bounded by PingInterval+PingTimeout), as
// Node's server does: socket.io-client acts on a close packet before the
// messages decoded with it, which would cost it their recovery offsets.
// During Shutdown both go in one response, since no later GET is awaited;
// the HTTP server must keep serving until Shutdown returns.
package engineio
