package engineio

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// readBufPool holds the buffers incoming WebSocket messages are read into,
// so that an idle connection holds none.
var readBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledReadBuf: larger read buffers are not kept in the pool.
const maxPooledReadBuf = 64 << 10

// readBufferSize is the size of each WebSocket's read buffer.
const readBufferSize = 288

// smallReaderHijacker hands gorilla a small read buffer of our own, so that
// the reader can tell whether bytes are buffered before it parks.
type smallReaderHijacker struct {
	http.ResponseWriter
	br *bufio.Reader
}

func (h *smallReaderHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return conn, brw, err // gorilla refuses early data itself
	}
	h.br = bufio.NewReaderSize(conn, readBufferSize)
	return conn, bufio.NewReadWriter(h.br, brw.Writer), nil
}

// upgrade completes the WebSocket handshake; br is the connection's read
// buffer (nil if gorilla made its own).
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) (*websocket.Conn, *bufio.Reader, error) {
	hj := &smallReaderHijacker{ResponseWriter: w}
	ws, err := s.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		return nil, nil, err
	}
	ws.SetReadLimit(int64(s.cfg.MaxPayload))
	return ws, hj.br, nil
}

// handshakeWebSocket opens a session directly over WebSocket.
func (s *Server) handshakeWebSocket(w http.ResponseWriter, r *http.Request) {
	ws, br, err := s.upgrade(w, r)
	if err != nil {
		s.log.Debug("engineio: websocket handshake failed", "err", err)
		return
	}
	c := s.newConn(r, transportWebSocket)
	c.ws = ws
	open := s.openPacket(c, false)
	c.queue = append(c.queue, controlMessage(typeOpen, string(open[1:])))
	if !s.add(c) {
		_ = ws.Close()
		return
	}
	c.mu.Lock()
	c.kickLocked()
	c.mu.Unlock()
	if s.cfg.OnConnection != nil {
		s.cfg.OnConnection(c)
	}
	c.startHeartbeat()
	s.log.Debug("engineio: session opened", "sid", c.id, "transport", "websocket")
	s.track()
	go c.readLoop(ws, br)
}

// serveUpgrade starts the upgrade of a polling session to WebSocket.
func (c *Conn) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.state != stateOpen || c.transport != transportPolling || c.upgrading {
		c.mu.Unlock()
		// As the reference server does: accept the WebSocket, then close it.
		if ws, err := c.srv.upgrader.Upgrade(w, r, nil); err == nil {
			_ = ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			_ = ws.Close()
		}
		return
	}
	// Busy until the probe's reader parks: a GET that comes once the client
	// has its 101 waits for what the client sent on the WebSocket first.
	c.upgrading, c.probeBusy = true, true
	c.mu.Unlock()

	ws, br, err := c.srv.upgrade(w, r)
	if err != nil {
		c.mu.Lock()
		c.upgrading, c.probeBusy = false, false
		c.wakePollLocked()
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		_ = ws.Close()
		return
	}
	c.probeWS = ws
	if br != nil {
		c.probePending = pendingPeeker(ws.UnderlyingConn())
	}
	c.mu.Unlock()
	c.srv.track()
	go c.probe(ws, br)
}

// probe runs the upgrade handshake on ws ("2probe", "3probe", then "5") and
// then becomes the connection's reader. On failure the session stays on
// polling. While it waits for bytes with an empty buffer it clears
// c.probeBusy, so that a GET can tell whether the client's packets are all
// handled (see servePoll).
func (c *Conn) probe(ws *websocket.Conn, br *bufio.Reader) {
	fail := func() {
		_ = ws.Close()
		c.mu.Lock()
		c.upgrading, c.probed, c.probeBusy, c.probePending = false, false, false, nil
		if c.probeWS == ws {
			c.probeWS = nil
		}
		c.wakePollLocked()
		c.mu.Unlock()
		c.srv.untrack()
	}
	var wait func()
	if br != nil {
		wait = idleWaiter(ws.UnderlyingConn())
	}
	// park waits for the next bytes. Without a way to wait outside gorilla's
	// read, the reader stays busy for GETs, which then wait for it a
	// bounded time (upgradeGrace).
	park := func() {
		if wait == nil {
			return
		}
		c.mu.Lock()
		idle := br.Buffered() == 0
		if idle {
			c.probeBusy = false
			c.wakePollLocked()
		}
		c.mu.Unlock()
		if !idle {
			return
		}
		wait()
		c.mu.Lock()
		c.probeBusy = true
		c.mu.Unlock()
	}
	_ = ws.SetReadDeadline(time.Now().Add(c.srv.cfg.UpgradeTimeout))
	park()
	typ, data, err := ws.ReadMessage()
	if err != nil || typ != websocket.TextMessage || string(data) != "2probe" {
		fail()
		return
	}
	c.alive()
	// Probed before the answer leaves: a GET the client sends once it has
	// the answer must find the session probed.
	c.mu.Lock()
	c.probed = true
	c.wakePollLocked()
	c.mu.Unlock()
	nc := ws.UnderlyingConn()
	_ = nc.SetWriteDeadline(time.Now().Add(writeWait))
	if _, err := nc.Write(msgPongProbe.wsFrame()); err != nil {
		fail()
		return
	}
	c.mu.Lock()
	c.probeAnswered = c.srv.now()
	c.mu.Unlock()
	for {
		park()
		typ, data, err = ws.ReadMessage()
		if err != nil || typ != websocket.TextMessage {
			fail()
			return
		}
		if string(data) == "5" {
			break
		}
		if len(data) == 0 || data[0] != typeNoop {
			fail()
			return
		}
	}
	c.alive()
	_ = ws.SetReadDeadline(time.Time{})
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		fail()
		return
	}
	c.transport = transportWebSocket
	c.ws = ws
	c.probeWS = nil
	c.upgrading, c.probed, c.probeBusy, c.probePending = false, false, false, nil
	c.wakePollLocked() // the pending GET, if any, is answered (noop or 400)
	c.kickLocked()     // the writer takes over the queue
	c.mu.Unlock()
	c.srv.log.Debug("engineio: session upgraded", "sid", c.id)
	c.readLoop(ws, br)
}

// readLoop reads ws until it fails or the session closes. It is the only
// reader of ws. It ends the tracking started for it. br, if not nil, is
// ws's read buffer: while it is empty the loop parks in a shallow wait for
// the socket to become readable, so that idle connections keep small
// stacks.
func (c *Conn) readLoop(ws *websocket.Conn, br *bufio.Reader) {
	defer c.srv.untrack()
	var wait func()
	if br != nil {
		wait = idleWaiter(ws.UnderlyingConn())
	}
	for {
		if wait != nil && br.Buffered() == 0 {
			wait()
		}
		if !c.readMessage(ws) {
			return
		}
	}
}

// readMessage reads and handles one message; it returns false when the
// reader must stop.
func (c *Conn) readMessage(ws *websocket.Conn) bool {
	typ, rd, err := ws.NextReader()
	if err != nil {
		c.readFailed(err)
		return false
	}
	buf := readBufPool.Get().(*bytes.Buffer)
	defer putReadBuf(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(rd); err != nil {
		c.readFailed(err)
		return false
	}
	var p Packet
	if typ == websocket.BinaryMessage {
		p = Packet{Type: typeMessage, Data: buf.Bytes(), Binary: true}
	} else {
		p, err = decodeTextPacket(buf.Bytes())
		if err != nil {
			c.closeWith("parse error", err, closeAbort)
			return false
		}
	}
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	return c.handlePacket(p)
}

func putReadBuf(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledReadBuf {
		readBufPool.Put(buf)
	}
}

// readFailed closes the session after a read error.
func (c *Conn) readFailed(err error) {
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		c.closeWith("transport error", ErrPayloadTooLarge, closeAbort)
	case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway,
		websocket.CloseNoStatusReceived, websocket.CloseAbnormalClosure),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		c.closeWith("transport close", nil, closeAbort)
	default:
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			c.closeWith("transport close", nil, closeAbort)
			return
		}
		c.closeWith("transport error", err, closeAbort)
	}
}

// writeLoop writes the queue to ws until it is empty. It runs only while
// there is something to write (started by kickLocked) and is the only
// writer of ws once the session uses it, apart from the control frames
// (pong, close echo) gorilla's reader writes; every write carries whole
// frames, and the socket serializes whole writes, so frames never
// interleave. All queued frames go out in one writev.
func (c *Conn) writeLoop(ws *websocket.Conn) {
	defer c.srv.untrack()
	nc := ws.UnderlyingConn()
	var bufs net.Buffers
	for {
		c.mu.Lock()
		msgs := c.takeLocked()
		if len(msgs) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		bufs = bufs[:0]
		closing := false
		for _, m := range msgs {
			bufs = append(bufs, m.wsFrame())
			if m == msgClose {
				bufs = append(bufs, closeFrame)
				closing = true
				break
			}
		}
		_ = nc.SetWriteDeadline(time.Now().Add(writeWait))
		var err error
		if len(bufs) == 1 {
			_, err = nc.Write(bufs[0])
		} else {
			b := bufs // WriteTo consumes its receiver
			_, err = b.WriteTo(nc)
		}
		clear(bufs) // let the frames go
		if err != nil || closing {
			if err != nil {
				c.closeWith("transport error", err, closeAbort)
			}
			_ = ws.Close()
			c.stopWriting()
			return
		}
	}
}

func (c *Conn) stopWriting() {
	c.mu.Lock()
	c.writing = false
	c.queue = nil
	c.queued = 0
	c.mu.Unlock()
}
