package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/auth"
)

func TestAdminRevocations(t *testing.T) {
	revs := auth.NewRevocations()
	var changes int
	ad, err := NewAdmin(AdminConfig{Secret: "admin-secret-0123456789", Revocations: revs,
		OnChange: func(auth.RevocationList) error { changes++; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewAdmin(AdminConfig{Revocations: revs}); err == nil {
		t.Fatal("NewAdmin without a secret")
	}
	srv := httptest.NewServer(ad)
	defer srv.Close()
	f := &fixture{srv: srv}
	bearer := []string{"Authorization", "Bearer admin-secret-0123456789"}
	for name, hdr := range map[string][]string{"none": nil, "wrong": {"Authorization", "Bearer admin-secret-0123456780"}, "basic": {"Authorization", "Basic x"}} {
		if r := f.do(t, "GET", "/admin/revocations", nil, hdr...); r.status != 401 || r.errCode(t) != "unauthorized" {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := f.do(t, "POST", "/admin/revocations", strings.NewReader(`{}`), bearer...); r.status != 400 {
		t.Fatalf("empty revocation: %d %s", r.status, r.body)
	}
	if r := f.do(t, "POST", "/admin/revocations", strings.NewReader(`{"jti":[""]}`), bearer...); r.status != 400 {
		t.Fatalf("empty jti: %d %s", r.status, r.body)
	}
	nb := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	body := `{"jti":["t1","t2"],"users":["ann"],"not_before":"` + nb.Format(time.RFC3339) + `"}`
	if r := f.do(t, "POST", "/admin/revocations", strings.NewReader(body), bearer...); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	r := f.do(t, "GET", "/admin/revocations", nil, bearer...)
	var l auth.RevocationList
	if err := json.Unmarshal(r.body, &l); err != nil || len(l.IDs) != 2 || !l.Users["ann"].Equal(nb) {
		t.Fatalf("list %s: %v", r.body, err)
	}
	if changes != 1 {
		t.Fatalf("OnChange called %d times", changes)
	}
	if err := revs.Check(&auth.Claims{User: "ann", IssuedAt: nb.Add(-time.Second)}); err == nil {
		t.Fatal("ann's older token not revoked")
	}
	if r := f.do(t, "GET", "/admin/nothing", nil, bearer...); r.status != 404 {
		t.Fatalf("unknown admin route: %d", r.status)
	}
}

// TestAdminRevocationsShared: Share gets each POST's change; when it fails
// the answer is 503 unavailable and the change is in effect here anyway.
func TestAdminRevocationsShared(t *testing.T) {
	revs := auth.NewRevocations()
	var shared []auth.RevocationList
	var fail error
	ad, err := NewAdmin(AdminConfig{Secret: "admin-secret-0123456789", Revocations: revs,
		Share: func(_ context.Context, c auth.RevocationList) error {
			shared = append(shared, c)
			return fail
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ad)
	defer srv.Close()
	f := &fixture{srv: srv}
	bearer := []string{"Authorization", "Bearer admin-secret-0123456789"}
	nb := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	body := `{"jti":["t1"],"users":["ann"],"not_before":"` + nb.Format(time.RFC3339) + `"}`
	if r := f.do(t, "POST", "/admin/revocations", strings.NewReader(body), bearer...); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if len(shared) != 1 || !slices.Equal(shared[0].IDs, []string{"t1"}) || len(shared[0].Users) != 1 || !shared[0].Users["ann"].Equal(nb) {
		t.Fatalf("shared %+v", shared)
	}
	fail = errors.New("nats: no servers available")
	r := f.do(t, "POST", "/admin/revocations", strings.NewReader(`{"jti":["t2"]}`), bearer...)
	if r.status != 503 || r.errCode(t) != "unavailable" || !strings.Contains(string(r.body), "this node only") {
		t.Fatalf("revoke with Share failing: %d %s", r.status, r.body)
	}
	if err := revs.Check(&auth.Claims{User: "bob", ID: "t2"}); err == nil {
		t.Fatal("t2 not revoked on this node")
	}
	if len(shared) != 2 || !slices.Equal(shared[1].IDs, []string{"t2"}) {
		t.Fatalf("shared %+v", shared)
	}
}
