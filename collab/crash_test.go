package collab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/internal/crashtest"
	"github.com/collabd/collabd/storage"
)

// crashChildEnv makes the test binary run crashChild instead of the tests:
// its value is the directory of the store.
const crashChildEnv = "COLLABD_CRASH_CHILD"

var crashDocs = []string{"c0", "c1", "c2"}

// crashChild submits ops through the real sequencer from a few goroutines
// and prints one line per acknowledged op: "doc client seq rev". It runs
// until it is killed (or 30 s, as a bound).
func crashChild(dir string) {
	store, err := storage.OpenBolt(filepath.Join(dir, "collabd.db"), crashStoreOptions(os.Getenv(crashChildEnv+"_ROUND")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	h, err := New(Config{Store: store, SnapshotEvery: 7, Retain: 50})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	round := os.Getenv(crashChildEnv + "_ROUND")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make(chan string, 1024)
	for w := range 6 {
		go func() {
			client := fmt.Sprintf("r%s-w%d", round, w)
			doc := crashDocs[w%len(crashDocs)]
			base, _, err := h.Text(ctx, doc)
			if err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
				os.Exit(2)
			}
			for seq := uint64(1); ctx.Err() == nil; seq++ {
				op := fmt.Sprintf(`["%s:%d;"]`, client, seq)
				rev, err := h.Submit(ctx, Submission{Doc: doc, Client: client, Seq: seq, BaseRev: base, Op: []byte(op)})
				if err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(2)
				}
				base = rev
				out <- fmt.Sprintf("%s %s %d %d\n", doc, client, seq, rev)
			}
		}()
	}
	for {
		select {
		case line := <-out:
			os.Stdout.WriteString(line) // one write per line: atomic on a pipe
		case <-ctx.Done():
			os.Exit(0)
		}
	}
}

// crashStoreOptions varies the store by round: the default journal; a
// journal with tiny checkpoint thresholds and segments, so that kills land
// in checkpoints, segment rotations and recycling; and (round 4) no
// journal, the fallback, on the file the journal rounds wrote.
func crashStoreOptions(round string) storage.Options {
	opts := storage.Options{Timeout: 5 * time.Second}
	switch round {
	case "1", "3":
		opts.CheckpointBytes = 8 << 10
		opts.CheckpointInterval = 2 * time.Millisecond
		opts.JournalSegmentSize = 64 << 10
	case "4":
		opts.NoJournal = true
	}
	return opts
}

type crashAck struct {
	doc, client string
	seq, rev    uint64
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var acks []crashAck
	for round := range 5 {
		// Killed at a random moment after the child has made some progress.
		lines := crashtest.KillAtRandom(t, crashtest.Kill{
			Env:    []string{crashChildEnv + "=" + dir, fmt.Sprintf("%s_ROUND=%d", crashChildEnv, round)},
			Min:    20 * time.Millisecond,
			Spread: 300 * time.Millisecond,
			Rand:   r,
		})
		n := 0
		for _, l := range lines {
			var a crashAck
			if _, err := fmt.Sscanf(strings.TrimSpace(l), "%s %s %d %d", &a.doc, &a.client, &a.seq, &a.rev); err != nil {
				t.Fatalf("bad line %q: %v", l, err)
			}
			acks = append(acks, a)
			n++
		}
		t.Logf("round %d: %d acknowledged ops before SIGKILL", round, n)
		verifyCrashStore(t, dir, acks)
	}
}

// verifyCrashStore reopens the store and checks that every acknowledged op
// is present at its revision, that no (client, seq) appears twice, and that
// each client's ops appear in the order it sent them.
func verifyCrashStore(t *testing.T, dir string, acks []crashAck) {
	t.Helper()
	ctx := context.Background()
	store, err := storage.OpenBolt(filepath.Join(dir, "collabd.db"), storage.Options{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer store.Close()
	if err := store.Check(ctx); err != nil {
		t.Fatalf("check after SIGKILL: %v", err)
	}
	logs := map[string][]storage.Record{}
	for _, doc := range crashDocs {
		recs, err := store.Records(ctx, doc, 0, 1<<20)
		if err != nil && CodeOf(storeError(err)) != contract.CodeNotFound {
			t.Fatal(err)
		}
		logs[doc] = recs
		seen := map[string]uint64{} // client:seq -> rev
		lastSeq := map[string]uint64{}
		for _, rec := range recs {
			key := fmt.Sprintf("%s:%d", rec.Client, rec.Seq)
			if prev, dup := seen[key]; dup {
				t.Fatalf("%s: op %s stored twice (revs %d and %d)", doc, key, prev, rec.Rev)
			}
			seen[key] = rec.Rev
			if rec.Seq != lastSeq[rec.Client]+1 {
				t.Fatalf("%s: client %s seq %d after %d", doc, rec.Client, rec.Seq, lastSeq[rec.Client])
			}
			lastSeq[rec.Client] = rec.Seq
			if want := fmt.Sprintf(`"%s;"]`, key); !strings.HasSuffix(string(rec.Op), want) {
				t.Fatalf("%s rev %d: op %s, want %s", doc, rec.Rev, rec.Op, want)
			}
		}
		text, err := store.TextAt(ctx, doc, uint64(len(recs)))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(text, ";"); got != len(recs) {
			t.Fatalf("%s: text holds %d ops, log %d", doc, got, len(recs))
		}
	}
	for _, a := range acks {
		recs := logs[a.doc]
		if a.rev == 0 || a.rev > uint64(len(recs)) {
			t.Fatalf("acknowledged %+v is missing (head %d)", a, len(recs))
		}
		if rec := recs[a.rev-1]; rec.Client != a.client || rec.Seq != a.seq {
			t.Fatalf("acknowledged %+v, stored %s:%d at that revision", a, rec.Client, rec.Seq)
		}
	}
}
