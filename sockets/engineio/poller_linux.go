//go:build linux

package engineio

import (
	"net"
	"sync"
	"syscall"
)

// rawConn returns the raw connection of a TCP or Unix socket, whose
// readability the engine can wait for without reading; nil for any other
// connection (for example TLS), whose reader then blocks in its read.
func rawConn(conn net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := conn.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// peekReady reports whether fd has bytes to read, an EOF or an error
// pending, without reading them.
func peekReady(fd uintptr) bool {
	var one [1]byte
	_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN && err != syscall.EINTR
}

// waitReadable blocks until rc is readable (or its read deadline passes,
// or it is closed), reading nothing: the caller parks in a shallow wait.
func waitReadable(rc syscall.RawConn) { _ = rc.Read(peekReady) }

// pendingBytes reports, without blocking or reading, whether rc has bytes
// (or EOF, or an error) waiting.
func pendingBytes(rc syscall.RawConn) bool {
	ready := true
	err := rc.Control(func(fd uintptr) { ready = peekReady(fd) })
	return err != nil || ready
}

// poller parks the readers of idle WebSockets without a goroutine each: one
// goroutine per Server waits in epoll_wait for all of them. A connection is
// armed (EPOLLONESHOT) when its reader has handled everything it received;
// when bytes arrive, the poller starts a reader goroutine for it, which
// arms it again once done. The registration is keyed by an id, never by
// the file descriptor, and every epoll_ctl runs inside RawConn.Control, so
// a descriptor closed and reused meanwhile is never touched.
type poller struct {
	srv  *Server
	epfd int
	wake [2]int // pipe: a byte on wake[1] stops the loop

	done chan struct{} // closed when the loop has ended

	mu      sync.Mutex           // guards readers, next and stopped
	readers map[uint32]*wsReader // armed readers by id
	next    uint32
	stopped bool
}

// pollerStopID is the registration id of the wake pipe.
const pollerStopID = 0

// newPoller starts a poller for s; it returns nil if epoll is unavailable.
// Its goroutine runs until stop.
func newPoller(s *Server) *poller {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	p := &poller{srv: s, epfd: epfd, readers: make(map[uint32]*wsReader), done: make(chan struct{})}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		_ = syscall.Close(epfd)
		return nil
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: pollerStopID}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.closeFDs()
		return nil
	}
	go p.loop()
	return p
}

func (p *poller) closeFDs() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	_ = syscall.Close(p.epfd)
	_ = syscall.Close(p.wake[0])
	_ = syscall.Close(p.wake[1])
}

func (p *poller) loop() {
	defer close(p.done)
	defer p.closeFDs()
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			p.srv.log.Error("engineio: epoll_wait failed; idle readers fall back to goroutines", "err", err)
			p.drain()
			return
		}
		for _, ev := range events[:n] {
			id := uint32(ev.Fd)
			if id == pollerStopID {
				p.drain() // nothing should be armed any more; be sure
				return
			}
			p.mu.Lock()
			r := p.readers[id]
			delete(p.readers, id)
			p.mu.Unlock()
			if r != nil {
				go r.run(nil) // the armed reader's tracking goes with it
			}
		}
	}
}

// drain stops arming and starts a reader for every armed connection: after
// stop, and after a failure of epoll_wait (which should never happen).
func (p *poller) drain() {
	p.mu.Lock()
	p.stopped = true
	readers := p.readers
	p.readers = nil
	p.mu.Unlock()
	for _, r := range readers {
		go r.run(nil)
	}
}

// arm makes the poller start r's next run once r's WebSocket is readable
// (level-triggered: bytes already waiting count). It
// returns armed, or armClosed when the session is closed (the reader just
// stops: closeWith has forgotten it already, or will find nothing), or
// armUnavailable (no poller, no raw connection, poller stopped, descriptor
// closed): the caller waits on a goroutine instead. After armed, the caller
// must not touch the reader's state any more.
func (p *poller) arm(r *wsReader) armResult {
	if p == nil || r.rc == nil {
		return armUnavailable
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return armUnavailable
	}
	// Checked under p.mu, which closeWith's forget takes after closing:
	// either the close finds the registration, or this sees the close.
	r.c.mu.Lock()
	open := r.c.state == stateOpen
	r.c.mu.Unlock()
	if !open {
		return armClosed
	}
	if r.pollID == 0 {
		for {
			p.next++
			if p.next != pollerStopID && p.readers[p.next] == nil {
				break
			}
		}
		r.pollID = p.next
	}
	id := r.pollID
	op := syscall.EPOLL_CTL_MOD
	if !r.pollAdded {
		op = syscall.EPOLL_CTL_ADD
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(id)}
	var cerr error
	// Under p.mu: the event cannot be taken before the map says whose it
	// is, and the poller's descriptors are not closed meanwhile.
	err := r.rc.Control(func(fd uintptr) { cerr = syscall.EpollCtl(p.epfd, op, int(fd), &ev) })
	if err != nil || cerr != nil {
		return armUnavailable // closed meanwhile, or refused
	}
	r.pollAdded = true
	p.readers[id] = r
	return armed
}

// forget drops r's armed registration, if any, and reports whether it did:
// the caller then ends the reader's tracking. A closed descriptor leaves
// the epoll set by itself.
func (p *poller) forget(r *wsReader) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.pollID == 0 || p.readers[r.pollID] != r {
		return false
	}
	delete(p.readers, r.pollID)
	return true
}

// stop ends the poller's goroutine; connections armed later wait on
// goroutines. The caller has closed (forgotten) every connection.
func (p *poller) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	_, _ = syscall.Write(p.wake[1], []byte{1})
}
