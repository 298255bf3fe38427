// Package sockets is a Socket.IO v5 server (compatible with socket.io-client 4.x) on top of
// the Engine.IO v4 server in sockets/engineio.
//
// A Server is an http.Handler to mount at /socket.io/. Clients connect to namespaces (Of),
// pass their middlewares (Use), and become Sockets, which receive events through typed
// handlers (On, OnAny, Handle) and are sent events with Emit, EmitWithAck and the broadcast
// operators (To, In, Except, Local, Volatile, Broadcast). Rooms, broadcasts and the state kept
// for connection state recovery live in an Adapter, in memory by default; NewNATSAdapter
// shares broadcasts and socket operations between servers over NATS.
//
// # Concurrency contract
//
//   - Every exported method of Server, Namespace, Socket, BroadcastOperator, Ack and
//     RemoteSocket is safe for concurrent use from any goroutine.
//   - Middlewares, connection handlers (OnConnection) and event handlers (Socket.On,
//     Socket.OnAny, Namespace.On, Namespace.OnAny) run on
//     the reader of the client's engine connection: for one connection (all its namespaces)
//     they run one at a time, in the order the packets arrived, and a socket's connection
//     handlers run before its first event is dispatched. (An idle WebSocket holds no
//     goroutine: the reader of the next packets may be another goroutine.) They must not block for
//     long: while one runs, that client's next packets wait. A handler may keep the Event and
//     answer ev.Ack later from another goroutine.
//   - Socket.EmitWithAck and BroadcastOperator.EmitWithAck block their caller until the
//     replies; never call them from a handler (the replies could not be read while it waits):
//     use Socket.EmitWithAckFunc, whose callback runs on the reader, a timer, or the goroutine
//     that disconnected the socket, or start a goroutine.
//   - A panic in a middleware or handler is logged and drops that client alone (reason
//     "parse error"); a panic in an OnDisconnect handler is logged.
//   - OnDisconnect handlers run once per socket, on the goroutine that disconnected it (the
//     caller of Disconnect, or a goroutine of the server for closed connections).
//   - Emits never block on a slow client: every connection has a queue bounded in bytes
//     (Config.WriteQueueBytes); a client whose queue went past it is disconnected with reason
//     "transport error" (volatile emits are dropped instead). A broadcast encodes its packet once for all receivers, and the broadcasts of a
//     namespace reach every receiver in one order.
//   - Shutdown closes every session ("server shutting down") and waits for the goroutines of
//     the engine and of this package.
package sockets
