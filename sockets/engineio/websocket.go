package engineio

import (
	"bytes"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

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
	c.startReader(nc, nil)
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
	c.startReader(nc, r)
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
