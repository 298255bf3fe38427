package storage

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// mappedKiB returns the resident KiB of this process's mappings of path.
func mappedKiB(tb testing.TB, path string) int {
	tb.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		tb.Skip(err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[5] == path
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok && in {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				tb.Fatal(err)
			}
			total += n
		}
	}
	return total
}

// TestCheckpointReleasesMap: once a checkpoint has run, the pages of the
// file that earlier reads mapped are no longer resident in this process
// (they stay in the page cache), and reading them again still works.
func TestCheckpointReleasesMap(t *testing.T) {
	if testNoJournal {
		t.Skip("journal only")
	}
	ctx := context.Background()
	s := openTest(t, Options{CheckpointInterval: 1 << 40, CheckpointBytes: 1 << 30})
	h := makeHistory(t, 94, 400)
	const docs = 40
	for d := range docs {
		commitT(t, s, Write{Doc: fmt.Sprintf("doc-%02d", d), Records: h.recs})
	}
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	readAll := func() {
		for d := range docs {
			recs, err := s.Records(ctx, fmt.Sprintf("doc-%02d", d), 0, 1000)
			if err != nil || len(recs) != 400 {
				t.Fatalf("doc %d: %d records, %v", d, len(recs), err)
			}
		}
	}
	readAll()
	touched := mappedKiB(t, s.Path())
	if touched < 1024 {
		t.Fatalf("reading %d documents mapped only %d KiB", docs, touched)
	}
	commitT(t, s, Write{Doc: "other", Records: h.recs[:1]})
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if after := mappedKiB(t, s.Path()); after > touched/4 {
		t.Fatalf("after a checkpoint %d KiB of the file are resident, before %d", after, touched)
	}
	readAll() // the released pages read back the same bytes
}
