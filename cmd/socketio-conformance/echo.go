package main

import (
	"bytes"

	"github.com/collabd/collabd/sockets/engineio"
)

// newEngineEcho returns the plain Engine.IO echo server of --official mode:
// every message comes back as is (text as text, binary as binary) and nothing
// else is ever sent.
func newEngineEcho(cfg engineio.Config) *engineio.Server {
	cfg.OnConnection = func(c *engineio.Conn) {
		c.OnMessage(func(data []byte, binary bool) {
			data = bytes.Clone(data) // data is only valid during the call
			if binary {
				_ = c.Send(engineio.NewBinaryMessage(data))
			} else {
				_ = c.Send(engineio.NewTextMessage(data))
			}
		})
	}
	return engineio.NewServer(cfg)
}
