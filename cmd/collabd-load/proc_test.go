//go:build linux

package main

import (
	"os"
	"testing"
)

func TestProcReadersOnSelf(t *testing.T) {
	pid := os.Getpid()
	rss, hwm, err := procMem(pid)
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || hwm < rss {
		t.Fatalf("rss=%d hwm=%d: want 0 < rss <= hwm", rss, hwm)
	}
	// burn a little CPU so the counter is non-zero
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i
	}
	_ = x
	cpu, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if cpu <= 0 {
		t.Fatalf("cpu=%v, want > 0", cpu)
	}
	if _, err := procCPU(1 << 30); err == nil {
		t.Fatal("procCPU of a missing pid: want an error")
	}
}

func TestRaiseFileLimit(t *testing.T) {
	n, err := raiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if n < 1024 {
		t.Fatalf("soft limit %d after raising", n)
	}
}
