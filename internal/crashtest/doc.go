// Package crashtest kills a child process at a random moment, for crash
// safety tests.
//
// The child is the test binary itself, started again with an environment
// variable that the test package's TestMain or init recognizes: it does
// durable work and prints one line per acknowledgement on standard output.
// KillAtRandom waits for its first line, lets it run a random while, kills
// it with SIGKILL and returns every complete line it printed: exactly what
// it acknowledged before it died (a partial last line was never
// acknowledged). The caller then reopens the store and checks that every
// acknowledged piece of work is there.
//
// It is used by tests only; it runs one child at a time per call and is
// safe for concurrent use.
package crashtest
