package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// source is where history, cat, diff and backup read from: the data file
// itself (no server holds it) or a running server's HTTP API.
type source interface {
	history(ctx context.Context, doc string, before uint64, limit int) ([]storage.Revision, error)
	// text returns the text at rev, or at the head when rev is nil.
	text(ctx context.Context, doc string, rev *uint64) (uint64, string, error)
	diff(ctx context.Context, doc string, from, to uint64) ([]ot.Diff, error)
	// version returns the named version name of doc and its text.
	version(ctx context.Context, doc, name string) (storage.Version, string, error)
	backup(ctx context.Context, w io.Writer) error
	close()
}

// clientConfig holds the flags shared by history, cat, diff and backup.
type clientConfig struct {
	Data           string
	Server         string
	Token          string
	AuthSecret     string
	AuthSecretFile string
	JSON           bool
	Timeout        time.Duration
	// NATS: read the documents from JetStream (cluster mode) instead of
	// the data file.
	NATS natsConfig
}

// clientEnv lists the flags of the client commands read from the environment.
var clientEnv = append([]string{"data", "server", "token", "auth-secret", "auth-secret-file"}, natsEnv...)

func clientFlags(fs *flag.FlagSet, c *clientConfig) {
	fs.StringVar(&c.Data, "data", "./data", "data directory of the server")
	fs.StringVar(&c.Server, "server", "", "URL of a running collabd to ask (default: read DATA/"+dbFile+" directly; when a server holds it, ask the URL in DATA/"+urlFile+", else http://$COLLABD_ADDR, else http://127.0.0.1:8080)")
	fs.StringVar(&c.Token, "token", "", "bearer token for a server with auth on (default: minted from --auth-secret when given)")
	fs.StringVar(&c.AuthSecret, "auth-secret", "", "the server's auth secret, to mint a short-lived token")
	fs.StringVar(&c.AuthSecretFile, "auth-secret-file", "", "file holding the server's auth secret")
	fs.BoolVar(&c.JSON, "json", false, "print JSON instead of text")
	fs.DurationVar(&c.Timeout, "timeout", time.Minute, "bound on the whole command")
	natsFlags(fs, &c.NATS)
}

// openSource picks the source: --server when given; else JetStream with
// --nats; else the data file,
// opened read-only (bbolt shared lock) with a short timeout, or read-write
// when a crashed server left commits in the journal (opening replays
// them); if a server holds the file, the HTTP API at the default address.
func openSource(c clientConfig, getenv func(string) string) (source, error) {
	if c.Server != "" {
		return newHTTPSource(c, c.Server)
	}
	if c.NATS.enabled() {
		if err := c.NATS.validate(); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		defer cancel()
		nc, st, err := connectClient(ctx, c.NATS)
		if err != nil {
			return nil, err
		}
		return storeSource{st: st, done: nc.Close}, nil
	}
	path := filepath.Join(c.Data, dbFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no data file at %s (set --data, or --server to ask a running collabd): %w", path, err)
	}
	st, err := storage.OpenBolt(path, storage.Options{ReadOnly: true, Timeout: 300 * time.Millisecond})
	if errors.Is(err, storage.ErrJournalPending) {
		// A server crashed with commits in its journal that the file
		// lacks, and none runs now: open read-write (exclusive lock),
		// which replays them into the file, and read from that.
		st, err = storage.OpenBolt(path, storage.Options{Timeout: 300 * time.Millisecond})
	}
	if err == nil {
		return storeSource{st: st}, nil
	}
	if !errors.Is(err, bolterrors.ErrTimeout) {
		return nil, err
	}
	// A server holds the file's lock: ask it, at the URL it wrote next to
	// the file, else at the default address.
	server := defaultServer(getenv)
	if b, err := os.ReadFile(filepath.Join(c.Data, urlFile)); err == nil && len(bytes.TrimSpace(b)) > 0 {
		server = string(bytes.TrimSpace(b))
	}
	return newHTTPSource(c, server)
}

// defaultServer is http://COLLABD_ADDR, an unspecified host replaced by
// 127.0.0.1, or http://127.0.0.1:8080.
func defaultServer(getenv func(string) string) string {
	addr := getenv(envName("addr"))
	if addr == "" {
		return "http://127.0.0.1:8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// storeSource reads a store directly: the data file, or JetStream.
type storeSource struct {
	st   storage.Store
	done func() // closes the NATS connection of a JetStream store, or nil
}

func (b storeSource) close() {
	b.st.Close()
	if b.done != nil {
		b.done()
	}
}

func (b storeSource) history(ctx context.Context, doc string, before uint64, limit int) ([]storage.Revision, error) {
	revs, err := b.st.History(ctx, doc, before, limit)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return revs, err
}

func (b storeSource) text(ctx context.Context, doc string, rev *uint64) (uint64, string, error) {
	var r uint64
	if rev != nil {
		r = *rev
	} else {
		m, err := b.st.Meta(ctx, doc)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return 0, "", nil // never written: empty at revision 0
		case err != nil:
			return 0, "", err
		}
		r = m.Head
	}
	t, err := b.st.TextAt(ctx, doc, r)
	return r, t, err
}

func (b storeSource) diff(ctx context.Context, doc string, from, to uint64) ([]ot.Diff, error) {
	return b.st.Diff(ctx, doc, from, to)
}

func (b storeSource) backup(ctx context.Context, w io.Writer) error {
	_, err := b.st.Backup(ctx, w)
	return err
}

// httpSource asks a running server's API.
type httpSource struct {
	base  *url.URL
	token string
	hc    *http.Client
}

func newHTTPSource(c clientConfig, server string) (*httpSource, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want http(s)://host:port", server)
	}
	tok := c.Token
	if tok == "" {
		secret, err := secretFrom(c.AuthSecret, c.AuthSecretFile)
		if err != nil {
			return nil, err
		}
		if secret != "" {
			a, err := auth.New([]byte(secret))
			if err != nil {
				return nil, fmt.Errorf("--auth-secret: %w", err)
			}
			tok, err = a.Mint(auth.Claims{User: "collabd-cli", View: []string{"*"}, Expires: time.Now().Add(5 * time.Minute)})
			if err != nil {
				return nil, err
			}
		}
	}
	return &httpSource{base: u, token: tok, hc: &http.Client{}}, nil
}

func (h *httpSource) close() { h.hc.CloseIdleConnections() }

// get fetches path (with query) and returns the response body of a 200.
func (h *httpSource) get(ctx context.Context, path string, q url.Values) (io.ReadCloser, error) {
	u := *h.base
	setPath(&u, path)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	res, err := h.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the server (the data file is locked by it): %w", err)
	}
	if res.StatusCode == http.StatusOK {
		return res.Body, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var e struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
		return nil, fmt.Errorf("server: %s: %s", e.Error.Code, e.Error.Message)
	}
	return nil, fmt.Errorf("server: %s: %s", res.Status, bytes.TrimSpace(b))
}

func (h *httpSource) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	body, err := h.get(ctx, path, q)
	if err != nil {
		return err
	}
	defer body.Close()
	return json.NewDecoder(body).Decode(v)
}

func (h *httpSource) history(ctx context.Context, doc string, before uint64, limit int) ([]storage.Revision, error) {
	var v struct{ Revs []storage.Revision }
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if before > 0 {
		q.Set("before", strconv.FormatUint(before, 10))
	}
	err := h.getJSON(ctx, "/api/docs/"+url.PathEscape(doc)+"/history", q, &v)
	return v.Revs, err
}

func (h *httpSource) text(ctx context.Context, doc string, rev *uint64) (uint64, string, error) {
	var v struct {
		Rev  uint64
		Text string
	}
	p := "/api/docs/" + url.PathEscape(doc)
	if rev != nil {
		p += "/revisions/" + strconv.FormatUint(*rev, 10)
	}
	err := h.getJSON(ctx, p, nil, &v)
	return v.Rev, v.Text, err
}

func (h *httpSource) diff(ctx context.Context, doc string, from, to uint64) ([]ot.Diff, error) {
	var v struct{ Diffs []ot.Diff }
	q := url.Values{"from": {strconv.FormatUint(from, 10)}, "to": {strconv.FormatUint(to, 10)}}
	err := h.getJSON(ctx, "/api/docs/"+url.PathEscape(doc)+"/diff", q, &v)
	return v.Diffs, err
}

func (h *httpSource) backup(ctx context.Context, w io.Writer) error {
	body, err := h.get(ctx, "/api/backup", nil)
	if err != nil {
		return err
	}
	defer body.Close()
	_, err = io.Copy(w, body)
	return err
}

// clientCommand parses the flags of a client command, checks the number of
// positional arguments and opens the source.
func clientCommand(name, usage string, nargs int, args []string, getenv func(string) string, stderr io.Writer,
	extra func(*flag.FlagSet)) (clientConfig, []string, source, error) {
	var c clientConfig
	fs := newFlagSet(name, stderr, usage)
	clientFlags(fs, &c)
	if extra != nil {
		extra(fs)
	}
	pos, err := parseFlags(fs, args, clientEnv, getenv)
	if err != nil {
		return c, nil, nil, err
	}
	if len(pos) != nargs {
		fmt.Fprintf(stderr, "collabd %s: want %d argument(s), got %d\n", name, nargs, len(pos))
		fs.Usage()
		return c, nil, nil, errUsage
	}
	if name == "backup" && c.NATS.enabled() && c.Server == "" {
		return c, nil, nil, errors.New("backup copies the bbolt data file and does not apply with --nats: back up JetStream with NATS's own tools (nats stream backup " +
			storage.DefaultJetStreamStream + ", and KV_" + storage.DefaultSnapshotBucket + ")")
	}
	if name != "backup" && !contract.ValidDocID(pos[0]) {
		return c, nil, nil, fmt.Errorf("invalid document id %q (%s)", pos[0], contract.DocIDRule)
	}
	src, err := openSource(c, getenv)
	return c, pos, src, err
}

func cmdHistory(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var limit int
	var before uint64
	c, pos, src, err := clientCommand("history", "collabd history DOC [--limit N] [--before REV] [--json]", 1, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", contract.DefaultHistoryLimit, fmt.Sprintf("most revisions to show (1 to %d)", contract.MaxHistoryLimit))
		fs.Uint64Var(&before, "before", 0, "show revisions below this one (0: from the head)")
	})
	if err != nil {
		return err
	}
	defer src.close()
	if limit < 1 || limit > contract.MaxHistoryLimit {
		return fmt.Errorf("--limit must be 1 to %d", contract.MaxHistoryLimit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	revs, err := src.history(ctx, pos[0], before, limit)
	if err != nil {
		return err
	}
	if revs == nil {
		revs = []storage.Revision{}
	}
	if c.JSON {
		return writeJSONTo(stdout, map[string]any{"revs": revs})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REV\tTIME\tUSER\tCLIENT\tINS\tDEL")
	for _, r := range revs {
		if r.Folded {
			fmt.Fprintf(tw, "%d\t-\t-\trevisions %d-%d, folded\t\t\n", r.Rev, r.From, r.Rev)
			continue
		}
		user := r.User
		if user == "" {
			user = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t+%d\t-%d\n", r.Rev, r.Time.UTC().Format(time.RFC3339), user, r.Client, r.Ins, r.Del)
	}
	return tw.Flush()
}

func cmdCat(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var revFlag int64
	var versionFlag string
	c, pos, src, err := clientCommand("cat", "collabd cat DOC [--rev R | --version NAME] [--json]", 1, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.Int64Var(&revFlag, "rev", -1, "revision to print (default: the head)")
		fs.StringVar(&versionFlag, "version", "", "named version to print")
	})
	if err != nil {
		return err
	}
	defer src.close()
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	if versionFlag != "" {
		if revFlag >= 0 {
			return errors.New("give --rev or --version, not both")
		}
		return catVersion(ctx, src, pos[0], versionFlag, c.JSON, stdout)
	}
	var rev *uint64
	if revFlag >= 0 {
		r := uint64(revFlag)
		rev = &r
	}
	got, text, err := src.text(ctx, pos[0], rev)
	if err != nil {
		return err
	}
	if c.JSON {
		return writeJSONTo(stdout, map[string]any{"id": pos[0], "rev": got, "text": text})
	}
	_, err = io.WriteString(stdout, text)
	return err
}

func cmdDiff(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, pos, src, err := clientCommand("diff", "collabd diff DOC FROM TO [--json]", 3, args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	defer src.close()
	from, err1 := strconv.ParseUint(pos[1], 10, 64)
	to, err2 := strconv.ParseUint(pos[2], 10, 64)
	if err1 != nil || err2 != nil {
		return errors.New("FROM and TO must be revision numbers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	diffs, err := src.diff(ctx, pos[0], from, to)
	if err != nil {
		return err
	}
	if diffs == nil {
		diffs = []ot.Diff{}
	}
	if c.JSON {
		return writeJSONTo(stdout, map[string]any{"diffs": diffs})
	}
	_, err = io.WriteString(stdout, formatDiff(diffs))
	return err
}

// formatDiff writes a diff in the style of git's --word-diff=plain:
// deletions as [-text-], insertions as {+text+}.
func formatDiff(diffs []ot.Diff) string {
	var sb strings.Builder
	for _, d := range diffs {
		switch d.Op {
		case -1:
			sb.WriteString("[-" + d.Text + "-]")
		case 1:
			sb.WriteString("{+" + d.Text + "+}")
		default:
			sb.WriteString(d.Text)
		}
	}
	if sb.Len() > 0 && !strings.HasSuffix(sb.String(), "\n") {
		sb.WriteByte('\n')
	}
	return sb.String()
}

func cmdBackup(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var force bool
	c, pos, src, err := clientCommand("backup", "collabd backup FILE [--force] [--json]", 1, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "replace FILE if it exists")
	})
	if err != nil {
		return err
	}
	defer src.close()
	dst := pos[0]
	if _, err := os.Stat(dst); err == nil && !force {
		return fmt.Errorf("%s exists (use --force to replace it)", dst)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	n, err := writeFileAtomic(dst, func(w io.Writer) error { return src.backup(ctx, w) })
	if err != nil {
		return err
	}
	if c.JSON {
		return writeJSONTo(stdout, map[string]any{"file": dst, "bytes": n})
	}
	fmt.Fprintf(stdout, "wrote %d bytes to %s\n", n, dst)
	return nil
}

// writeFileAtomic writes a temporary file next to path with fill, syncs it
// and renames it to path: path is either absent, the old file, or the whole
// new one, never a half-written file.
func writeFileAtomic(path string, fill func(io.Writer) error) (int64, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	cw := &countWriter{w: f}
	err = fill(cw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func cmdToken(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		user, secretArg, secretFile, jti string
		edit, view                       listFlag
		ttl                              time.Duration
		asJSON                           bool
	)
	fs := newFlagSet("token", stderr, "collabd token --user NAME [--edit PATTERN]... [--view PATTERN]... [--ttl 24h]")
	fs.StringVar(&user, "user", "", "user name shown to the other editors (required)")
	fs.Var(&edit, "edit", "document id pattern the user may edit (path.Match syntax; repeatable, or comma-separated)")
	fs.Var(&view, "view", "document id pattern the user may view (repeatable, or comma-separated)")
	fs.DurationVar(&ttl, "ttl", 24*time.Hour, "validity (0: the token never expires)")
	fs.StringVar(&jti, "jti", "", "token id (jti), what a revocation names (default: random)")
	fs.StringVar(&secretArg, "auth-secret", "", "the server's auth secret")
	fs.StringVar(&secretFile, "auth-secret-file", "", "file holding the server's auth secret")
	fs.BoolVar(&asJSON, "json", false, "print JSON {token, expires}")
	pos, err := parseFlags(fs, args, []string{"auth-secret", "auth-secret-file"}, getenv)
	if err != nil {
		return err
	}
	if len(pos) > 0 || user == "" {
		fmt.Fprintln(stderr, "collabd token: --user is required and there are no arguments")
		fs.Usage()
		return errUsage
	}
	if len(edit)+len(view) == 0 {
		return errors.New("give at least one --edit or --view pattern")
	}
	secret, err := secretFrom(secretArg, secretFile)
	if err != nil {
		return err
	}
	if secret == "" {
		return errors.New("no secret: set --auth-secret, --auth-secret-file or COLLABD_AUTH_SECRET")
	}
	a, err := auth.New([]byte(secret))
	if err != nil {
		return err
	}
	if jti == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		jti = hex.EncodeToString(b[:])
	}
	c := auth.Claims{User: user, ID: jti, Edit: edit, View: view}
	if ttl < 0 {
		return errors.New("--ttl must not be negative")
	}
	if ttl > 0 {
		c.Expires = time.Now().Add(ttl)
	}
	tok, err := a.Mint(c)
	if err != nil {
		return err
	}
	if asJSON {
		out := map[string]any{"token": tok, "jti": jti}
		if !c.Expires.IsZero() {
			out["expires"] = c.Expires.UTC().Truncate(time.Second)
		}
		return writeJSONTo(stdout, out)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
