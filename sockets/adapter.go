package sockets

import (
	"context"
	"encoding/json"

	"github.com/collabd/collabd/sockets/parser"
)

// BroadcastOptions select the receivers of a broadcast and how it is sent.
type BroadcastOptions struct {
	// Rooms: members of any of them receive the packet; empty means every socket of the
	// namespace.
	Rooms []string
	// Except: members of any of these rooms are skipped (a socket's id is a room, so
	// Except: []string{id} skips that socket).
	Except []string
	// Local restricts the broadcast to this server (meaningful for multi-node adapters).
	Local bool
	// Volatile packets may be dropped when a receiver's queue is full, and are never stored
	// for recovery.
	Volatile bool
}

// Session is the state of a socket kept for connection state recovery.
type Session struct {
	SID   string          // the socket id, kept on recovery
	PID   string          // the private session id the client presents to recover
	Rooms []string        // the rooms (including SID) the socket was in
	Data  any             // Socket.Data at disconnection
	Auth  json.RawMessage // informational
	// Offset is, after RestoreSession, the offset of the last packet the client received.
	Offset string
}

// Adapter is the room registry and broadcaster of one namespace, the seam for running
// several servers behind one Socket.IO endpoint. The in-memory adapter (NewMemoryAdapter) is
// the default; an adapter for a message bus implements the same interface, delivering to its
// local sockets through Namespace.LocalSocket and Socket.SendEncoded.
//
// Every method is called concurrently from many goroutines and must not block on a slow
// receiver. Broadcast must encode a packet once for all receivers (see Encode).
type Adapter interface {
	// AddAll adds socket id to rooms.
	AddAll(id string, rooms []string)
	// Del removes socket id from room.
	Del(id, room string)
	// DelAll removes socket id from every room.
	DelAll(id string)
	// SocketRooms returns the rooms of socket id (nil if unknown).
	SocketRooms(id string) []string
	// Broadcast sends p to the sockets selected by opts. When recovery is enabled, EVENT
	// packets without ack id that are not volatile get an offset appended as their last
	// argument and are stored for RestoreSession.
	Broadcast(p *parser.Packet, opts BroadcastOptions) error
	// BroadcastWithAck sends p, which has an ack id (Namespace.NextAckID), to the sockets
	// selected by opts, after registering onReply for it on each (Socket.AwaitAck). It returns
	// the number of sockets it was sent to, and cancel, which forgets the acknowledgements
	// still awaited. onReply may be called concurrently.
	BroadcastWithAck(p *parser.Packet, opts BroadcastOptions, onReply func(*Reply, error)) (n int, cancel func(), err error)
	// FetchSockets describes the sockets selected by opts (Except and Rooms as for Broadcast).
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]*RemoteSocket, error)
	// AddSockets makes the selected sockets join rooms.
	AddSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error
	// DelSockets makes the selected sockets leave rooms.
	DelSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error
	// DisconnectSockets disconnects the selected sockets ("server namespace disconnect");
	// with close, their whole engine connections are closed.
	DisconnectSockets(ctx context.Context, opts BroadcastOptions, close bool) error
	// PersistSession keeps s for recovery during the recovery window.
	PersistSession(s *Session)
	// RestoreSession returns the session pid and forgets it. It returns nil, nil when the
	// session or the offset is unknown or expired.
	RestoreSession(pid, offset string) (*Session, error)
	// MissedPackets returns the stored packets after sess.Offset that sess's rooms select, in
	// order. It is called after the restored socket joined its rooms, so that every packet is
	// either missed or delivered live; Socket.SendEncoded skips live packets whose Seq was
	// already replayed.
	MissedPackets(sess *Session) ([]*Encoded, error)
	// Close releases the adapter's resources.
	Close() error
}
