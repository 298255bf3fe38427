package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dataFilesHolding returns the files under dir whose bytes contain marker.
func dataFilesHolding(tb testing.TB, dir, marker string) []string {
	tb.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(marker)) {
			found = append(found, p)
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return found
}

// TestPurgeAndCompactCommands purges a document through a running server
// (collabd purge), compacts the stopped server's data directory (collabd
// compact) and scans every file of it for the document's marker.
func TestPurgeAndCompactCommands(t *testing.T) {
	const marker = "PURGE-MARKER-5d1e0b"
	p := start(t, "", nil)
	var rev uint64
	text := ""
	for i := 0; i < 30; i++ {
		text += fmt.Sprintf("%s line %d\n", marker, i)
		rev = putDoc(t, p, "secret", text, rev)
	}
	putDoc(t, p, "kept", "kept text\n", 0)

	out, errOut, code := collabd(t, nil, "purge", "secret", "--data", p.data)
	if code != 0 || !strings.Contains(out, "purged secret") {
		t.Fatalf("purge via the server: %d %q %q", code, out, errOut)
	}
	if r, got := getDoc(t, p, "secret"); r != 0 || got != "" {
		t.Fatalf("after purge: rev %d %q", r, got)
	}
	if _, errOut, code = collabd(t, nil, "purge", "secret", "--data", p.data); code != 1 || !strings.Contains(errOut, "not_found") {
		t.Fatalf("purge of a missing document: %d %q", code, errOut)
	}
	if found := dataFilesHolding(t, p.data, marker); len(found) == 0 {
		t.Fatal("the marker is not on disk before the compaction: the scan proves nothing")
	}
	// Online, through the running server.
	out, errOut, code = collabd(t, nil, "compact", "--data", p.data)
	if code != 0 || !strings.Contains(out, "compacted "+p.url) {
		t.Fatalf("compact on a running server: %d %q %q", code, out, errOut)
	}
	if found := dataFilesHolding(t, p.data, marker); len(found) > 0 {
		t.Fatalf("marker still in %v after purge and online compact", found)
	}
	if _, got := getDoc(t, p, "kept"); got != "kept text\n" {
		t.Fatalf("kept document after the online compact: %q", got)
	}
	putDoc(t, p, "kept", "kept text\nmore\n", 1)
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// Offline, on the stopped server's directory.
	out, errOut, code = collabd(t, nil, "compact", "--data", p.data, "--json")
	var res struct{ BytesBefore, BytesAfter int64 }
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.BytesAfter >= res.BytesBefore || res.BytesAfter == 0 {
		t.Fatalf("compact: %d %q %q", code, out, errOut)
	}
	t.Logf("compact: %s", out)
	if found := dataFilesHolding(t, p.data, marker); len(found) > 0 {
		t.Fatalf("marker still in %v after purge and compact", found)
	}

	p = start(t, p.data, nil)
	if _, got := getDoc(t, p, "kept"); got != "kept text\nmore\n" {
		t.Fatalf("kept document after compact: %q", got)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// Offline purge, straight into the data file.
	out, errOut, code = collabd(t, nil, "purge", "kept", "--data", p.data)
	if code != 0 || !strings.Contains(out, "purged kept") {
		t.Fatalf("offline purge: %d %q %q", code, out, errOut)
	}
	if out, _, _ = collabd(t, nil, "cat", "kept", "--data", p.data); out != "" {
		t.Fatalf("cat after offline purge: %q", out)
	}
	if _, errOut, code = collabd(t, nil, "purge", "kept", "--data", p.data); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("offline purge of a missing document: %d %q", code, errOut)
	}
}

// TestCatVersion: collabd cat --version reads a named version through the
// running server and from the stopped server's file.
func TestCatVersion(t *testing.T) {
	p := start(t, "", nil)
	putDoc(t, p, "nv", "as sent\n", 0)
	if code, body, _ := httpDo(t, "POST", p.url+"api/docs/nv/versions", `{"name":"Sent to client"}`); code != 201 {
		t.Fatalf("create version: %d %s", code, body)
	}
	putDoc(t, p, "nv", "edited since\n", 1)
	check := func(t *testing.T) {
		out, errOut, code := collabd(t, nil, "cat", "nv", "--version", "Sent to client", "--data", p.data)
		if code != 0 || out != "as sent\n" {
			t.Fatalf("cat --version: %d %q %q", code, out, errOut)
		}
		out, _, _ = collabd(t, nil, "cat", "nv", "--version", "Sent to client", "--json", "--data", p.data)
		var v struct {
			Rev     uint64
			Version struct{ Name, User string }
		}
		if json.Unmarshal([]byte(out), &v) != nil || v.Rev != 1 || v.Version.Name != "Sent to client" {
			t.Fatalf("cat --version --json: %q", out)
		}
		if _, errOut, code := collabd(t, nil, "cat", "nv", "--version", "nope", "--data", p.data); code != 1 || !strings.Contains(errOut, "nope") {
			t.Fatalf("cat of a missing version: %d %q", code, errOut)
		}
		if _, _, code := collabd(t, nil, "cat", "nv", "--version", "x", "--rev", "1", "--data", p.data); code != 1 {
			t.Fatalf("--rev with --version: exit %d", code)
		}
	}
	t.Run("through the server", check)
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	t.Run("from the file", check)
}

// TestRetentionFlags: a server with --retain-revisions folds old ops in
// the background, answers 410 gone for a folded revision and exports the
// history metrics.
func TestRetentionFlags(t *testing.T) {
	p := start(t, "", []string{"COLLABD_RETAIN_REVISIONS=5"}, "--retention-interval", "50ms")
	var rev uint64
	for i := 1; i <= 20; i++ {
		rev = putDoc(t, p, "ret", strings.Repeat("x", i), rev)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, _ := httpDo(t, "GET", p.url+"metrics", "")
		if metricValue(t, body, "collabd_folded_revisions_total") >= 15 {
			if metricValue(t, body, "collabd_stored_bytes") <= 0 {
				t.Fatalf("stored bytes: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing folded after 10 s: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body, _ := httpDo(t, "GET", p.url+"api/docs/ret/revisions/2", "")
	if code != 410 || !strings.Contains(body, `"earliest":15`) {
		t.Fatalf("folded revision: %d %s", code, body)
	}
	if out, errOut, code := collabd(t, nil, "history", "ret", "--data", p.data); code != 0 || !strings.Contains(out, "revisions 1-15, folded") {
		t.Fatalf("history of a folded document: %d %q %q", code, out, errOut)
	}
	if code, body, _ := httpDo(t, "DELETE", p.url+"api/docs/ret", ""); code != 204 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	_, body, _ = httpDo(t, "GET", p.url+"metrics", "")
	if metricValue(t, body, "collabd_purges_total") != 1 || metricValue(t, body, "collabd_compactions") != 0 {
		t.Fatalf("purge and compaction metrics: %s", body)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
