package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/internal/contract"
	"github.com/collabd/collabd/storage"
)

// retentionJSON is a retention policy on the wire: days and revisions
// kept (0: no bound), and whether it is the document's own.
type retentionJSON struct {
	Days      uint64 `json:"days"`
	Revisions uint64 `json:"revisions"`
	Own       bool   `json:"own"`
}

const day = 24 * time.Hour

func (a *API) getRetention(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.doc(w, r, auth.View)
	if !ok {
		return
	}
	p, own, err := a.cfg.Hub.Retention(r.Context(), id)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, retentionJSON{Days: uint64(p.KeepFor / day), Revisions: p.KeepRevs, Own: own})
}

func (a *API) putRetention(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.doc(w, r, auth.Edit)
	if !ok {
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxVersionBody))
	if err != nil {
		a.fail(w, r, contract.CodeTooLarge, "the body is limited to 4 KiB")
		return
	}
	var body struct {
		Days      *uint64 `json:"days"`
		Revisions *uint64 `json:"revisions"`
	}
	if json.Unmarshal(b, &body) != nil || body.Days == nil && body.Revisions == nil {
		a.fail(w, r, contract.CodeBadRequest, `the body must be a JSON object {"days", "revisions"} (0: no bound)`)
		return
	}
	var p storage.Retention
	if body.Days != nil {
		if *body.Days > 1<<20 {
			a.fail(w, r, contract.CodeBadRequest, "days must be at most 1048576")
			return
		}
		p.KeepFor = time.Duration(*body.Days) * day
	}
	if body.Revisions != nil {
		p.KeepRevs = *body.Revisions
	}
	if err := a.cfg.Hub.SetRetention(r.Context(), id, &p); err != nil {
		a.failErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, retentionJSON{Days: uint64(p.KeepFor / day), Revisions: p.KeepRevs, Own: true})
}

func (a *API) deleteRetention(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.doc(w, r, auth.Edit)
	if !ok {
		return
	}
	if err := a.cfg.Hub.SetRetention(r.Context(), id, nil); err != nil {
		a.failErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
