package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/storage"
)

// cmdCompact rewrites the data file offline with bbolt's compaction and
// deletes the checkpointed journal (storage.Compact). A running server
// holds the file's lock: the command then says how to proceed.
func cmdCompact(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		data    string
		asJSON  bool
		timeout time.Duration
	)
	fs := newFlagSet("compact", stderr, "collabd compact [--data DIR] [--json]")
	fs.StringVar(&data, "data", "./data", "data directory of the (stopped) server")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	fs.DurationVar(&timeout, "timeout", 10*time.Minute, "bound on the whole command")
	pos, err := parseFlags(fs, args, []string{"data"}, getenv)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return errUsage
	}
	path := filepath.Join(data, dbFile)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no data file at %s (set --data): %w", path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := storage.Compact(ctx, path, 300*time.Millisecond)
	if errors.Is(err, storage.ErrLocked) {
		return fmt.Errorf("a running collabd holds %s: the compaction rewrites the file and needs it to itself. "+
			"Stop the server (SIGTERM: it closes the file cleanly), run 'collabd compact --data %s', then start it again", path, data)
	}
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSONTo(stdout, map[string]any{
			"file": path, "bytesBefore": res.Before(), "bytesAfter": res.After(),
			"fileBefore": res.FileBefore, "fileAfter": res.FileAfter,
			"journalBefore": res.JournalBefore, "journalAfter": res.JournalAfter,
		})
	}
	fmt.Fprintf(stdout, "compacted %s: %d bytes before, %d after (file %d -> %d, journal %d -> %d)\n",
		path, res.Before(), res.After(), res.FileBefore, res.FileAfter, res.JournalBefore, res.JournalAfter)
	return nil
}

// cmdPurge deletes a document with every revision and snapshot: in the
// data file when no server holds it, else through the running server's
// DELETE /api/docs/{id}.
func cmdPurge(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c clientConfig
	fs := newFlagSet("purge", stderr, "collabd purge DOC [--data DIR | --server URL]")
	clientFlags(fs, &c)
	pos, err := parseFlags(fs, args, clientEnv, getenv)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "collabd purge: want 1 argument(s), got %d\n", len(pos))
		fs.Usage()
		return errUsage
	}
	doc := pos[0]
	if !contract.ValidDocID(doc) {
		return fmt.Errorf("invalid document id %q (%s)", doc, contract.DocIDRule)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	server := c.Server
	if server == "" {
		path := filepath.Join(c.Data, dbFile)
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no data file at %s (set --data, or --server to ask a running collabd): %w", path, err)
		}
		st, err := storage.OpenBolt(path, storage.Options{Timeout: 300 * time.Millisecond})
		switch {
		case err == nil:
			err = purgeFile(ctx, st, doc)
			if cerr := st.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			return purged(stdout, c.JSON, doc, c.Data)
		case !errors.Is(err, bolterrors.ErrTimeout):
			return err
		}
		server = defaultServer(getenv)
		if b, err := os.ReadFile(filepath.Join(c.Data, urlFile)); err == nil && len(bytes.TrimSpace(b)) > 0 {
			server = string(bytes.TrimSpace(b))
		}
	}
	if c.Token == "" {
		// The view-only token newHTTPSource would mint cannot delete.
		secret, err := secretFrom(c.AuthSecret, c.AuthSecretFile)
		if err != nil {
			return err
		}
		if secret != "" {
			a, err := auth.New([]byte(secret))
			if err != nil {
				return fmt.Errorf("--auth-secret: %w", err)
			}
			c.Token, err = a.Mint(auth.Claims{User: "collabd-cli", Edit: []string{doc}, View: []string{doc}, Expires: time.Now().Add(5 * time.Minute)})
			if err != nil {
				return err
			}
		}
	}
	h, err := newHTTPSource(c, server)
	if err != nil {
		return err
	}
	defer h.close()
	if err := h.do(ctx, http.MethodDelete, "/api/docs/"+url.PathEscape(doc)); err != nil {
		return err
	}
	return purged(stdout, c.JSON, doc, c.Data)
}

// purgeFile deletes doc from a store no server holds.
func purgeFile(ctx context.Context, st *storage.Bolt, doc string) error {
	if _, err := st.Meta(ctx, doc); errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("document %q does not exist", doc)
	} else if err != nil {
		return err
	}
	return st.Commit(ctx, []storage.Write{{Doc: doc, Delete: true}})
}

func purged(stdout io.Writer, asJSON bool, doc, data string) error {
	if asJSON {
		return writeJSONTo(stdout, map[string]any{"id": doc, "purged": true})
	}
	_, err := fmt.Fprintf(stdout, "purged %s; its bytes leave the data directory at the next 'collabd compact --data %s' (on a stopped server)\n", doc, data)
	return err
}

// do sends a request without a body and expects a 2xx answer.
func (h *httpSource) do(ctx context.Context, method, path string) error {
	u := *h.base
	setPath(&u, path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return err
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	res, err := h.hc.Do(req)
	if err != nil {
		return fmt.Errorf("asking the server (the data file is locked by it): %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 == 2 {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var e struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
		return fmt.Errorf("server: %s: %s", e.Error.Code, e.Error.Message)
	}
	return fmt.Errorf("server: %s: %s", res.Status, bytes.TrimSpace(b))
}

// catVersion prints the text of doc's named version name.
func catVersion(ctx context.Context, src source, doc, name string, asJSON bool, stdout io.Writer) error {
	v, text, err := src.version(ctx, doc, name)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSONTo(stdout, map[string]any{"id": doc, "version": v, "rev": v.Rev, "text": text})
	}
	_, err = io.WriteString(stdout, text)
	return err
}

func (b boltSource) version(ctx context.Context, doc, name string) (storage.Version, string, error) {
	v, text, err := b.st.VersionText(ctx, doc, name)
	if errors.Is(err, storage.ErrNotFound) {
		return v, "", fmt.Errorf("%s has no version named %q", doc, name)
	}
	return v, text, err
}

func (h *httpSource) version(ctx context.Context, doc, name string) (storage.Version, string, error) {
	var v struct {
		storage.Version
		Text string `json:"text"`
	}
	err := h.getJSON(ctx, "/api/docs/"+url.PathEscape(doc)+"/versions/"+url.PathEscape(name), nil, &v)
	return v.Version, v.Text, err
}

// setPath appends path, already escaped (url.PathEscape of each variable
// segment), to u's path: a version name with a space or a slash reaches
// the server as one segment.
func setPath(u *url.URL, path string) {
	raw := u.EscapedPath() + path
	if p, err := url.PathUnescape(raw); err == nil {
		u.Path, u.RawPath = p, raw
	} else {
		u.Path += path
	}
}
