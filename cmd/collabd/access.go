package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/httpapi"
	"github.com/collabd/collabd/internal/contract"
)

// revocationsFile holds the revoked token ids and users' not-before times
// set through the admin endpoint (JSON, written atomically).
const revocationsFile = "revocations.json"

// readSecret returns the secret of flag name given inline or in a file;
// the two are exclusive.
func readSecret(name, value, file string) (string, error) {
	if value != "" && file != "" {
		return "", fmt.Errorf("--%s and --%s-file are exclusive", name, name)
	}
	if file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--%s-file: %w", name, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("--%s-file %s is empty", name, file)
	}
	return s, nil
}

// loadRevocations reads path into a new list; a missing file is an empty
// list.
func loadRevocations(path string) (*auth.Revocations, error) {
	r := auth.NewRevocations()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	var l auth.RevocationList
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := r.Revoke(l.IDs, l.Users); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// saveRevocations writes l to path atomically.
func saveRevocations(path string, l auth.RevocationList) error {
	_, err := writeFileAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(l)
	})
	return err
}

// guardMetrics serves h only to requests with the admin secret or a valid
// token as their bearer token (--metrics-auth).
func guardMetrics(h http.Handler, authority *auth.Authority, admin *httpapi.Admin) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if admin != nil && admin.Authorized(r) {
			h.ServeHTTP(w, r)
			return
		}
		if tok, ok := auth.BearerToken(r.Header.Get("Authorization")); ok {
			if _, err := authority.Verify(tok); err == nil {
				h.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="collabd"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
			"code": string(contract.CodeUnauthorized), "message": "Authorization: Bearer <token or admin secret> is required (--metrics-auth)"}})
	})
}

func init() {
	// Flags given two ways (see alternative): the admin and webhook secrets.
	for _, name := range []string{"admin-secret", "webhook-secret"} {
		alternative[name] = name + "-file"
		alternative[name+"-file"] = name
	}
}
