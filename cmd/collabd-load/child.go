//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// child is a server process started by the load program.
type child struct {
	cmd  *exec.Cmd
	Addr string // host:port it listens on
	PID  int
	done chan error // receives cmd.Wait's result once
}

// startChild runs argv (a program and its arguments) and waits (at most
// timeout) for its "listening on http://ADDR" line on stdout. The program
// must be the server itself, not a wrapper that forks it: its PID is the one
// whose memory and CPU time are read.
func startChild(ctx context.Context, timeout time.Duration, argv []string) (*child, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty server command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	// If the load program dies (killed, timeout), the server goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, PID: cmd.Process.Pid, done: make(chan error, 1)}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "listening on http://"); ok && !sent {
				addrc <- a
				sent = true
				continue
			}
			fmt.Fprintln(os.Stderr, "server:", line)
		}
		_, _ = io.Copy(io.Discard, out)
		c.done <- cmd.Wait()
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case c.Addr = <-addrc:
		return c, nil
	case err := <-c.done:
		return nil, fmt.Errorf("server exited before listening: %v", err)
	case <-t.C:
	case <-ctx.Done():
	}
	_ = cmd.Process.Kill()
	<-c.done
	return nil, errors.New("server did not start listening in time")
}

// stop asks the child to shut down (SIGTERM) and kills it if it is still
// running after grace.
func (c *child) stop(grace time.Duration) error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-c.done:
		return err
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("server pid %d did not stop within %v; killed", c.PID, grace)
	}
}
