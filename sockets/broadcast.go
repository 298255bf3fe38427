package sockets

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
)

// BroadcastOperator selects sockets of a namespace (rooms, exceptions, flags) to emit to or act
// on. It is a value: each method returns a new operator and leaves the receiver unchanged, so
// operators can be kept and shared between goroutines.
type BroadcastOperator struct {
	nsp    *Namespace
	rooms  []string
	except []string
	local  bool
	vol    bool
}

// To adds rooms to the selection (the members of any of them).
func (b BroadcastOperator) To(rooms ...string) BroadcastOperator {
	b.rooms = slices.Concat(b.rooms, rooms)
	return b
}

// In is To.
func (b BroadcastOperator) In(rooms ...string) BroadcastOperator { return b.To(rooms...) }

// Except skips the members of rooms.
func (b BroadcastOperator) Except(rooms ...string) BroadcastOperator {
	b.except = slices.Concat(b.except, rooms)
	return b
}

// Local restricts the operation to this server.
func (b BroadcastOperator) Local() BroadcastOperator {
	b.local = true
	return b
}

// Volatile lets receivers whose queue is full drop the event (and never stores it for
// recovery).
func (b BroadcastOperator) Volatile() BroadcastOperator {
	b.vol = true
	return b
}

func (b BroadcastOperator) opts() BroadcastOptions {
	return BroadcastOptions{Rooms: b.rooms, Except: b.except, Local: b.local, Volatile: b.vol}
}

// Emit sends an event to the selected sockets. The packet is encoded once for all of them;
// Emit never waits for a slow receiver (a receiver whose queue is full is disconnected, or
// skipped for a volatile emit).
func (b BroadcastOperator) Emit(event string, args ...any) error {
	p, err := eventPacket(b.nsp.name, event, args)
	if err != nil {
		return err
	}
	return b.nsp.adapter.Broadcast(p, b.opts())
}

// EmitWithAck sends an event to the selected sockets, asking each for an acknowledgement, and
// waits until every one answered or ctx is done (bounded by Config.AckTimeout when ctx has no
// deadline). It returns the replies received, in arrival order; when some are missing the error
// is ErrAckTimeout (or ctx's error). A socket that disconnects meanwhile counts as answered,
// without a reply. It must not be called from a handler (see Socket.EmitWithAck).
func (b BroadcastOperator) EmitWithAck(ctx context.Context, event string, args ...any) ([]*Reply, error) {
	p, err := eventPacket(b.nsp.name, event, args)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, b.nsp.srv.cfg.AckTimeout, ErrAckTimeout)
		defer cancel()
	}
	p.ID, p.HasID = b.nsp.nextAckID(), true
	type answer struct {
		r   *Reply
		err error
	}
	ch := make(chan answer, 16)
	done := make(chan struct{})
	defer close(done)
	n, cancel, err := b.nsp.adapter.BroadcastWithAck(p, b.opts(), func(r *Reply, err error) {
		select {
		case ch <- answer{r, err}:
		case <-done:
		}
	})
	if err != nil {
		return nil, err
	}
	defer cancel()
	var replies []*Reply
	for got := 0; got < n; got++ {
		select {
		case a := <-ch:
			if a.err == nil {
				replies = append(replies, a.r)
			}
		case <-ctx.Done():
			if cause := context.Cause(ctx); errors.Is(cause, ErrAckTimeout) {
				return replies, ErrAckTimeout
			}
			return replies, ctx.Err()
		}
	}
	return replies, nil
}

// FetchSockets describes the selected sockets.
func (b BroadcastOperator) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	return b.nsp.adapter.FetchSockets(ctx, b.opts())
}

// SocketsJoin makes the selected sockets join rooms.
func (b BroadcastOperator) SocketsJoin(ctx context.Context, rooms ...string) error {
	return b.nsp.adapter.AddSockets(ctx, b.opts(), rooms)
}

// SocketsLeave makes the selected sockets leave rooms.
func (b BroadcastOperator) SocketsLeave(ctx context.Context, rooms ...string) error {
	return b.nsp.adapter.DelSockets(ctx, b.opts(), rooms)
}

// DisconnectSockets disconnects the selected sockets ("server namespace disconnect"); with
// close their engine connections are closed too.
func (b BroadcastOperator) DisconnectSockets(ctx context.Context, close bool) error {
	return b.nsp.adapter.DisconnectSockets(ctx, b.opts(), close)
}

// RemoteSocket describes a socket, possibly on another server, as FetchSockets returns it.
// Its methods act on the socket through the adapter.
type RemoteSocket struct {
	ID        string
	Namespace string
	Rooms     []string // sorted, including ID
	Data      any
	Auth      json.RawMessage
	nsp       *Namespace
}

// NewRemoteSocket builds a RemoteSocket for adapters.
func NewRemoteSocket(nsp *Namespace, id string, rooms []string, data any, auth json.RawMessage) *RemoteSocket {
	slices.Sort(rooms)
	return &RemoteSocket{ID: id, Namespace: nsp.name, Rooms: rooms, Data: data, Auth: auth, nsp: nsp}
}

func (r *RemoteSocket) op() BroadcastOperator { return r.nsp.To(r.ID) }

// Emit sends an event to the socket.
func (r *RemoteSocket) Emit(event string, args ...any) error { return r.op().Emit(event, args...) }

// Join makes the socket join rooms.
func (r *RemoteSocket) Join(ctx context.Context, rooms ...string) error {
	return r.op().SocketsJoin(ctx, rooms...)
}

// Leave makes the socket leave rooms.
func (r *RemoteSocket) Leave(ctx context.Context, rooms ...string) error {
	return r.op().SocketsLeave(ctx, rooms...)
}

// Disconnect disconnects the socket (see Socket.Disconnect).
func (r *RemoteSocket) Disconnect(ctx context.Context, close bool) error {
	return r.op().DisconnectSockets(ctx, close)
}
