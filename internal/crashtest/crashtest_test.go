package crashtest

import (
	"os"
	"slices"
	"testing"
	"time"
)

const childEnv = "CRASHTEST_CHILD"

// TestMain makes the test binary the child when childEnv is set: five
// lines, then half a line, then nothing until it is killed.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		for _, l := range []string{"a 1\n", "b 2\n", "c 3\n", "d 4\n", "e 5\n", "half a li"} {
			os.Stdout.WriteString(l)
		}
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}

// TestKillAtRandom: the child's complete lines come back in order without
// their newlines, the half line does not, and the child died by SIGKILL
// (KillAtRandom fails the test otherwise).
func TestKillAtRandom(t *testing.T) {
	got := KillAtRandom(t, Kill{Env: []string{childEnv + "=1"}, Min: 50 * time.Millisecond, Spread: 20 * time.Millisecond})
	if want := []string{"a 1", "b 2", "c 3", "d 4", "e 5"}; !slices.Equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
}
