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

// cmdCompact rewrites the data file with bbolt's compaction: offline
// (storage.Compact, which also deletes the checkpointed journal) when no
// server holds the file, else through the running server's POST
// /api/compact (storage.Bolt.CompactOnline).
func cmdCompact(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c clientConfig
	fs := newFlagSet("compact", stderr, "collabd compact [--data DIR | --server URL] [--json]")
	clientFlags(fs, &c)
	fs.Lookup("timeout").DefValue = "10m"
	c.Timeout = 10 * time.Minute
	pos, err := parseFlags(fs, args, clientEnv, getenv)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return errUsage
	}
	if c.NATS.enabled() && c.Server == "" {
		return errors.New("compact rewrites the bbolt data file and does not apply with --nats (JetStream manages its own files)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	path := filepath.Join(c.Data, dbFile)
	server := c.Server
	var res storage.CompactResult
	if server == "" {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no data file at %s (set --data, or --server for a running collabd): %w", path, err)
		}
		res, err = storage.Compact(ctx, path, 300*time.Millisecond)
		if err != nil && !errors.Is(err, storage.ErrLocked) {
			return err
		}
		if errors.Is(err, storage.ErrLocked) {
			server = defaultServer(getenv)
			if b, err := os.ReadFile(filepath.Join(c.Data, urlFile)); err == nil && len(bytes.TrimSpace(b)) > 0 {
				server = string(bytes.TrimSpace(b))
			}
		}
	}
	if server != "" {
		path = server
		if res, err = compactOnServer(ctx, c, server); err != nil {
			return fmt.Errorf("%w (a running collabd holds the data file and compacts it online; or stop it with SIGTERM and run 'collabd compact --data %s')", err, c.Data)
		}
	}
	if c.JSON {
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

// compactOnServer asks a running server to compact its store online.
func compactOnServer(ctx context.Context, c clientConfig, server string) (storage.CompactResult, error) {
	var res storage.CompactResult
	if c.Token == "" {
		tok, err := mintEditToken(c, "*")
		if err != nil {
			return res, err
		}
		c.Token = tok
	}
	h, err := newHTTPSource(c, server)
	if err != nil {
		return res, err
	}
	defer h.close()
	var v struct {
		FileBefore, FileAfter, JournalBefore, JournalAfter int64
	}
	if err := h.doJSON(ctx, http.MethodPost, "/api/compact", &v); err != nil {
		return res, err
	}
	return storage.CompactResult{FileBefore: v.FileBefore, FileAfter: v.FileAfter, JournalBefore: v.JournalBefore, JournalAfter: v.JournalAfter}, nil
}

// mintEditToken mints a five-minute token that may edit the documents
// matching pattern from --auth-secret, or returns "" without a secret.
func mintEditToken(c clientConfig, pattern string) (string, error) {
	secret, err := secretFrom(c.AuthSecret, c.AuthSecretFile)
	if err != nil || secret == "" {
		return "", err
	}
	a, err := auth.New([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("--auth-secret: %w", err)
	}
	return a.Mint(auth.Claims{User: "collabd-cli", Edit: []string{pattern}, View: []string{pattern}, Expires: time.Now().Add(5 * time.Minute)})
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
	if server == "" && c.NATS.enabled() {
		if err := c.NATS.validate(); err != nil {
			return err
		}
		nc, st, err := connectClient(ctx, c.NATS)
		if err != nil {
			return err
		}
		defer nc.Close()
		if err := purgeFile(ctx, st, doc); err != nil {
			return err
		}
		if c.JSON {
			return writeJSONTo(stdout, map[string]any{"id": doc, "purged": true})
		}
		_, err = fmt.Fprintf(stdout, "purged %s from JetStream (with servers running, prefer DELETE /api/docs/%s through one: it also ends the document's memberships)\n", doc, doc)
		return err
	}
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
		if c.Token, err = mintEditToken(c, doc); err != nil {
			return err
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

// purgeFile deletes doc from a store no server holds (or JetStream).
func purgeFile(ctx context.Context, st storage.Store, doc string) error {
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
	return h.doJSON(ctx, method, path, nil)
}

// doJSON sends a request without a body, expects a 2xx answer and decodes
// its JSON body into v (unless v is nil).
func (h *httpSource) doJSON(ctx context.Context, method, path string, v any) error {
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
		if v == nil {
			return nil
		}
		return json.NewDecoder(res.Body).Decode(v)
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

func (b storeSource) version(ctx context.Context, doc, name string) (storage.Version, string, error) {
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
