package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/internal/contract"
)

// opRequest is the body of POST /api/docs/{id}/ops.
type opRequest struct {
	Rev    *uint64         `json:"rev"`
	Op     json.RawMessage `json:"op"`
	Client string          `json:"client"`
	Seq    uint64          `json:"seq"`
}

// appendRequest is the body of POST /api/docs/{id}/append.
type appendRequest struct {
	Text   *string `json:"text"`
	Rev    *uint64 `json:"rev"`
	Client string  `json:"client"`
	Seq    uint64  `json:"seq"`
}

// opBodyBytes bounds the body of an op write: an op's JSON may be about
// twice the text it inserts (escapes), like the hub's MaxOpBytes.
func (a *API) opBodyBytes() int64 { return 2*a.cfg.MaxBodyBytes + 4096 }

// readJSON decodes the body of r into v. On failure it has answered.
func (a *API) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opBodyBytes()))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			a.fail(w, r, contract.CodeTooLarge, fmt.Sprintf("body longer than %d bytes", a.opBodyBytes()))
			return false
		}
		a.fail(w, r, contract.CodeBadRequest, "reading the body: "+err.Error())
		return false
	}
	if !utf8.Valid(body) {
		a.fail(w, r, contract.CodeBadRequest, "the body is not valid UTF-8")
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		a.fail(w, r, contract.CodeBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

// opClient checks the caller's (client, seq) pair: both or neither. Without
// them the write gets a random client id and is not recognized when
// repeated.
func (a *API) opClient(w http.ResponseWriter, r *http.Request, client string, seq uint64) (string, uint64, bool) {
	switch {
	case client == "" && seq == 0:
		c := putClient(nil, "")
		return c, 1, true
	case client == "" || seq == 0:
		a.fail(w, r, contract.CodeBadRequest, `"client" and "seq" go together (seq a positive integer)`)
		return "", 0, false
	case len(client) > contract.MaxClientIDBytes:
		a.fail(w, r, contract.CodeBadRequest, fmt.Sprintf("client id must be 1 to %d bytes", contract.MaxClientIDBytes))
		return "", 0, false
	case seq > contract.MaxInteger:
		a.fail(w, r, contract.CodeBadRequest, "seq must be at most 2^53-1")
		return "", 0, false
	}
	return client, seq, true
}

// submitOp submits an op through the hub, like a socket's doc:op, and
// answers {rev}.
func (a *API) submitOp(w http.ResponseWriter, r *http.Request, claims *auth.Claims, sub collab.Submission) {
	if claims != nil {
		sub.User = claims.User
	}
	rev, err := a.cfg.Hub.Submit(r.Context(), sub)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(rev))
	writeJSON(w, http.StatusOK, map[string]uint64{"rev": rev})
}

// ops serves POST /api/docs/{id}/ops: {rev, op, client?, seq?} -> {rev}.
// The op is sequenced exactly like a socket's doc:op: transformed over the
// records after rev, applied once per (client, seq), broadcast to the
// document's members as a record.
func (a *API) ops(w http.ResponseWriter, r *http.Request) {
	id, claims, ok := a.doc(w, r, auth.Edit)
	if !ok {
		return
	}
	var req opRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	switch {
	case req.Rev == nil:
		a.fail(w, r, contract.CodeBadRequest, `"rev" (the revision the op was made on) is required`)
		return
	case *req.Rev > contract.MaxInteger:
		a.fail(w, r, contract.CodeBadRequest, "rev must be at most 2^53-1")
		return
	case len(req.Op) == 0 || string(req.Op) == "null":
		a.fail(w, r, contract.CodeBadRequest, `"op" is required`)
		return
	}
	client, seq, ok := a.opClient(w, r, req.Client, req.Seq)
	if !ok {
		return
	}
	a.submitOp(w, r, claims, collab.Submission{Doc: id, Client: client, Seq: seq, BaseRev: *req.Rev, Op: req.Op})
}

// appendText serves POST /api/docs/{id}/append: {text, rev?, client?,
// seq?} -> {rev}. The op inserts text at the end of the text at rev (the
// head when rev is absent) and is sequenced like any op, so text appended
// concurrently by others ends up before or after it, never inside it. With
// client and seq the append is applied once; a retry must then carry the
// same rev, which is therefore required with them.
func (a *API) appendText(w http.ResponseWriter, r *http.Request) {
	id, claims, ok := a.doc(w, r, auth.Edit)
	if !ok {
		return
	}
	var req appendRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	switch {
	case req.Text == nil:
		a.fail(w, r, contract.CodeBadRequest, `"text" is required`)
		return
	case req.Rev != nil && *req.Rev > contract.MaxInteger:
		a.fail(w, r, contract.CodeBadRequest, "rev must be at most 2^53-1")
		return
	case req.Client != "" && req.Rev == nil:
		a.fail(w, r, contract.CodeBadRequest, `an append with "client" and "seq" needs "rev" too, the same in every retry`)
		return
	}
	client, seq, ok := a.opClient(w, r, req.Client, req.Seq)
	if !ok {
		return
	}
	var base uint64
	var length int
	if req.Rev == nil {
		rev, text, err := a.cfg.Hub.Text(r.Context(), id)
		if err != nil {
			a.failErr(w, r, err)
			return
		}
		base, length = rev, text.Len()
	} else {
		text, err := a.cfg.Hub.TextAt(r.Context(), id, *req.Rev)
		if err != nil {
			if collab.CodeOf(err) == contract.CodeNotFound {
				a.fail(w, r, contract.CodeConflict, fmt.Sprintf("revision %d is ahead of the document", *req.Rev))
				return
			}
			a.failErr(w, r, err)
			return
		}
		base, length = *req.Rev, utf8.RuneCountInString(text)
	}
	if *req.Text == "" {
		writeJSON(w, http.StatusOK, map[string]uint64{"rev": base})
		return
	}
	tj, err := json.Marshal(*req.Text)
	if err != nil {
		a.fail(w, r, contract.CodeBadRequest, "text: "+err.Error())
		return
	}
	op := make([]byte, 0, len(tj)+24)
	op = append(op, '[')
	if length > 0 {
		op = strconv.AppendInt(op, int64(length), 10)
		op = append(op, ',')
	}
	op = append(op, tj...)
	op = append(op, ']')
	a.submitOp(w, r, claims, collab.Submission{Doc: id, Client: client, Seq: seq, BaseRev: base, Op: op})
}
