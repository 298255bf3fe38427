package sioclient

import "syscall"

// setRecvBuffer sets SO_RCVBUF on the socket fd.
func setRecvBuffer(fd uintptr, n int) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}
