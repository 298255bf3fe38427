package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/internal/contract"
)

// ErrNoAdminSecret is returned by NewAdmin without a secret or a list.
var ErrNoAdminSecret = errors.New("httpapi: AdminConfig.Secret and Revocations are required")

// AdminConfig configures NewAdmin.
type AdminConfig struct {
	// Secret is the bearer token of every admin request (required); it is
	// not a user token.
	Secret string
	// Revocations is the list the admin endpoint edits (required).
	Revocations *auth.Revocations
	// OnChange, when non-nil, is called after every change with the new
	// list, before the answer (the server persists it and ends the access
	// of the open connections it revokes). An error is answered internal;
	// the change stays in effect in memory.
	OnChange func(auth.RevocationList) error
	// Share, when non-nil, hands each change (the token ids and users'
	// not-before times of one POST) to the other nodes of a cluster,
	// before the answer. An error is answered unavailable: the change is
	// in effect on this node only, and the same POST may be sent again.
	Share func(ctx context.Context, change auth.RevocationList) error
	// OnError, when non-nil, is called with the code of every error response.
	OnError func(code string)
	Logger  zerolog.Logger
}

// Admin serves the admin endpoints:
//
//	GET  /admin/revocations   {"jti": [...], "not_before": {"user": time}}
//	POST /admin/revocations   {"jti"?: [...], "users"?: [...], "not_before"?: time} -> the list
//
// each with "Authorization: Bearer <admin secret>". A POST revokes the
// token ids listed and sets the not-before time of the users listed (the
// given time, else now): their tokens issued before it are refused.
type Admin struct {
	cfg  AdminConfig
	hash [32]byte // sha256 of the secret
	api  *API     // for its error answers
	mux  *http.ServeMux
}

// NewAdmin returns the admin handler.
func NewAdmin(cfg AdminConfig) (*Admin, error) {
	if cfg.Secret == "" || cfg.Revocations == nil {
		return nil, ErrNoAdminSecret
	}
	ad := &Admin{cfg: cfg, hash: sha256.Sum256([]byte(cfg.Secret)), mux: http.NewServeMux()}
	ad.api = &API{cfg: Config{OnError: cfg.OnError, Logger: cfg.Logger, MaxBodyBytes: 1 << 20}}
	ad.mux.HandleFunc("GET /admin/revocations", ad.list)
	ad.mux.HandleFunc("POST /admin/revocations", ad.revoke)
	return ad, nil
}

// Authorized reports whether r carries the admin secret as its bearer token.
func (ad *Admin) Authorized(r *http.Request) bool {
	tok, ok := auth.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	h := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(h[:], ad.hash[:]) == 1
}

// ServeHTTP serves /admin/....
func (ad *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !ad.Authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="collabd-admin"`)
		ad.api.fail(w, r, contract.CodeUnauthorized, "Authorization: Bearer <admin secret> is required")
		return
	}
	if _, pattern := ad.mux.Handler(r); pattern == "" {
		ad.api.fail(w, r, contract.CodeNotFound, "no such route")
		return
	}
	ad.mux.ServeHTTP(w, r)
}

func (ad *Admin) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, ad.cfg.Revocations.List())
}

func (ad *Admin) revoke(w http.ResponseWriter, r *http.Request) {
	var req struct {
		IDs       []string   `json:"jti"`
		Users     []string   `json:"users"`
		NotBefore *time.Time `json:"not_before"`
	}
	if !ad.api.readJSON(w, r, &req) {
		return
	}
	if len(req.IDs)+len(req.Users) == 0 {
		ad.api.fail(w, r, contract.CodeBadRequest, `give "jti" (token ids) or "users" to revoke`)
		return
	}
	nb := time.Now()
	if req.NotBefore != nil {
		nb = *req.NotBefore
	}
	users := make(map[string]time.Time, len(req.Users))
	for _, u := range req.Users {
		users[u] = nb
	}
	if err := ad.cfg.Revocations.Revoke(req.IDs, users); err != nil {
		code := contract.CodeBadRequest
		if errors.Is(err, auth.ErrTooManyRevocations) {
			code = contract.CodeTooLarge
		}
		ad.api.fail(w, r, code, err.Error())
		return
	}
	list := ad.cfg.Revocations.List()
	ad.cfg.Logger.Info().Strs("jti", req.IDs).Strs("users", req.Users).Time("not_before", nb).Msg("tokens revoked")
	// In effect here first (open connections included), then told to the
	// other nodes, which may take a while when NATS is away.
	var saveErr, shareErr error
	if ad.cfg.OnChange != nil {
		saveErr = ad.cfg.OnChange(list)
	}
	if ad.cfg.Share != nil {
		shareErr = ad.cfg.Share(r.Context(), auth.RevocationList{IDs: req.IDs, Users: users})
	}
	if saveErr != nil {
		ad.cfg.Logger.Error().Err(saveErr).Msg("revocations changed")
		ad.api.fail(w, r, contract.CodeInternal, "the revocation is in effect but could not be saved: "+saveErr.Error())
		return
	}
	if shareErr != nil {
		ad.cfg.Logger.Error().Err(shareErr).Msg("revocations not shared with the other nodes")
		ad.api.fail(w, r, contract.CodeUnavailable, "the revocation is in effect on this node only, the other nodes could not be told: "+shareErr.Error()+"; send the same request again")
		return
	}
	writeJSON(w, http.StatusOK, list)
}
