//go:build linux

package engineio

import (
	"net"
	"syscall"
)

// idleWaiter returns a function that blocks until conn has bytes to read (or
// an error or EOF is pending), without reading them. The reader goroutine
// parks there between messages with a shallow stack, which the GC then
// shrinks to its minimum. It returns nil when conn has no file descriptor
// to wait on (for example TLS), and the reader simply blocks in its read.
func idleWaiter(conn net.Conn) func() {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	if _, isTCP := conn.(*net.TCPConn); !isTCP {
		if _, isUnix := conn.(*net.UnixConn); !isUnix {
			return nil
		}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var one [1]byte
	ready := func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EINTR
	}
	return func() { _ = rc.Read(ready) }
}

// pendingPeeker returns a function that reports, without blocking or
// reading, whether conn has bytes (or EOF, or an error) waiting; nil when
// conn has no file descriptor to peek at.
func pendingPeeker(conn net.Conn) func() bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func() bool {
		var one [1]byte
		ready := true
		err := rc.Control(func(fd uintptr) {
			_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			ready = err != syscall.EAGAIN
		})
		return err != nil || ready
	}
}
