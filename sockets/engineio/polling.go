package engineio

import (
	"io"
	"net/http"
	"time"
)

// upgradeGrace bounds how long a GET that arrives while the client's upgrade
// packet is being read waits for the upgrade to complete.
const upgradeGrace = 100 * time.Millisecond

// upgradeSettle is how long a GET that arrives after the probe waits for an
// upgrade packet that may still be on its way.
const upgradeSettle = 20 * time.Millisecond

// servePoll answers a long-polling GET: it waits for packets to send (or for
// the close, the upgrade, or the client going away) and writes them as one
// payload.
func (c *Conn) servePoll(w http.ResponseWriter, r *http.Request) {
	c.srv.track()
	defer c.srv.untrack()

	c.mu.Lock()
	if c.transport != transportPolling {
		c.mu.Unlock()
		writeError(w, codeBadRequest)
		return
	}
	if c.state == stateClosed {
		c.mu.Unlock()
		writeError(w, codeUnknownSID)
		return
	}
	if c.pollWaiting {
		c.mu.Unlock()
		c.closeWith("transport error", ErrDuplicatePoll, closeOverlap)
		writeError(w, codeBadRequest)
		return
	}
	c.pollWaiting = true
	if c.pollWake == nil {
		c.pollWake = make(chan struct{}, 1)
	}
	wake := c.pollWake
	// A GET that arrives after the upgrade probe was answered gets a noop
	// soon (after upgradeSettle), unless the client's next packet (the
	// upgrade) has reached the probe's socket: then it waits, up to
	// upgradeGrace, for the upgrade to complete and is refused. The socket
	// is peeked before the flag is read; the probe's reader sets the flag
	// before it consumes anything, so no arrival falls between the two. The
	// settle time covers an upgrade packet that the kernel delivers after
	// the GET although the client sent it first (another connection).
	var grace <-chan time.Time
	arrivedProbed, extended := c.probed, false
	if arrivedProbed {
		d := upgradeSettle
		if c.probePending == nil || c.probePending() || c.upgradeIncoming {
			d, extended = upgradeGrace, true
		}
		t := time.NewTimer(d)
		defer t.Stop()
		grace = t.C
	}
	for len(c.queue) == 0 && c.state == stateOpen && c.transport == transportPolling &&
		(!c.probed || grace != nil) {
		c.mu.Unlock()
		select {
		case <-grace:
			grace = nil
			c.mu.Lock()
			incoming := c.upgradeIncoming || (c.probePending != nil && c.probePending())
			c.mu.Unlock()
			if incoming && !extended {
				extended = true
				t := time.NewTimer(upgradeGrace)
				defer t.Stop()
				grace = t.C
			}
		case <-wake:
		case <-r.Context().Done():
			c.mu.Lock()
			c.pollWaiting = false
			open := c.state == stateOpen
			c.mu.Unlock()
			if open {
				c.closeWith("transport close", nil, closeAbort)
			} else {
				c.forget()
			}
			return
		}
		c.mu.Lock()
	}
	if arrivedProbed && c.transport != transportPolling {
		c.pollWaiting = false
		c.mu.Unlock()
		writeError(w, codeBadRequest)
		return
	}
	var msgs []*Message
	if c.transport == transportPolling {
		msgs = c.takeLocked()
	}
	if len(msgs) == 0 {
		msgs = []*Message{msgNoop}
	}
	c.pollWaiting = false
	forget := c.state == stateClosing
	if forget && len(msgs) > 1 && msgs[len(msgs)-1] == msgClose && !c.isShuttingDown() {
		// socket.io-client acts on a close packet at once but hands the
		// messages decoded with it to its sockets a tick later, by which
		// time they count as received while disconnected (recovery offsets
		// are lost). So the close packet waits for the next GET, as in Node.
		c.queue = append(c.queue, msgClose)
		msgs = msgs[:len(msgs)-1]
		forget = false
		if c.drainTimer == nil {
			c.drainTimer = time.AfterFunc(c.srv.cfg.PingInterval+c.srv.cfg.PingTimeout, c.forget)
		}
	}
	c.mu.Unlock()
	if forget {
		c.forget()
	}
	writePollingBody(w, EncodePayload(msgs))
}

// servePost reads a long-polling POST and delivers its packets.
func (c *Conn) servePost(w http.ResponseWriter, r *http.Request) {
	c.srv.track()
	defer c.srv.untrack()

	c.mu.Lock()
	transport, state := c.transport, c.state
	c.mu.Unlock()
	if transport != transportPolling {
		writeError(w, codeBadRequest)
		return
	}
	if state != stateOpen {
		writeError(w, codeUnknownSID)
		return
	}
	max := c.srv.cfg.MaxPayload
	if r.ContentLength > int64(max) {
		c.closeWith("transport error", ErrPayloadTooLarge, closeAbort)
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
	if err != nil {
		c.closeWith("transport error", err, closeAbort)
		writeError(w, codeBadRequest)
		return
	}
	if len(body) > max {
		c.closeWith("transport error", ErrPayloadTooLarge, closeAbort)
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	pkts, err := DecodePayload(body)
	if err != nil {
		c.closeWith("parse error", err, closeAbort)
		writeError(w, codeBadRequest)
		return
	}
	c.recvMu.Lock()
	for _, p := range pkts {
		if !c.handlePacket(p) {
			break
		}
	}
	c.recvMu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}
