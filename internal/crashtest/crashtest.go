package crashtest

import (
	"bufio"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Kill describes one child run.
type Kill struct {
	// Env is added to the test process's environment for the child.
	Env []string
	// After its first line the child runs for Min plus a random part of
	// Spread before it is killed.
	Min, Spread time.Duration
	// Rand picks the moment (nil: a new random source).
	Rand *rand.Rand
}

// firstLineTimeout bounds the wait for the child's first line.
const firstLineTimeout = 20 * time.Second

// KillAtRandom runs the test binary as a child with k.Env, kills it with
// SIGKILL at a random moment after its first line and returns the complete
// lines it printed, in order. It fails tb if the child prints nothing
// within 20 s or does not die by the SIGKILL (it exited on its own, or
// crashed).
func KillAtRandom(tb testing.TB, k Kill) []string {
	tb.Helper()
	r := k.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), k.Env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	lines := make(chan string, 1<<16)
	readDone := make(chan struct{})
	var got []string
	go func() {
		defer close(readDone)
		br := bufio.NewReader(stdout)
		for {
			line, err := br.ReadString('\n')
			if err != nil { // a partial last line was never acknowledged
				return
			}
			lines <- line[:len(line)-1]
		}
	}()
	select {
	case l := <-lines:
		got = append(got, l)
	case <-readDone:
		cmd.Wait()
		tb.Fatalf("child ended without a line: %v", cmd.ProcessState)
	case <-time.After(firstLineTimeout):
		cmd.Process.Kill()
		cmd.Wait()
		tb.Fatalf("child printed nothing in %v", firstLineTimeout)
	}
	wait := k.Min
	if k.Spread > 0 {
		wait += time.Duration(r.Int64N(int64(k.Spread)))
	}
	time.Sleep(wait)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
	<-readDone
	cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		tb.Fatalf("child did not die by SIGKILL: %v", cmd.ProcessState)
	}
	for {
		select {
		case l := <-lines:
			got = append(got, l)
		default:
			return got
		}
	}
}
