package storage

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// natsChildEnv makes TestJetStreamServerChild run an embedded nats-server
// storing in the directory it names, with SyncAlways, until it is killed.
const natsChildEnv = "COLLABD_STORAGE_NATS_CHILD"

// TestJetStreamServerChild is the child process of TestJetStreamKilled.
func TestJetStreamServerChild(t *testing.T) {
	dir := os.Getenv(natsChildEnv)
	if dir == "" {
		t.Skip("child process of TestJetStreamKilled")
	}
	srv := runNATS(t, natsOpts(dir, true))
	fmt.Println(srv.ClientURL())
	select {} // until SIGKILL
}

// startNATSChild runs the test binary as a nats-server child on dir and
// returns its client URL and the child (killed at cleanup).
func startNATSChild(tb testing.TB, dir string) (string, *exec.Cmd) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestJetStreamServerChild$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), natsChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		for sc.Scan() { // drain
		}
	}()
	select {
	case url, ok := <-line:
		if !ok || !strings.HasPrefix(url, "nats://") {
			tb.Fatalf("child printed %q", url)
		}
		return url, cmd
	case <-time.After(20 * time.Second):
		tb.Fatal("child printed nothing")
	}
	return "", nil
}

// TestJetStreamKilled: a nats-server killed with SIGKILL while appends
// flow keeps every acknowledged record, and its recovery leaves the logs
// gap-free with their snapshots. A SIGKILL keeps the OS page cache, so
// this tests JetStream's recovery from an unclean stop, not the fsync:
// the same test passed with the child's SyncAlways off (three runs).
// Surviving a power loss is what SyncAlways or R3 is for.
func TestJetStreamKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("child processes")
	}
	dir := t.TempDir()
	url, cmd := startNATSChild(t, dir)
	cfg := JetStreamConfig{Timeout: 500 * time.Millisecond, Attempts: 2}
	s := openJSTest(t, url, cfg)
	ctx := context.Background()
	docs := []string{"k.a", "k.b", "k.c"}
	acked := make([]atomic.Uint64, len(docs)) // head acknowledged per document
	var total atomic.Int64
	var wg sync.WaitGroup
	for i, doc := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rev := uint64(1); ; rev++ {
				w := Write{Doc: doc, Records: []Record{rec(rev, "c", rev, int(rev-1), "x")}}
				if rev%50 == 0 {
					w.Snapshot = &Snapshot{Rev: rev, Text: strings.Repeat("x", int(rev))}
				}
				if err := s.Commit(ctx, []Write{w}); err != nil {
					return // the server is gone
				}
				acked[i].Store(rev)
				total.Add(1)
			}
		}()
	}
	for total.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Duration(time.Now().UnixNano()%50) * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
	wg.Wait()

	url2, _ := startNATSChild(t, dir)
	s2 := openJSTest(t, url2, JetStreamConfig{})
	for i, doc := range docs {
		want := acked[i].Load()
		m, err := s2.Meta(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		// The append in flight at the kill may be in, unacknowledged.
		if m.Head < want || m.Head > want+1 {
			t.Fatalf("%s: head %d after the kill, %d acknowledged", doc, m.Head, want)
		}
		text, err := s2.TextAt(ctx, doc, m.Head)
		if err != nil || text != strings.Repeat("x", int(m.Head)) {
			t.Fatalf("%s: text at %d: %v", doc, m.Head, err)
		}
		t.Logf("%s: %d acknowledged, head %d", doc, want, m.Head)
	}
	if err := s2.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
