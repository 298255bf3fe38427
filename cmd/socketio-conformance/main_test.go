package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestRunListensAndStops checks the program's life cycle in both modes: the
// "listening on" line, a working endpoint, and a clean return when the
// context (the signal) ends, with clients still connected.
func TestRunListensAndStops(t *testing.T) {
	for _, official := range []bool{false, true} {
		name := "interop"
		if official {
			name = "official"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, "127.0.0.1:0", official, pw)
				pw.Close()
			}()
			line, err := bufio.NewReader(pr).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			base, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
			if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
				t.Fatalf("first line %q", line)
			}
			go io.Copy(io.Discard, pr)

			ws := sioDial(t, base)
			sioConnect(t, ws, "", "")
			pollingSession(t, base, sioPath)
			if official {
				pollingSession(t, base, eioPath)
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("run did not return after the signal")
			}
			wsWaitClosed(t, ws, 2*time.Second)
		})
	}
}

func TestRunRefusesABusyAddress(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, "127.0.0.1:0", false, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimPrefix(strings.TrimSpace(line), "listening on http://")
	if err := run(context.Background(), addr, false, io.Discard); err == nil {
		t.Fatal("a second server on the same address started")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
