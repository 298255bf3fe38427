//go:build !linux

package engineio

import "net"

// idleWaiter is only implemented on Linux; elsewhere the reader blocks in
// its read.
func idleWaiter(net.Conn) func() { return nil }

// pendingPeeker is only implemented on Linux.
func pendingPeeker(net.Conn) func() bool { return nil }
