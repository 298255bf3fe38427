//go:build linux

package main

import (
	"os"
	"strings"
	"testing"
	"time"
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

// TestProcSyscallsCountsOwnWrites: the counters move by at least the
// writes this test makes.
func TestProcSyscallsCountsOwnWrites(t *testing.T) {
	pid := os.Getpid()
	r0, w0, err := procSyscalls(pid)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(t.TempDir() + "/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 100 {
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); err != nil {
		t.Fatal(err)
	}
	r1, w1, err := procSyscalls(pid)
	if err != nil {
		t.Fatal(err)
	}
	if w1-w0 < 100 || r1 == r0 {
		t.Fatalf("writes %d -> %d, reads %d -> %d: want at least 100 more writes and some reads", w0, w1, r0, r1)
	}
	if _, _, err := procSyscalls(1 << 30); err == nil {
		t.Fatal("procSyscalls of a missing pid: want an error")
	}
}

// TestProcContextSwitchesCounts: sleeping switches this process out, and
// the count moves.
func TestProcContextSwitchesCounts(t *testing.T) {
	pid := os.Getpid()
	n0, err := procContextSwitches(pid)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		time.Sleep(time.Millisecond)
	}
	n1, err := procContextSwitches(pid)
	if err != nil {
		t.Fatal(err)
	}
	if n1 < n0+10 {
		t.Fatalf("context switches %d -> %d after 20 sleeps", n0, n1)
	}
	if _, err := procContextSwitches(1 << 30); err == nil {
		t.Fatal("a missing pid: want an error")
	}
}

func TestParseHostCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       hostCPU
		bad        bool
	}{
		{"kernel 6", "cpu  100 5 50 1000 20 3 2 400 0 0\ncpu0 50 2 25 500 10 1 1 200 0 0\nintr 1\n",
			hostCPU{busy: 100 + 5 + 50 + 3 + 2, idle: 1000 + 20, steal: 400}, false},
		{"no trailing fields", "cpu 1 2 3 4 5 6 7 8\n", hostCPU{busy: 1 + 2 + 3 + 6 + 7, idle: 4 + 5, steal: 8}, false},
		{"per-cpu line first", "cpu0 1 2 3 4 5 6 7 8\n", hostCPU{}, true},
		{"short", "cpu 1 2 3\n", hostCPU{}, true},
		{"not a number", "cpu 1 2 x 4 5 6 7 8\n", hostCPU{}, true},
		{"empty", "", hostCPU{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseHostCPU([]byte(tc.stat))
			if (err != nil) != tc.bad || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v, error %v", got, err, tc.want, tc.bad)
			}
		})
	}
	busy, idle, steal := hostShares(hostCPU{busy: 10, idle: 10, steal: 0}, hostCPU{busy: 60, idle: 35, steal: 25})
	if busy != 0.5 || idle != 0.25 || steal != 0.25 {
		t.Fatalf("shares %v %v %v, want 0.5 0.25 0.25", busy, idle, steal)
	}
	if b, i, s := hostShares(hostCPU{busy: 1}, hostCPU{busy: 1}); b != 0 || i != 0 || s != 0 {
		t.Fatal("no time passed: want zero shares")
	}
	// This machine's own counters advance.
	a, err := readHostCPU()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	b, err := readHostCPU()
	if err != nil {
		t.Fatal(err)
	}
	if b.total() <= a.total() {
		t.Fatalf("/proc/stat did not advance: %+v then %+v", a, b)
	}
}

func TestProcRSSSplitOnSelf(t *testing.T) {
	anon, file, err := procRSSSplit(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	rss, _, err := procMem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// The two parts of the resident set, read a moment later than VmRSS.
	if anon <= 0 || file <= 0 || anon+file > 2*rss {
		t.Fatalf("anonymous %d, file-backed %d, VmRSS %d", anon, file, rss)
	}
	if _, _, err := procRSSSplit(1 << 30); err == nil {
		t.Fatal("a missing pid: want an error")
	}
}

func TestLoadAvgAndSelfCPU(t *testing.T) {
	if got := loadAvg(); len(strings.Fields(got)) != 3 {
		t.Fatalf("loadAvg() = %q, want three figures", got)
	}
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i
	}
	_ = x
	if selfCPU() <= 0 {
		t.Fatal("selfCPU() after a busy loop: want > 0")
	}
}
