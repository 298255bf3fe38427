package engineio

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// The read side of a WebSocket session: how its reader waits for the
// client's frames and what it holds meanwhile. The framing rules are in
// wsframe.go, the epoll poller in poller_linux.go; docs/sockets.md ("The
// WebSocket read path") gives the reasons and the figures.
//
// Two strategies:
//
//   - Blocking (Config.BlockingReads, TLS connections, systems other than
//     Linux): one goroutine per connection, blocked in its read, with its
//     own read buffer, for the connection's whole life.
//   - Parked (the default on Linux): a reader goroutine runs only while
//     the connection has something to read. It borrows a read buffer,
//     handles every message that arrived, and, once its buffer is empty,
//     either lingers (a busy connection: it waits in an ordinary read, up
//     to activeLinger, for the next message) or gives its buffer back and
//     arms the connection in the poller, which starts a new reader when
//     bytes arrive. An idle connection holds no goroutine and no buffer.
//
// Every wait for the next bytes either reads (the runtime checks the
// socket before it sleeps) or asks the kernel first (MSG_PEEK, or epoll in
// level-triggered mode), so bytes that arrived before the wait are never
// overlooked. (A wait on the runtime poller's readiness word alone would
// miss them: that word only announces bytes that arrive after it was
// reset.)

// activeLinger is how long the reader of a busy connection (its previous
// message came less than activeLinger ago) waits for the next message
// before it parks: a connection that is typing keeps its goroutine and
// grown stack instead of paying for a new goroutine, stack growth and a
// poller round trip per message. A connection that is not busy (a first
// message, a pong every PingInterval) parks at once. A variable for the
// tests.
var activeLinger = time.Second

// frameReaderSize is the size of the read buffers.
const frameReaderSize = 4096

// wsReader reads one WebSocket's frames and hands each message to its
// Conn. At most one goroutine is its reader at any time: the one started
// with the connection, then (parked) the one the poller or park starts;
// the reader's fields belong to it.
type wsReader struct {
	c  *Conn
	nc net.Conn
	rc syscall.RawConn // nc's raw connection; nil: the reader blocks in its read

	// lastMessage is when (Server.now) the previous message was handled,
	// 0 before the first.
	lastMessage time.Duration

	// The poller's registration (guarded by the poller's mu).
	pollID    uint32
	pollAdded bool
}

// startReader starts reading the session's WebSocket nc. br, if not nil,
// holds bytes already read from nc (the upgrade probe's). The caller has
// tracked the reader; it ends the tracking when it stops.
func (c *Conn) startReader(nc net.Conn, br *bufio.Reader) {
	r := &wsReader{c: c, nc: nc}
	if !c.srv.cfg.BlockingReads {
		r.rc = rawConn(nc)
	}
	c.mu.Lock()
	c.reader = r
	c.mu.Unlock()
	switch {
	case r.rc == nil:
		go r.runBlocking(br)
	case br != nil:
		go r.run(br)
	default:
		r.park()
	}
}

// runBlocking is the whole life of a blocking reader.
func (r *wsReader) runBlocking(br *bufio.Reader) {
	defer r.c.srv.untrack()
	if br == nil {
		br = bufio.NewReaderSize(r.nc, frameReaderSize)
	}
	for r.readMessage(br) {
	}
}

// run is a parked connection's reader: it handles every message that
// arrived (and, on a busy connection, those that follow within
// activeLinger), gives its buffer back and parks the connection. br, if
// not nil, holds bytes already read.
func (r *wsReader) run(br *bufio.Reader) {
	if br == nil {
		br = getFrameReader(r.nc)
	}
	for {
		if !r.readMessage(br) {
			// br is not given back: it may hold part of a frame.
			r.c.srv.untrack()
			return
		}
		if br.Buffered() == 0 && !r.linger(br) {
			break
		}
	}
	putFrameReader(br)
	r.park()
}

// linger reports whether bytes of a next message arrived in br within
// activeLinger, on a busy connection; false means park. It waits in a
// read into br (which the runtime starts with the read system call, so
// bytes already in the kernel's buffer are found at once). A timeout
// leaves br empty and usable; any other error also means park: the poller
// then sees the connection readable, and the reader it starts meets the
// error.
func (r *wsReader) linger(br *bufio.Reader) bool {
	now := r.c.srv.now()
	prev := r.lastMessage
	r.lastMessage = now
	if prev == 0 || now-prev >= activeLinger {
		return false
	}
	if r.nc.SetReadDeadline(time.Now().Add(activeLinger)) != nil {
		return false
	}
	ok := peekHoldingStack(br, new(stackHold))
	_ = r.nc.SetReadDeadline(time.Time{})
	return ok
}

// stackHold is stack space a lingering reader keeps in use while it waits.
// The GC halves a waiting goroutine's stack when less than a quarter of it
// is in use, and the next message grows it back: handling an op (parse,
// transform, apply, broadcast) takes more than 4 KiB, and a reader waits
// in its read with about 1.5 KiB in use, so every GC cycle would copy each
// busy reader's stack twice. With the hold an 8 KiB stack stays whole, and
// one grown to 16 KiB by a rare large message still shrinks back to 8 KiB.
// TestBusyReaderKeepsItsStack shows the copies without it.
type stackHold [1280]byte

// peekHoldingStack waits for the next byte of br with hold on its stack
// frame (new(stackHold) does not escape, so it lives in this frame).
//
//go:noinline
func peekHoldingStack(br *bufio.Reader, hold *stackHold) bool {
	hold[0] = 1
	_, err := br.Peek(1)
	return err == nil && hold[0] == 1
}

// Results of poller.arm.
type armResult int

const (
	armed armResult = iota
	armUnavailable
	armClosed
)

// park arms the connection in the server's poller, which starts a new
// reader when bytes arrive (no goroutine meanwhile); without a poller, a
// goroutine waits for them (MSG_PEEK, a shallow wait).
func (r *wsReader) park() {
	switch r.c.srv.idlePoller().arm(r) {
	case armed:
		return
	case armClosed:
		r.c.srv.untrack()
		return
	}
	go func() {
		waitReadable(r.rc)
		r.run(nil)
	}()
}

// readMessage reads one message from br and hands it to the Conn; it
// returns false when the reader must stop. The message is assembled in a
// pooled buffer, held only for the message.
func (r *wsReader) readMessage(br *bufio.Reader) bool {
	c := r.c
	buf := readBufPool.Get().(*bytes.Buffer)
	defer putReadBuf(buf)
	op, err := readWSMessage(br, r.nc, buf, c.srv.cfg.MaxPayload)
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

// readFailed closes the session after a read error.
func (c *Conn) readFailed(err error) {
	switch {
	case errors.Is(err, ErrPayloadTooLarge):
		c.closeWith("transport error", ErrPayloadTooLarge, closeAbort)
	case errors.Is(err, errWSInvalidUTF8):
		// Bad input, as any undecodable packet (not recoverable).
		c.closeWith("parse error", err, closeAbort)
	case errors.Is(err, errWSClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		c.closeWith("transport close", nil, closeAbort)
	default:
		c.closeWith("transport error", err, closeAbort)
	}
}

// readBufPool holds the buffers incoming messages are assembled in.
var readBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledReadBuf: larger message buffers are not kept in the pool.
const maxPooledReadBuf = 64 << 10

func putReadBuf(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledReadBuf {
		buf.Reset()
		readBufPool.Put(buf)
	}
}

// frameReaders holds the read buffers of parked connections' readers
// between bursts.
var frameReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, frameReaderSize) }}

// testHookFrameReaders, when set by a test before any connection, is
// called with +1 when a pooled read buffer is taken and -1 when it is given
// back (the tests check that parked connections hold none).
var testHookFrameReaders func(delta int)

// getFrameReader returns a pooled read buffer reading from nc.
func getFrameReader(nc net.Conn) *bufio.Reader {
	if testHookFrameReaders != nil {
		testHookFrameReaders(+1)
	}
	r := frameReaders.Get().(*bufio.Reader)
	r.Reset(nc)
	return r
}

// putFrameReader gives an empty read buffer back to the pool. A reader that
// still holds bytes must not be put back.
func putFrameReader(r *bufio.Reader) {
	if testHookFrameReaders != nil {
		testHookFrameReaders(-1)
	}
	r.Reset(nil)
	frameReaders.Put(r)
}
