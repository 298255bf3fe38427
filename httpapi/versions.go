package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/storage"
)

// maxVersionBody bounds the JSON body of a version request.
const maxVersionBody = 4 << 10

// registerVersions adds the named-version and retention routes
// (docs/protocol.md).
func (a *API) registerVersions() {
	a.mux.HandleFunc("GET /api/docs/{id}/versions", a.versions)
	a.mux.HandleFunc("POST /api/docs/{id}/versions", a.createVersion)
	a.mux.HandleFunc("GET /api/docs/{id}/versions/{name}", a.version)
	a.mux.HandleFunc("PATCH /api/docs/{id}/versions/{name}", a.renameVersion)
	a.mux.HandleFunc("DELETE /api/docs/{id}/versions/{name}", a.deleteVersion)
	a.mux.HandleFunc("GET /api/docs/{id}/retention", a.getRetention)
	a.mux.HandleFunc("PUT /api/docs/{id}/retention", a.putRetention)
	a.mux.HandleFunc("DELETE /api/docs/{id}/retention", a.deleteRetention)
	a.mux.HandleFunc("POST /api/compact", a.compact)
}

// compact compacts the store online; with auth on it needs edit access to
// every document (it rewrites them all).
func (a *API) compact(w http.ResponseWriter, r *http.Request) {
	claims, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	if a.cfg.Compact == nil {
		a.fail(w, r, contract.CodeNotFound, "compaction is not available")
		return
	}
	if !a.accessToAll(w, r, claims, auth.Edit, "a compaction needs edit access to every document") {
		return
	}
	res, err := a.cfg.Compact(r.Context())
	if err != nil {
		a.cfg.Logger.Warn().Err(err).Msg("compaction failed")
		a.fail(w, r, contract.CodeInternal, "compaction failed")
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{
		"bytesBefore": res.Before(), "bytesAfter": res.After(),
		"fileBefore": res.FileBefore, "fileAfter": res.FileAfter,
		"journalBefore": res.JournalBefore, "journalAfter": res.JournalAfter,
	})
}

// versionBody is the body of POST (name, rev) and PATCH (name).
type versionBody struct {
	Name string `json:"name"`
	Rev  uint64 `json:"rev"`
}

// readVersionBody decodes a version request's JSON body.
func (a *API) readVersionBody(w http.ResponseWriter, r *http.Request) (versionBody, bool) {
	var v versionBody
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxVersionBody))
	if err != nil {
		a.fail(w, r, contract.CodeTooLarge, "the body is limited to 4 KiB")
		return v, false
	}
	if !utf8.Valid(b) || json.Unmarshal(b, &v) != nil {
		a.fail(w, r, contract.CodeBadRequest, `the body must be a JSON object {"name", "rev"?}`)
		return v, false
	}
	if !contract.ValidVersionName(v.Name) {
		a.fail(w, r, contract.CodeBadRequest, "name must be "+contract.VersionNameRule)
		return v, false
	}
	return v, true
}

func (a *API) versions(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.doc(w, r, auth.View)
	if !ok {
		return
	}
	vs, err := a.cfg.Hub.Versions(r.Context(), id)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	if vs == nil {
		vs = []storage.Version{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

func (a *API) createVersion(w http.ResponseWriter, r *http.Request) {
	id, claims, ok := a.doc(w, r, auth.Edit)
	if !ok {
		return
	}
	body, ok := a.readVersionBody(w, r)
	if !ok {
		return
	}
	user := ""
	if claims != nil {
		user = claims.User
	}
	v, err := a.cfg.Hub.NameVersion(r.Context(), id, body.Name, body.Rev, user)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	a.versionChanged(id, "create", body.Name, &v)
	writeJSON(w, http.StatusCreated, v)
}

func (a *API) version(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.doc(w, r, auth.View)
	if !ok {
		return
	}
	v, text, err := a.cfg.Hub.VersionText(r.Context(), id, r.PathValue("name"))
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		storage.Version
		Text string `json:"text"`
	}{v, text})
}

func (a *API) renameVersion(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.doc(w, r, auth.Edit)
	if !ok {
		return
	}
	body, ok := a.readVersionBody(w, r)
	if !ok {
		return
	}
	v, err := a.cfg.Hub.RenameVersion(r.Context(), id, r.PathValue("name"), body.Name)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	a.versionChanged(id, "rename", r.PathValue("name"), &v)
	writeJSON(w, http.StatusOK, v)
}

func (a *API) deleteVersion(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.doc(w, r, auth.Edit)
	if !ok {
		return
	}
	if err := a.cfg.Hub.DeleteVersion(r.Context(), id, r.PathValue("name")); err != nil {
		a.failErr(w, r, err)
		return
	}
	a.versionChanged(id, "delete", r.PathValue("name"), nil)
	w.WriteHeader(http.StatusNoContent)
}

// versionChanged calls the VersionChanged hook, if any.
func (a *API) versionChanged(doc, action, name string, v *storage.Version) {
	if a.cfg.VersionChanged != nil {
		a.cfg.VersionChanged(doc, action, name, v)
	}
}

// failGone answers 410 gone with the earliest revision still available.
func (a *API) failGone(w http.ResponseWriter, r *http.Request, msg string, earliest uint64) {
	if a.cfg.OnError != nil {
		a.cfg.OnError(string(contract.CodeGone))
	}
	a.cfg.Logger.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", http.StatusGone).Str("code", string(contract.CodeGone)).Msg(msg)
	type body struct {
		Code     contract.Code `json:"code"`
		Message  string        `json:"message"`
		Earliest uint64        `json:"earliest"`
	}
	writeJSON(w, http.StatusGone, map[string]body{"error": {contract.CodeGone, msg, earliest}})
}
