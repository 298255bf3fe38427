//go:build !linux

package engineio

import (
	"net"
	"syscall"
)

// rawConn is only implemented on Linux; elsewhere every reader blocks in its
// read, on its own goroutine.
func rawConn(net.Conn) syscall.RawConn { return nil }

func waitReadable(syscall.RawConn) {}

func pendingBytes(syscall.RawConn) bool { return true }

// poller is only implemented on Linux.
type poller struct{ done chan struct{} }

func newPoller(*Server) *poller           { return nil }
func (p *poller) arm(*wsReader) armResult { return armUnavailable }
func (p *poller) forget(*wsReader) bool   { return false }
func (p *poller) stop()                   {}
