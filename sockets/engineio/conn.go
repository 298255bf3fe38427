package engineio

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Transports.
const (
	transportPolling = iota
	transportWebSocket
)

// Connection states.
const (
	stateOpen    = iota
	stateClosing // polling only: closed, waiting for a GET to collect the close packet
	stateClosed
)

// Conn is one Engine.IO session. Its methods are safe for concurrent use.
type Conn struct {
	srv *Server
	id  string
	hs  *handshake // what Request is built from

	reqOnce sync.Once
	req     *http.Request // built by the first Request call

	// Callbacks, set inside OnConnection and never changed afterwards.
	onMessage func(data []byte, binary bool)
	onClose   func(reason string, cause error)

	// recvMu serializes the delivery of incoming packets (OnMessage calls)
	// across the requests and goroutines that read for this session.
	recvMu sync.Mutex

	// lastSeen is the time (Server.now) of the last sign of life.
	lastSeen atomic.Int64

	mu          sync.Mutex // guards the fields from here to closeCause
	state       int
	transport   int
	queue       []*Message // outgoing packets in order
	spare       []*Message // empty array for the next queue (see recycleLocked)
	queued      int        // bytes of the user messages in queue (see Message.queueCost)
	nextPing    time.Duration
	hb          *time.Timer   // heartbeat timer
	drainTimer  *time.Timer   // closing polling session: forget it after a bounded wait
	lingerHeld  bool          // a closing session lingering during Shutdown holds Shutdown open
	pollWaiting bool          // a long-polling GET is pending
	pollWake    chan struct{} // wakes the pending GET (buffered, 1)
	upgrading   bool          // a WebSocket upgrade is in progress
	probed      bool          // the upgrade probe ("2probe") was received
	ws          net.Conn      // the WebSocket once the transport is websocket
	reader      *wsReader     // c.ws's reader
	writing     bool          // the WebSocket writer goroutine is running
	writeFn     func()        // c.writeLoop, made once
	probeWS     net.Conn      // the WebSocket being probed during an upgrade
	// probeBusy: during an upgrade, the probe's reader holds bytes it has
	// not handled yet, or is handling them. It is true from the start of the
	// upgrade until the reader parks with an empty read buffer, and again
	// from the moment the reader wakes up to read.
	probeBusy bool
	// probePending reports bytes waiting in the kernel buffer of the probe's
	// socket; nil when that cannot be known.
	probePending func() bool
	// probeAnswered is when (Server.now) "3probe" was written on the last
	// upgrade's WebSocket.
	probeAnswered time.Duration
	closeReason   string
	closeCause    error

	// wdl is when (Server.now) the writer last set the write deadline,
	// if wdlSet; owned by the writer goroutine of the moment.
	wdl    time.Duration
	wdlSet bool
}

// ID returns the session id.
func (c *Conn) ID() string { return c.id }

// Request returns the handshake request (headers, URL, RemoteAddr). Its body
// is not readable.
func (c *Conn) Request() *http.Request {
	c.reqOnce.Do(func() { c.req, c.hs = c.hs.request(), nil })
	return c.req
}

// Transport returns the current transport, "polling" or "websocket".
func (c *Conn) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.transport == transportWebSocket {
		return "websocket"
	}
	return "polling"
}

// OnMessage sets the handler of incoming messages. Set it inside
// Config.OnConnection. It is called sequentially (one call at a time per
// connection) in arrival order; data is only valid during the call.
func (c *Conn) OnMessage(fn func(data []byte, binary bool)) {
	c.mu.Lock()
	c.onMessage = fn
	c.mu.Unlock()
}

// OnClose sets the handler called exactly once when the session closes, with
// the reason and the error that caused it, if any. Set it inside
// Config.OnConnection.
func (c *Conn) OnClose(fn func(reason string, cause error)) {
	c.mu.Lock()
	c.onClose = fn
	c.mu.Unlock()
}

// Send queues msgs for delivery, atomically (all or none, contiguous, in
// order). It never blocks. It returns ErrClosed once the session is closed.
// The queue takes msgs, whatever their size, while it holds at most
// Config.WriteQueueBytes; past that (a client that does not read as fast as
// it is sent to), Send closes the session with reason "transport error" and
// returns the cause, an error wrapping ErrQueueFull that tells the bytes
// queued and the bound.
func (c *Conn) Send(msgs ...*Message) error {
	queued, err := c.enqueue(msgs, false)
	if err == ErrQueueFull {
		err = fmt.Errorf("%w: %d bytes queued, over the bound of %d bytes: the client reads too slowly",
			ErrQueueFull, queued, c.srv.cfg.WriteQueueBytes)
		c.closeWith("transport error", err, closeAbort)
	}
	return err
}

// TrySend is Send for volatile messages: where Send would close the
// session, msgs are dropped and ErrQueueFull is returned; the session stays
// open.
func (c *Conn) TrySend(msgs ...*Message) error {
	_, err := c.enqueue(msgs, false)
	return err
}

// Close flushes the queued messages (bounded wait), sends the close packet
// and closes the session. OnClose receives reason. Closing a closed session
// does nothing.
func (c *Conn) Close(reason string) {
	c.closeWith(reason, nil, closeFlush)
}

// enqueue appends msgs to the queue and wakes the transport. Unless
// control, it refuses them with ErrQueueFull while the queue holds more than
// Config.WriteQueueBytes, and returns the bytes queued. The bound applies to
// what is queued before msgs, so that a message larger than the bound is
// still delivered to a client that keeps up; the queue holds at most the
// bound plus one call's messages.
func (c *Conn) enqueue(msgs []*Message, control bool) (queued int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return 0, ErrClosed
	}
	if !control && c.queued > c.srv.cfg.WriteQueueBytes {
		return c.queued, ErrQueueFull
	}
	for _, m := range msgs {
		if m.user {
			c.queued += m.queueCost()
		}
	}
	c.queue = append(c.queue, msgs...)
	c.kickLocked()
	return c.queued, nil
}

// kickLocked makes the transport deliver the queue: it wakes the pending
// polling GET or starts the WebSocket writer. c.mu must be held.
func (c *Conn) kickLocked() {
	if c.transport == transportWebSocket {
		if !c.writing && c.ws != nil && len(c.queue) > 0 {
			c.writing = true
			c.srv.track()
			if c.writeFn == nil {
				// Made once: "go c.writeLoop()" would allocate a closure
				// every time a writer starts.
				c.writeFn = c.writeLoop
			}
			go c.writeFn()
		}
		return
	}
	c.wakePollLocked()
}

// wakePollLocked wakes the pending long-polling GET, if any. c.mu must be
// held.
func (c *Conn) wakePollLocked() {
	if c.pollWaiting && c.pollWake != nil {
		select {
		case c.pollWake <- struct{}{}:
		default:
		}
	}
}

// upgradeIncomingLocked reports whether the WebSocket being probed has
// received bytes that its reader has not handled yet (the probe, the upgrade
// packet): a GET lets them be handled before it decides how to answer.
// c.mu must be held; the reader changes probeBusy only under it, and the
// bytes it has not taken from the kernel yet are seen by probePending, so no
// arrival goes unnoticed.
func (c *Conn) upgradeIncomingLocked() bool {
	return c.probeBusy || (c.probePending != nil && c.probePending())
}

// takeLocked removes and returns the whole queue; the queue continues in
// the spare array, if any. c.mu must be held.
func (c *Conn) takeLocked() []*Message {
	q := c.queue
	c.queue, c.spare = c.spare, nil
	c.queued = 0
	return q
}

// maxSpareQueue: larger taken queues are not kept as the spare.
const maxSpareQueue = 64

// recycleLocked keeps q, a queue taken and delivered, as the spare array
// of the next queue, so that a connection that receives steadily does not
// allocate a queue per delivery. c.mu must be held.
func (c *Conn) recycleLocked(q []*Message) {
	if cap(q) <= maxSpareQueue && c.spare == nil {
		clear(q)
		c.spare = q[:0]
	}
}

// alive records a sign of life.
func (c *Conn) alive() { c.lastSeen.Store(int64(c.srv.now())) }

// deadline returns when the session times out without a sign of life.
func (c *Conn) deadline() time.Duration {
	return time.Duration(c.lastSeen.Load()) + c.srv.cfg.PingInterval + c.srv.cfg.PingTimeout
}

// expired reports whether the heartbeat deadline has passed.
func (c *Conn) expired() bool { return c.srv.now() >= c.deadline() }

// startHeartbeat arms the heartbeat timer.
func (c *Conn) startHeartbeat() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return
	}
	c.hb = time.AfterFunc(min(c.nextPing, c.deadline())-c.srv.now(), c.heartbeat)
}

// heartbeat runs on the timer: it sends pings every PingInterval and closes
// the session once its deadline passed.
func (c *Conn) heartbeat() {
	now := c.srv.now()
	dl := c.deadline()
	if now >= dl {
		c.closeWith("ping timeout", nil, closeAbort)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return
	}
	if now >= c.nextPing {
		c.queue = append(c.queue, msgPing)
		c.kickLocked()
		for c.nextPing <= now {
			c.nextPing += c.srv.cfg.PingInterval
		}
	}
	c.hb.Reset(min(c.nextPing, dl) - now)
}

// shutdownLinger bounds how long Shutdown keeps a polling session without a
// pending GET so that the client's next GET collects the close packet.
const shutdownLinger = time.Second

// How closeWith ends a session.
const (
	// closeFlush: deliver the queue, then the close packet (bounded). A
	// polling session without a pending GET lingers until the next GET
	// collects them, or PingInterval+PingTimeout.
	closeFlush = iota
	// closeAbort: drop the queue, send nothing; a pending GET ends with a
	// noop.
	closeAbort
	// closeClientClose: the client sent a close packet. Like closeAbort, but
	// a polling session lingers so that the client's next GET ends with a
	// noop.
	closeClientClose
	// closeOverlap: a second GET came while one was pending; the pending
	// one ends with a close packet.
	closeOverlap
)

// closeWith closes the session once, in the given mode. OnClose runs on the
// calling goroutine, tracked: Shutdown returns only after every OnClose
// has returned, also those that a Close on another goroutine (a timer,
// a handler) started before Shutdown reached the session.
func (c *Conn) closeWith(reason string, cause error, mode int) {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	// Tracked before the state changes, under mu: a Shutdown that finds
	// the session closed already counts this close as running.
	c.srv.track()
	defer c.srv.untrack()
	c.closeReason, c.closeCause = reason, cause
	if c.hb != nil {
		c.hb.Stop()
	}
	if c.probeWS != nil {
		_ = c.probeWS.Close()
	}
	if mode != closeFlush {
		c.queue = nil
		c.queued = 0
	}
	last := msgNoop
	if mode == closeFlush || mode == closeOverlap {
		last = msgClose
	}
	forgetNow := true
	switch {
	case c.transport == transportWebSocket && c.ws != nil:
		c.state = stateClosed
		if mode == closeFlush {
			c.queue = append(c.queue, msgClose)
			c.kickLocked() // the writer closes the socket after the close packet
		} else {
			_ = c.ws.Close()
		}
	case c.pollWaiting:
		c.state = stateClosing
		c.queue = append(c.queue, last)
		c.wakePollLocked() // the GET delivers, then forgets the session
		forgetNow = false
	case mode == closeFlush || mode == closeClientClose:
		// No GET pending: keep the session a little for the client's next
		// GET, which a client sends as soon as its previous one returned.
		// During Shutdown the wait is short and Shutdown waits for it, so
		// that clients see a close packet rather than a refused request.
		c.state = stateClosing
		c.queue = append(c.queue, last)
		linger := c.srv.cfg.PingInterval + c.srv.cfg.PingTimeout
		if c.isShuttingDown() {
			linger = min(linger, shutdownLinger)
			c.lingerHeld = true
			c.srv.track()
		}
		c.drainTimer = time.AfterFunc(linger, c.forget)
		forgetNow = false
	default:
		c.state = stateClosed
	}
	fn := c.onClose
	reader := c.reader
	c.mu.Unlock()

	if reader != nil && c.srv.idlePoller().forget(reader) {
		c.srv.untrack() // the armed reader is gone with the connection
	}
	c.srv.open.Add(-1)
	if forgetNow {
		c.srv.remove(c)
	}
	c.srv.log.Debug("engineio: session closed", "sid", c.id, "reason", reason, "cause", cause)
	if fn != nil {
		fn(reason, cause)
	}
}

// isShuttingDown reports whether Shutdown started.
func (c *Conn) isShuttingDown() bool {
	c.srv.mu.RLock()
	defer c.srv.mu.RUnlock()
	return c.srv.shutdown
}

// forget removes a closing session for good.
func (c *Conn) forget() {
	c.mu.Lock()
	c.state = stateClosed
	c.queue = nil
	c.queued = 0
	if c.drainTimer != nil {
		c.drainTimer.Stop()
	}
	held := c.lingerHeld
	c.lingerHeld = false
	c.mu.Unlock()
	c.srv.remove(c)
	if held {
		c.srv.untrack()
	}
}

// handlePacket acts on one incoming packet. It returns false once the
// session is closed (stop reading). c.recvMu must be held.
func (c *Conn) handlePacket(p Packet) bool {
	c.alive()
	switch p.Type {
	case typeMessage:
		c.mu.Lock()
		fn, open := c.onMessage, c.state == stateOpen
		c.mu.Unlock()
		if !open {
			return false
		}
		if fn != nil {
			fn(p.Data, p.Binary)
		}
	case typeClose:
		c.closeWith("transport close", nil, closeClientClose)
		return false
	case typePing:
		// Not sent by v4 clients outside the upgrade probe: answer anyway.
		_, _ = c.enqueue([]*Message{controlMessage(typePong, string(p.Data))}, true)
	}
	// pong, noop, upgrade (outside an upgrade) and open: only signs of life.
	return true
}
