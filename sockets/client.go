package sockets

import (
	"encoding/json"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/collabd/collabd/sockets/engineio"
	"github.com/collabd/collabd/sockets/parser"
)

// client is one engine connection and the sockets multiplexed on it, one per namespace.
type client struct {
	srv  *Server
	conn *engineio.Conn
	dec  parser.Decoder // used only by onMessage, whose calls never overlap

	mu           sync.Mutex // guards sockets, closed and connectTimer
	sockets      []*Socket  // one per connected namespace (a slice: clients use one or two)
	closed       bool
	connectTimer *time.Timer
}

func newClient(s *Server, c *engineio.Conn) *client {
	cl := &client{srv: s, conn: c}
	c.OnMessage(cl.onMessage)
	c.OnClose(cl.onClose)
	cl.connectTimer = time.AfterFunc(s.cfg.ConnectTimeout, cl.connectTimeout)
	return cl
}

func (cl *client) connectTimeout() {
	cl.mu.Lock()
	idle := len(cl.sockets) == 0 && !cl.closed
	cl.mu.Unlock()
	if idle {
		cl.conn.Close("connect timeout")
	}
}

func (cl *client) socket(nsp string) *Socket {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, s := range cl.sockets {
		if s.nsp.name == nsp {
			return s
		}
	}
	return nil
}

func (cl *client) onMessage(data []byte, binary bool) {
	defer func() {
		// A panicking handler must not take the whole server down: log it and drop this
		// client alone (as for a packet it could not handle).
		if v := recover(); v != nil {
			cl.srv.cfg.Logger.Error("sockets: handler panic", "sid", cl.conn.ID(), "panic", v, "stack", string(debug.Stack()))
			cl.conn.Close(ReasonParseError)
		}
	}()
	p, err := cl.dec.Add(data, binary)
	if err != nil {
		cl.srv.cfg.Logger.Debug("sockets: bad packet", "sid", cl.conn.ID(), "err", err)
		cl.conn.Close("parse error")
		return
	}
	if p == nil {
		return
	}
	switch p.Type {
	case parser.Connect:
		cl.connect(p)
	case parser.Disconnect:
		if s := cl.socket(p.Nsp()); s != nil {
			s.onClose("client namespace disconnect")
		}
	case parser.Event, parser.BinaryEvent:
		if s := cl.socket(p.Nsp()); s != nil {
			s.onEvent(p)
		}
	case parser.Ack, parser.BinaryAck:
		if s := cl.socket(p.Nsp()); s != nil {
			s.onAck(p)
		}
	default: // CONNECT_ERROR is never sent by clients
		cl.conn.Close("parse error")
	}
}

// send queues the messages of e; volatile ones are dropped when the queue is full.
func (cl *client) send(e *Encoded, volatile bool) error {
	if volatile {
		err := cl.conn.TrySend(e.msgs...)
		if err != nil {
			cl.srv.countVolatile(err)
		}
		return err
	}
	return cl.conn.Send(e.msgs...)
}

func (cl *client) sendPacket(p *parser.Packet) error {
	e, err := Encode(p)
	if err != nil {
		return err
	}
	return cl.send(e, false)
}

func (cl *client) connectError(nsp string, ce *ConnectError) {
	data, err := json.Marshal(ce)
	if err != nil {
		data, _ = json.Marshal(&ConnectError{Message: ce.Message})
	}
	_ = cl.sendPacket(&parser.Packet{Type: parser.ConnectError, Namespace: nsp, Data: data})
}

func (cl *client) connect(p *parser.Packet) {
	name := p.Nsp()
	nsp := cl.srv.namespace(name)
	if nsp == nil {
		cl.connectError(name, &ConnectError{Message: "Invalid namespace"})
		return
	}
	if cl.socket(name) != nil {
		return // already connected to it: ignore
	}
	auth := p.Data
	if len(auth) == 0 {
		auth = json.RawMessage("{}")
	}
	var sess *Session
	rec := cl.srv.cfg.Recovery
	if rec.Enabled {
		var a struct {
			PID    *string `json:"pid"`
			Offset *string `json:"offset"`
		}
		if json.Unmarshal(auth, &a) == nil && a.PID != nil && a.Offset != nil {
			s, err := nsp.adapter.RestoreSession(*a.PID, *a.Offset)
			if err != nil {
				cl.srv.cfg.Logger.Debug("sockets: restore session", "err", err)
			}
			if s != nil {
				s.Offset = *a.Offset
			}
			sess = s
		}
	}
	s := newSocket(nsp, cl, auth, sess)
	if sess == nil || rec.RunMiddlewares {
		if err := nsp.runMiddlewares(s); err != nil {
			ce, ok := err.(*ConnectError)
			if !ok {
				ce = &ConnectError{Message: err.Error()}
			}
			cl.connectError(name, ce)
			return
		}
	}
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return
	}
	cl.sockets = append(cl.sockets, s)
	if cl.connectTimer != nil {
		cl.connectTimer.Stop()
		cl.connectTimer = nil
	}
	cl.mu.Unlock()
	nsp.add(s, sess)
}

func (cl *client) remove(s *Socket) {
	cl.mu.Lock()
	if i := slices.Index(cl.sockets, s); i >= 0 {
		cl.sockets = slices.Delete(cl.sockets, i, i+1)
	}
	cl.mu.Unlock()
}

func (cl *client) onClose(reason string, cause error) {
	cl.srv.countClose(cl.conn.ID(), cause)
	cl.mu.Lock()
	cl.closed = true
	if cl.connectTimer != nil {
		cl.connectTimer.Stop()
		cl.connectTimer = nil
	}
	socks := slices.Clone(cl.sockets)
	cl.mu.Unlock()
	cl.srv.cfg.Logger.Debug("sockets: connection closed", "sid", cl.conn.ID(), "reason", reason, "cause", cause)
	// The engine may call this from inside a Send (a full queue), where a broadcast holds
	// locks: the sockets' disconnection, which runs user handlers, gets its own goroutine.
	cl.srv.wg.Add(1)
	go func() {
		defer cl.srv.wg.Done()
		defer cl.srv.removeClient(cl)
		for _, s := range socks {
			cl.closeSocket(s, reason)
		}
	}()
}

// closeSocket disconnects s, logging a panic of its OnDisconnect handlers instead of
// crashing the server.
func (cl *client) closeSocket(s *Socket, reason string) {
	defer func() {
		if v := recover(); v != nil {
			cl.srv.cfg.Logger.Error("sockets: disconnect handler panic", "id", s.id, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	s.onClose(reason)
}

// disconnectAll disconnects every socket ("server namespace disconnect") and closes the
// engine connection.
func (cl *client) disconnectAll() {
	cl.mu.Lock()
	socks := slices.Clone(cl.sockets)
	cl.mu.Unlock()
	for _, s := range socks {
		s.Disconnect(false)
	}
	cl.conn.Close("forced close")
}
