package engineio

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// readBufPool holds the buffers incoming WebSocket messages are assembled
// in, so that an idle connection holds none.
var readBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledReadBuf: larger message buffers are not kept in the pool.
const maxPooledReadBuf = 64 << 10

// upgrade completes the WebSocket handshake and returns the hijacked
// connection. gorilla's connection object is not kept: the engine reads and
// writes the frames itself.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil, err
	}
	return ws.UnderlyingConn(), nil
}

// handshakeWebSocket opens a session directly over WebSocket.
func (s *Server) handshakeWebSocket(w http.ResponseWriter, r *http.Request) {
	nc, err := s.upgrade(w, r)
	if err != nil {
		s.log.Debug("engineio: websocket handshake failed", "err", err)
		return
	}
	c := s.newConn(r, transportWebSocket)
	c.ws = nc
	open := s.openPacket(c, false)
	c.queue = append(c.queue, controlMessage(typeOpen, string(open[1:])))
	if !s.add(c) {
		_ = nc.Close()
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
	s.startPoller()
	s.track()
	c.startReader(rawConn(nc), nil)
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

	nc, err := c.srv.upgrade(w, r)
	if err != nil {
		c.mu.Lock()
		c.upgrading, c.probeBusy = false, false
		c.wakePollLocked()
		c.mu.Unlock()
		return
	}
	rc := rawConn(nc)
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		_ = nc.Close()
		return
	}
	c.probeWS = nc
	if rc != nil {
		c.probePending = func() bool { return pendingBytes(rc) }
	}
	c.mu.Unlock()
	c.srv.startPoller()
	c.srv.track()
	go c.probe(nc, rc)
}

// probe runs the upgrade handshake on nc ("2probe", "3probe", then "5") and
// then hands nc over to the connection's reader. On failure the session
// stays on polling. While it waits for bytes with an empty buffer it clears
// c.probeBusy, so that a GET can tell whether the client's packets are all
// handled (see servePoll). rc is nc's raw connection (nil if none).
func (c *Conn) probe(nc net.Conn, rc syscall.RawConn) {
	r := getFrameReader(nc)
	buf := readBufPool.Get().(*bytes.Buffer)
	defer putReadBuf(buf)
	fail := func() {
		_ = nc.Close()
		c.mu.Lock()
		c.upgrading, c.probed, c.probeBusy, c.probePending = false, false, false, nil
		if c.probeWS == nc {
			c.probeWS = nil
		}
		c.wakePollLocked()
		c.mu.Unlock()
		// r is not given back: it may hold bytes of a broken frame.
		c.srv.untrack()
	}
	// park waits for the next bytes. Without a way to wait outside the
	// read, the reader stays busy for GETs, which then wait for it a
	// bounded time (upgradeGrace).
	park := func() {
		if rc == nil {
			return
		}
		c.mu.Lock()
		idle := r.Buffered() == 0
		if idle {
			c.probeBusy = false
			c.wakePollLocked()
		}
		c.mu.Unlock()
		if !idle {
			return
		}
		waitReadable(rc)
		c.mu.Lock()
		c.probeBusy = true
		c.mu.Unlock()
	}
	readText := func() (string, bool) {
		park()
		op, err := readWSMessage(r, nc, buf, c.srv.cfg.MaxPayload)
		if err != nil || op != opText {
			return "", false
		}
		return buf.String(), true
	}
	_ = nc.SetReadDeadline(time.Now().Add(c.srv.cfg.UpgradeTimeout))
	if data, ok := readText(); !ok || data != "2probe" {
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
	_ = nc.SetWriteDeadline(time.Now().Add(writeWait))
	if _, err := nc.Write(msgPongProbe.wsFrame()); err != nil {
		fail()
		return
	}
	c.mu.Lock()
	c.probeAnswered = c.srv.now()
	c.mu.Unlock()
	for {
		data, ok := readText()
		if !ok {
			fail()
			return
		}
		if data == "5" {
			break
		}
		if len(data) == 0 || data[0] != typeNoop {
			fail()
			return
		}
	}
	c.alive()
	_ = nc.SetReadDeadline(time.Time{})
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		fail()
		return
	}
	c.transport = transportWebSocket
	c.ws = nc
	c.probeWS = nil
	c.upgrading, c.probed, c.probeBusy, c.probePending = false, false, false, nil
	c.wakePollLocked() // the pending GET, if any, is answered (noop or 400)
	c.kickLocked()     // the writer takes over the queue
	c.mu.Unlock()
	c.srv.log.Debug("engineio: session upgraded", "sid", c.id)
	// The reader continues with the bytes already buffered, if any (the
	// probe's tracking goes with it).
	if r.Buffered() == 0 {
		putFrameReader(r)
		r = nil
	}
	c.startReader(rc, r)
}

// Results of poller.arm.
type armResult int

const (
	armed armResult = iota
	armUnavailable
	armClosed
)

// startReader starts the reader of the WebSocket c.ws, whose raw
// connection is rc (nil if none). r, if not nil, holds bytes already read.
// The caller has tracked the reader.
func (c *Conn) startReader(rc syscall.RawConn, r *bufio.Reader) {
	c.rc = rc
	if rc == nil && r == nil {
		// A reader that blocks in its read keeps its buffer: a small one
		// (large payloads are read past it, straight into the message).
		r = bufio.NewReaderSize(c.ws, blockingReaderSize)
	}
	if r != nil {
		go c.readLoop(r)
		return
	}
	c.park()
}

// activeLinger is how long the reader of a busy connection (its previous
// message came less than activeLinger ago) waits for the next message
// before it parks: an active connection keeps its goroutine (and its grown
// stack) instead of paying for a new goroutine, stack growth and a poller
// round trip per message. A connection that is not busy (a first message,
// a pong every PingInterval) parks at once.
const activeLinger = time.Second

// lingerForNext waits, on a busy connection, for the next message to
// arrive within activeLinger and returns a pooled read buffer holding its
// first bytes; nil means park. While it waits it holds no read buffer: it
// waits for the poller's word that nc is readable, with no system call,
// then reads once (a read that found nothing and then the one that brought
// the bytes took two system calls per message). The word may be stale
// (bytes it announced were read already): the read, under the same
// deadline, then waits for real. A timeout or any other error means park:
// the poller then sees the connection readable, and the reader it starts
// meets the error.
func (c *Conn) lingerForNext(nc net.Conn) *bufio.Reader {
	now := int64(c.srv.now())
	prev := c.lastMessage.Swap(now)
	if prev == 0 || time.Duration(now-prev) >= activeLinger {
		return nil
	}
	if nc.SetReadDeadline(time.Now().Add(activeLinger)) != nil {
		return nil
	}
	defer nc.SetReadDeadline(time.Time{})
	if !awaitReadable(c.rc, &c.await, new(stackHold)) {
		return nil
	}
	r := getFrameReader(nc)
	if _, err := r.Peek(1); err != nil {
		putFrameReader(r)
		return nil
	}
	return r
}

// stackHold is stack space a lingering reader keeps in use while it waits.
// The GC halves a parked goroutine's stack when less than a quarter of it
// is in use, and the next message grows it back. A lingering reader waits
// with about 1.4-1.5 KiB in use (the stack guard included), and handling
// an op (parse, transform, apply, broadcast) takes it past 4 KiB, so every
// GC cycle copied each busy reader's stack twice (copystack: 3.4-4.5% of
// the server's CPU at 100 documents x 4 editors). With this much more in
// use (about 3 KiB) an 8 KiB stack, the size the handlers need, stays
// whole, and one grown to 16 KiB by a rare large message still shrinks
// back to 8 KiB. TestBusyReaderKeepsItsStack fails with a hold of 512 bytes.
type stackHold [1536]byte

// readWaiter is the callback of a wait for readability through
// RawConn.Read that makes no system call: its first look answers "not
// yet" unchecked, so the wait starts at once, and the next one "ready".
// It is kept in the Conn so that a wait allocates nothing (a closure
// passed to RawConn.Read would be allocated, with its state, per wait).
type readWaiter struct {
	looked bool
	fn     func(uintptr) bool // w.look, made on the first wait
}

func (w *readWaiter) look(uintptr) bool {
	ready := w.looked
	w.looked = true
	return ready
}

// blockingReaderSize is the read buffer of a reader without a poller.
const blockingReaderSize = 512

// readLoop is the WebSocket's reader: it borrows a read buffer, handles the
// messages that arrived (and, on a busy connection, those that follow
// within activeLinger, without buffers between them), gives the buffer
// back and parks (see park). So an idle WebSocket holds no read buffer and
// no goroutine, whatever the handlers did on the goroutine that ran them.
// r, if not nil, holds bytes already read. Without a raw connection to
// wait on (e.g. TLS) a single goroutine reads with its own buffer. The
// reader ends the tracking started for it when it stops.
func (c *Conn) readLoop(r *bufio.Reader) {
	nc := c.ws
	if r == nil {
		r = getFrameReader(nc)
	}
	buf := readBufPool.Get().(*bytes.Buffer)
	for {
		if !c.readMessage(nc, r, buf) {
			putReadBuf(buf)
			c.srv.untrack()
			return
		}
		if c.rc == nil || r.Buffered() > 0 {
			continue
		}
		// Everything received is handled: wait for more without buffers.
		putReadBuf(buf)
		putFrameReader(r)
		if r = c.lingerForNext(nc); r == nil {
			break
		}
		buf = readBufPool.Get().(*bytes.Buffer)
	}
	c.park()
}

// park waits until the WebSocket is readable, then runs readLoop: armed in
// the server's poller (no goroutine while idle), or else on a fresh
// goroutine parked in a shallow wait (a goroutine whose stack grew in a
// handler keeps it: the GC shrinks a parked stack only while less than a
// quarter of it is used).
func (c *Conn) park() {
	switch c.srv.idlePoller().arm(c) {
	case armed:
		return
	case armClosed:
		c.srv.untrack()
		return
	}
	go func() {
		waitReadable(c.rc)
		c.readLoop(nil)
	}()
}

// readMessage reads and handles one message into buf; it returns false when
// the reader must stop.
func (c *Conn) readMessage(nc net.Conn, r *bufio.Reader, buf *bytes.Buffer) bool {
	op, err := readWSMessage(r, nc, buf, c.srv.cfg.MaxPayload)
	if err != nil {
		c.readFailed(err)
		return false
	}
	var p Packet
	if op == opBinary {
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
		buf.Reset()
		readBufPool.Put(buf)
	}
}

// readFailed closes the session after a read error.
func (c *Conn) readFailed(err error) {
	switch {
	case errors.Is(err, ErrPayloadTooLarge):
		c.closeWith("transport error", ErrPayloadTooLarge, closeAbort)
	case errors.Is(err, errWSClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		c.closeWith("transport close", nil, closeAbort)
	default:
		c.closeWith("transport error", err, closeAbort)
	}
}

// writeLoop writes the queue to c.ws until it is empty. It runs only while
// there is something to write (started by kickLocked) and is the only
// writer of c.ws once the session uses it, apart from the control frames
// (pong, close echo) the reader writes; every write carries whole frames,
// and the socket serializes whole writes, so frames never interleave. All
// queued frames go out in one writev.
func (c *Conn) writeLoop() {
	defer c.srv.untrack()
	c.mu.Lock()
	nc := c.ws
	c.mu.Unlock()
	var bp *net.Buffers // pooled, only for several frames
	defer func() {
		if bp != nil {
			frameBufs.Put(bp)
		}
	}()
	var done []*Message // the last queue written, given back for reuse
	for {
		c.mu.Lock()
		if done != nil {
			c.recycleLocked(done)
		}
		msgs := c.takeLocked()
		if len(msgs) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		done = msgs
		closing := false
		if n := c.srv.now(); !c.wdlSet || n-c.wdl > writeWait/2 {
			// Each write is bounded by writeWait/2 to writeWait; the
			// deadline is not moved for every write (a timer update).
			_ = nc.SetWriteDeadline(time.Now().Add(writeWait))
			c.wdl, c.wdlSet = n, true
		}
		var err error
		if len(msgs) == 1 && msgs[0] != msgClose {
			_, err = nc.Write(msgs[0].wsFrame())
		} else {
			if bp == nil {
				bp = frameBufs.Get().(*net.Buffers)
			}
			bufs := (*bp)[:0]
			for _, m := range msgs {
				bufs = append(bufs, m.wsFrame())
				if m == msgClose {
					bufs = append(bufs, closeFrame)
					closing = true
					break
				}
			}
			*bp = bufs
			_, err = bp.WriteTo(nc) // consumes *bp
			clear(bufs)             // let the frames go
			*bp = bufs[:0]
		}
		if err != nil || closing {
			if err != nil {
				c.closeWith("transport error", err, closeAbort)
			}
			_ = nc.Close()
			c.stopWriting()
			return
		}
	}
}

// frameBufs holds the frame lists of writers that send several frames at
// once.
var frameBufs = sync.Pool{New: func() any { return new(net.Buffers) }}

func (c *Conn) stopWriting() {
	c.mu.Lock()
	c.writing = false
	c.queue = nil
	c.queued = 0
	c.mu.Unlock()
}
