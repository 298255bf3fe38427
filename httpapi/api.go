package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// ErrNoHub is returned by New without a Hub.
var ErrNoHub = errors.New("httpapi: Config.Hub is required")

// Config configures New.
type Config struct {
	// Hub serves every document request (required). The API never closes it.
	Hub *collab.Hub
	// Backup writes a consistent copy of the store to w (storage.Bolt.Backup);
	// nil disables GET /api/backup (404).
	Backup func(ctx context.Context, w io.Writer) (int64, error)
	// Auth, when non-nil, requires a bearer token on every /api request.
	Auth *auth.Authority
	// MaxBodyBytes bounds a PUT body; zero means collab.DefaultMaxDocBytes.
	MaxBodyBytes int64
	// Compact, when non-nil, compacts the store online
	// (storage.Bolt.CompactOnline) for POST /api/compact; nil: 404.
	Compact func(ctx context.Context) (storage.CompactResult, error)
	// Delete, when non-nil, deletes a document instead of Hub.Delete: the
	// server passes the session glue's Delete, which also ends the
	// memberships of connected editors.
	Delete func(ctx context.Context, doc string) error
	// VersionChanged, when non-nil, is called after the API created,
	// renamed or deleted a named version of doc: action is "create",
	// "rename" or "delete" (the doc:versions:changed event's), name the
	// version's name before the change, v the version after it (nil after
	// a delete). The server passes the session glue's VersionChanged, which
	// tells the document's members. It must not block.
	VersionChanged func(doc, action, name string, v *storage.Version)
	// Ready reports whether /readyz answers 200; nil means always.
	Ready func() bool
	// OnError, when non-nil, is called with the code of every error response
	// (for metrics). It must not block.
	OnError func(code string)
	// Logger gets one line per failed request (warn for 5xx, debug otherwise).
	Logger zerolog.Logger
}

// API is the HTTP handler of the JSON API, /healthz and /readyz.
type API struct {
	cfg Config
	mux *http.ServeMux
}

// New returns the API over cfg.Hub.
func New(cfg Config) (*API, error) {
	if cfg.Hub == nil {
		return nil, ErrNoHub
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = collab.DefaultMaxDocBytes
	}
	a := &API{cfg: cfg, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.HandleFunc("GET /api/docs", a.list)
	a.mux.HandleFunc("GET /api/docs/{id}", a.get)
	a.mux.HandleFunc("PUT /api/docs/{id}", a.put)
	a.mux.HandleFunc("DELETE /api/docs/{id}", a.delete)
	a.mux.HandleFunc("GET /api/docs/{id}/history", a.history)
	a.mux.HandleFunc("GET /api/docs/{id}/revisions/{rev}", a.revision)
	a.mux.HandleFunc("GET /api/docs/{id}/diff", a.diff)
	a.mux.HandleFunc("GET /api/backup", a.backup)
	a.mux.HandleFunc("POST /api/docs/{id}/ops", a.ops)
	a.mux.HandleFunc("POST /api/docs/{id}/append", a.appendText)
	a.registerVersions()
	return a, nil
}

// ServeHTTP serves /api/..., /healthz and /readyz.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		w.Header().Set("Cache-Control", "no-store")
	}
	h, pattern := a.mux.Handler(r)
	if pattern == "" {
		// No route: the mux answers 404, or 405 with an Allow header for a
		// known path; say the same in JSON.
		rec := &statusRecorder{header: http.Header{}, Code: http.StatusOK}
		h.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if rec.Code == http.StatusMethodNotAllowed {
			a.failStatus(w, r, rec.Code, contract.CodeBadRequest, "method not allowed")
			return
		}
		a.fail(w, r, contract.CodeNotFound, "no such route")
		return
	}
	a.mux.ServeHTTP(w, r) // sets the path values Handler does not
}

// statusRecorder keeps the status and headers of a response and drops its body.
type statusRecorder struct {
	header http.Header
	Code   int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(p []byte) (int, error) { return len(p), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.Code = code }

func (a *API) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, "ok\n")
}

func (a *API) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if a.cfg.Ready != nil && !a.cfg.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready\n")
		return
	}
	io.WriteString(w, "ready\n")
}

// docInfo is one line of GET /api/docs.
type docInfo struct {
	ID      string    `json:"id"`
	Rev     uint64    `json:"rev"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	claims, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	docs, err := a.cfg.Hub.List(r.Context())
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	out := make([]docInfo, 0, len(docs))
	for _, d := range docs {
		if claims != nil && claims.Level(d.ID) < auth.View {
			continue
		}
		out = append(out, docInfo{ID: d.ID, Rev: d.Head, Created: d.Created.UTC(), Updated: d.Updated.UTC()})
	}
	slices.SortStableFunc(out, func(x, y docInfo) int {
		if c := y.Updated.Compare(x.Updated); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	writeJSON(w, http.StatusOK, map[string]any{"docs": out})
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.doc(w, r, auth.View)
	if !ok {
		return
	}
	rev, text, err := a.cfg.Hub.Text(r.Context(), id)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(rev))
	writeJSON(w, http.StatusOK, struct {
		ID   string `json:"id"`
		Rev  uint64 `json:"rev"`
		Text string `json:"text"`
	}{id, rev, text.String()})
}

func (a *API) put(w http.ResponseWriter, r *http.Request) {
	id, claims, ok := a.doc(w, r, auth.Edit)
	if !ok {
		return
	}
	im := r.Header.Get("If-Match")
	if im == "" {
		a.failStatus(w, r, http.StatusPreconditionRequired, contract.CodeBadRequest, "If-Match: <rev> is required (the revision the text is based on)")
		return
	}
	base, err := parseRevTag(im)
	if err != nil {
		a.fail(w, r, contract.CodeBadRequest, "If-Match must be a revision number")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			a.fail(w, r, contract.CodeTooLarge, fmt.Sprintf("text longer than %d bytes", a.cfg.MaxBodyBytes))
			return
		}
		a.fail(w, r, contract.CodeBadRequest, "reading the body: "+err.Error())
		return
	}
	if !utf8.Valid(body) {
		a.fail(w, r, contract.CodeBadRequest, "the text is not valid UTF-8")
		return
	}
	old, err := a.cfg.Hub.TextAt(r.Context(), id, base)
	if err != nil {
		if collab.CodeOf(err) == contract.CodeNotFound {
			a.fail(w, r, contract.CodeConflict, fmt.Sprintf("revision %d is ahead of the document", base))
			return
		}
		a.failErr(w, r, err)
		return
	}
	op := ot.OpFromTexts(old, string(body))
	if op.IsNoop() {
		// Nothing changed against the base: no revision to make.
		rev, _, err := a.cfg.Hub.Text(r.Context(), id)
		if err != nil {
			a.failErr(w, r, err)
			return
		}
		w.Header().Set("ETag", etag(rev))
		writeJSON(w, http.StatusOK, map[string]uint64{"rev": rev})
		return
	}
	opJSON := op.AppendJSON(nil)
	sub := collab.Submission{
		Doc:     id,
		Client:  putClient(claims, r.Header.Get("Idempotency-Key")),
		Seq:     1,
		BaseRev: base,
		Op:      opJSON,
	}
	a.submitOp(w, r, claims, sub)
}

// putClient returns the client id of a PUT: random, or derived from the
// user and the Idempotency-Key so that a repeated request is recognized.
func putClient(claims *auth.Claims, key string) string {
	if key == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		return "http:" + hex.EncodeToString(b[:])
	}
	user := ""
	if claims != nil {
		user = claims.User
	}
	sum := sha256.Sum256([]byte(user + "\x00" + key))
	return "http:key:" + hex.EncodeToString(sum[:16])
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.doc(w, r, auth.Edit)
	if !ok {
		return
	}
	del := a.cfg.Hub.Delete
	if a.cfg.Delete != nil {
		del = a.cfg.Delete
	}
	if err := del(r.Context(), id); err != nil {
		a.failErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) history(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.doc(w, r, auth.View)
	if !ok {
		return
	}
	q := r.URL.Query()
	before, err := uintParam(q.Get("before"), 0)
	if err != nil {
		a.fail(w, r, contract.CodeBadRequest, "before must be a revision number")
		return
	}
	limit, err := uintParam(q.Get("limit"), contract.DefaultHistoryLimit)
	if err != nil || limit < 1 || limit > contract.MaxHistoryLimit {
		a.fail(w, r, contract.CodeBadRequest, fmt.Sprintf("limit must be 1 to %d", contract.MaxHistoryLimit))
		return
	}
	revs, err := a.cfg.Hub.History(r.Context(), id, before, int(limit))
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	if revs == nil {
		revs = []storage.Revision{}
	}
	for i := range revs {
		revs[i].Time = revs[i].Time.UTC()
	}
	writeJSON(w, http.StatusOK, map[string]any{"revs": revs})
}

func (a *API) revision(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.doc(w, r, auth.View)
	if !ok {
		return
	}
	rev, err := strconv.ParseUint(r.PathValue("rev"), 10, 64)
	if err != nil {
		a.fail(w, r, contract.CodeBadRequest, "rev must be a revision number")
		return
	}
	text, err := a.cfg.Hub.TextAt(r.Context(), id, rev)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Rev  uint64 `json:"rev"`
		Text string `json:"text"`
	}{rev, text})
}

func (a *API) diff(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.doc(w, r, auth.View)
	if !ok {
		return
	}
	q := r.URL.Query()
	if q.Get("from") == "" || q.Get("to") == "" {
		a.fail(w, r, contract.CodeBadRequest, "from and to are required")
		return
	}
	from, err1 := uintParam(q.Get("from"), 0)
	to, err2 := uintParam(q.Get("to"), 0)
	if err1 != nil || err2 != nil {
		a.fail(w, r, contract.CodeBadRequest, "from and to must be revision numbers")
		return
	}
	diffs, err := a.cfg.Hub.Diff(r.Context(), id, from, to)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	if diffs == nil {
		diffs = []ot.Diff{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"diffs": diffs})
}

func (a *API) backup(w http.ResponseWriter, r *http.Request) {
	claims, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	if a.cfg.Backup == nil {
		a.fail(w, r, contract.CodeNotFound, "backups are not available")
		return
	}
	if !a.accessToAll(w, r, claims, auth.View, "a backup needs view access to every document") {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="collabd-`+time.Now().UTC().Format("20060102T150405Z")+`.db"`)
	cw := &countingWriter{w: w}
	if _, err := a.cfg.Backup(r.Context(), cw); err != nil {
		if cw.n == 0 {
			w.Header().Del("Content-Disposition")
			a.failErr(w, r, err)
			return
		}
		// The status is sent: abort the response so that the client sees a
		// broken transfer, never a silently truncated file.
		a.cfg.Logger.Warn().Err(err).Int64("bytes", cw.n).Msg("backup aborted")
		panic(http.ErrAbortHandler)
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// authenticate returns the token's claims (nil with auth off). On failure it
// has written the response and ok is false.
// accessToAll reports whether claims (nil: auth off) give at least level on
// every stored document, for operations on the whole store; if not, it has
// answered forbidden with msg.
func (a *API) accessToAll(w http.ResponseWriter, r *http.Request, claims *auth.Claims, level auth.Level, msg string) bool {
	if claims == nil {
		return true
	}
	docs, err := a.cfg.Hub.List(r.Context())
	if err != nil {
		a.failErr(w, r, err)
		return false
	}
	for _, d := range docs {
		if claims.Level(d.ID) < level {
			a.fail(w, r, contract.CodeForbidden, msg)
			return false
		}
	}
	return true
}

func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (claims *auth.Claims, ok bool) {
	if a.cfg.Auth == nil {
		return nil, true
	}
	tok, found := auth.BearerToken(r.Header.Get("Authorization"))
	if !found {
		w.Header().Set("WWW-Authenticate", `Bearer realm="collabd"`)
		a.fail(w, r, contract.CodeUnauthorized, "Authorization: Bearer <token> is required")
		return nil, false
	}
	c, err := a.cfg.Auth.Verify(tok)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="collabd", error="invalid_token"`)
		a.fail(w, r, contract.CodeUnauthorized, err.Error())
		return nil, false
	}
	return c, true
}

// doc validates the {id} of the route and checks that the caller has at
// least level on it.
func (a *API) doc(w http.ResponseWriter, r *http.Request, level auth.Level) (string, *auth.Claims, bool) {
	claims, ok := a.authenticate(w, r)
	if !ok {
		return "", nil, false
	}
	id := r.PathValue("id")
	if !contract.ValidDocID(id) {
		a.fail(w, r, contract.CodeBadRequest, "document ids are "+contract.DocIDRule)
		return "", nil, false
	}
	if claims != nil {
		if got := claims.Level(id); got < level {
			msg := "no access to this document"
			if got == auth.View {
				msg = "read-only access to this document"
			}
			a.fail(w, r, contract.CodeForbidden, msg)
			return "", nil, false
		}
	}
	return id, claims, true
}

// failErr answers with the code of err (a *collab.Error, or internal).
func (a *API) failErr(w http.ResponseWriter, r *http.Request, err error) {
	code := collab.CodeOf(err)
	msg := "internal error"
	var ce *collab.Error
	if errors.As(err, &ce) {
		msg = ce.Message
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		msg = "request canceled"
	}
	if code.HTTPStatus() >= 500 {
		a.cfg.Logger.Warn().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("api error")
	}
	if ce != nil && ce.Code == contract.CodeGone {
		a.failGone(w, r, msg, ce.Earliest)
		return
	}
	a.fail(w, r, code, msg)
}

// fail answers with code and the HTTP status of code.
func (a *API) fail(w http.ResponseWriter, r *http.Request, code contract.Code, msg string) {
	a.failStatus(w, r, code.HTTPStatus(), code, msg)
}

// failStatus answers with code and another status than code's own.
func (a *API) failStatus(w http.ResponseWriter, r *http.Request, status int, code contract.Code, msg string) {
	if a.cfg.OnError != nil {
		a.cfg.OnError(string(code))
	}
	if status < 500 {
		a.cfg.Logger.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", status).Str("code", string(code)).Msg(msg)
	}
	type body struct {
		Code    contract.Code `json:"code"`
		Message string        `json:"message"`
	}
	writeJSON(w, status, map[string]body{"error": {code, msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func etag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// parseRevTag reads an If-Match value: a revision, optionally quoted or weak.
func parseRevTag(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return strconv.ParseUint(s, 10, 64)
}

func uintParam(s string, def uint64) (uint64, error) {
	if s == "" {
		return def, nil
	}
	return strconv.ParseUint(s, 10, 64)
}
