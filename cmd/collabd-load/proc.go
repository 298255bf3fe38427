//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of utime/stime in /proc/PID/stat
// (100 on every architecture Go supports on Linux).
const clockTicks = 100

// procMem reads VmRSS and VmHWM (peak RSS) of a process, in bytes.
func procMem(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &rss
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &hwm
		default:
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parsing %q: %w", line, err)
		}
		*dst = kb * 1024
	}
	return rss, hwm, sc.Err()
}

// procRSSSplit reads RssAnon and RssFile+RssShmem of a process, in bytes.
func procRSSSplit(pid int) (anon, file int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "RssAnon:":
			anon = kb * 1024
		case "RssFile:", "RssShmem:":
			file += kb * 1024
		}
	}
	return anon, file, nil
}

// procCPU reads the user+system CPU time a process has used so far.
func procCPU(pid int) (time.Duration, error) {
	u, s, err := procCPUSplit(pid)
	return u + s, err
}

// procCPUSplit reads the user and the system CPU time a process has used.
func procCPUSplit(pid int) (user, system time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
	if len(fields) < 13 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("parsing /proc/%d/stat: %v %v", pid, err1, err2)
	}
	return time.Duration(ut) * time.Second / clockTicks, time.Duration(st) * time.Second / clockTicks, nil
}

// procSyscalls reads the read-type and write-type system calls a process
// has made so far (syscr and syscw of /proc/PID/io: read, recvfrom, pread;
// write, writev, pwrite, sendto...).
func procSyscalls(pid int) (reads, writes uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, 0, err
	}
	var haveR, haveW bool
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch name {
		case "syscr":
			reads, err = strconv.ParseUint(strings.TrimSpace(value), 10, 64)
			haveR = err == nil
		case "syscw":
			writes, err = strconv.ParseUint(strings.TrimSpace(value), 10, 64)
			haveW = err == nil
		}
	}
	if !haveR || !haveW {
		return 0, 0, fmt.Errorf("no syscr/syscw in /proc/%d/io", pid)
	}
	return reads, writes, nil
}

// procContextSwitches sums the voluntary and involuntary context switches
// of every thread of a process (/proc/PID/task/*/status). Threads that
// ended are not counted: read it over a window in which the server's
// threads live on (the Go runtime keeps its Ms).
func procContextSwitches(pid int) (uint64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread ended meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			name, value, ok := strings.Cut(line, ":")
			if !ok || (name != "voluntary_ctxt_switches" && name != "nonvoluntary_ctxt_switches") {
				continue
			}
			n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/task/%s/status: %v", pid, t.Name(), err)
			}
			total += n
		}
	}
	return total, nil
}

// raiseFileLimit lifts RLIMIT_NOFILE to its hard limit (children inherit it)
// and returns the new soft limit.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return lim.Cur, nil
}

// hostCPU is the machine-wide CPU time from the "cpu" line of /proc/stat,
// in clock ticks summed over all CPUs.
type hostCPU struct {
	busy, idle, steal uint64 // idle includes iowait
}

// total is every tick the CPUs existed for: run, idle, or taken by the
// hypervisor.
func (h hostCPU) total() uint64 { return h.busy + h.idle + h.steal }

// readHostCPU reads /proc/stat.
func readHostCPU() (hostCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostCPU{}, err
	}
	return parseHostCPU(b)
}

// parseHostCPU parses the aggregate "cpu" line of /proc/stat: user nice
// system idle iowait irq softirq steal (guest time is already counted in
// user and nice).
func parseHostCPU(stat []byte) (hostCPU, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return hostCPU{}, fmt.Errorf("/proc/stat: no aggregate cpu line in %q", line)
	}
	var v [8]uint64
	for i := range v {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return hostCPU{}, fmt.Errorf("/proc/stat: field %d of %q: %w", i+1, line, err)
		}
		v[i] = n
	}
	return hostCPU{
		busy:  v[0] + v[1] + v[2] + v[5] + v[6],
		idle:  v[3] + v[4],
		steal: v[7],
	}, nil
}

// hostShares returns the busy, idle and stolen shares of the CPU time
// between two readings (zeros when no time passed).
func hostShares(a, b hostCPU) (busy, idle, steal float64) {
	total := float64(b.total() - a.total())
	if total <= 0 {
		return 0, 0, 0
	}
	return float64(b.busy-a.busy) / total, float64(b.idle-a.idle) / total, float64(b.steal-a.steal) / total
}

// loadAvg returns the 1, 5 and 15 minute load averages of /proc/loadavg
// ("?" when unreadable).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// selfCPU returns the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
