package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/storage"
)

func TestNamedVersionEndpoints(t *testing.T) {
	authority, err := auth.New([]byte("a test secret of 32 bytes.......!"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, authority, 0)
	tok := func(c auth.Claims) []string {
		s, err := authority.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		return []string{"Authorization", "Bearer " + s, "Content-Type", "application/json"}
	}
	editor := tok(auth.Claims{User: "ed", Edit: []string{"d"}})
	viewer := tok(auth.Claims{User: "vi", View: []string{"d"}})
	f.put(t, "d", "first text", 0, editor...)
	f.put(t, "d", "second text", 1, editor...)

	var v storage.Version
	r := f.do(t, "POST", "/api/docs/d/versions", strings.NewReader(`{"name":"Sent to client"}`), editor...)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r.json(t, &v)
	if v.Name != "Sent to client" || v.Rev != 2 || v.User != "ed" || v.Created.IsZero() {
		t.Fatalf("created %+v", v)
	}
	if r := f.do(t, "POST", "/api/docs/d/versions", strings.NewReader(`{"name":"v1","rev":1}`), editor...); r.status != http.StatusCreated {
		t.Fatalf("create at rev 1: %d %s", r.status, r.body)
	}
	// A name with a slash is one path segment, escaped.
	if r := f.do(t, "POST", "/api/docs/d/versions", strings.NewReader(`{"name":"a/b","rev":1}`), editor...); r.status != http.StatusCreated {
		t.Fatalf("create a/b: %d %s", r.status, r.body)
	}
	if r := f.do(t, "DELETE", "/api/docs/d/versions/a%2Fb", nil, editor...); r.status != http.StatusNoContent {
		t.Fatalf("delete a/b: %d %s", r.status, r.body)
	}
	f.put(t, "d", "third", 2, editor...)

	esc := "/api/docs/d/versions/" + url.PathEscape("Sent to client")
	var got struct {
		storage.Version
		Text string
	}
	f.do(t, "GET", esc, nil, viewer...).json(t, &got)
	if got.Text != "second text" || got.Rev != 2 {
		t.Fatalf("version text %+v", got)
	}
	var list struct{ Versions []storage.Version }
	f.do(t, "GET", "/api/docs/d/versions", nil, viewer...).json(t, &list)
	if len(list.Versions) != 2 || list.Versions[0].Rev != 2 || list.Versions[1].Name != "v1" {
		t.Fatalf("list %+v", list.Versions)
	}

	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code                     string
	}{
		{"viewer creates", "POST", "/api/docs/d/versions", `{"name":"x"}`, viewer, 403, "forbidden"},
		{"viewer renames", "PATCH", "/api/docs/d/versions/v1", `{"name":"x"}`, viewer, 403, "forbidden"},
		{"viewer deletes", "DELETE", "/api/docs/d/versions/v1", "", viewer, 403, "forbidden"},
		{"taken name", "POST", "/api/docs/d/versions", `{"name":"v1"}`, editor, 409, "conflict"},
		{"future rev", "POST", "/api/docs/d/versions", `{"name":"later","rev":99}`, editor, 404, "not_found"},
		{"bad name", "POST", "/api/docs/d/versions", `{"name":""}`, editor, 400, "bad_request"},
		{"not JSON", "POST", "/api/docs/d/versions", `name=x`, editor, 400, "bad_request"},
		{"missing version", "GET", "/api/docs/d/versions/none", "", viewer, 404, "not_found"},
		{"rename onto taken", "PATCH", "/api/docs/d/versions/v1", `{"name":"Sent to client"}`, editor, 409, "conflict"},
	} {
		var body *strings.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		var r resp
		if body != nil {
			r = f.do(t, tc.method, tc.path, body, tc.hdr...)
		} else {
			r = f.do(t, tc.method, tc.path, nil, tc.hdr...)
		}
		if r.status != tc.status || r.errCode(t) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}

	r = f.do(t, "PATCH", "/api/docs/d/versions/v1", strings.NewReader(`{"name":"v1 final"}`), editor...)
	if r.status != 200 {
		t.Fatalf("rename: %d %s", r.status, r.body)
	}
	r.json(t, &v)
	if v.Name != "v1 final" || v.Rev != 1 {
		t.Fatalf("renamed %+v", v)
	}
	if r := f.do(t, "DELETE", "/api/docs/d/versions/"+url.PathEscape("v1 final"), nil, editor...); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	f.do(t, "GET", "/api/docs/d/versions", nil, viewer...).json(t, &list)
	if len(list.Versions) != 1 {
		t.Fatalf("list after delete %+v", list.Versions)
	}
	// Every change that succeeded, and none that failed, was told.
	want := []string{"d create Sent to client -> Sent to client", "d create v1 -> v1", "d create a/b -> a/b", "d delete a/b",
		"d rename v1 -> v1 final", "d delete v1 final"}
	f.changesMu.Lock()
	told := strings.Join(f.changes, "|")
	f.changesMu.Unlock()
	if told != strings.Join(want, "|") {
		t.Fatalf("VersionChanged calls %q, want %q", told, want)
	}
	// Deleting the document deletes its versions.
	if r := f.do(t, "DELETE", "/api/docs/d", nil, editor...); r.status != http.StatusNoContent {
		t.Fatalf("delete doc: %d %s", r.status, r.body)
	}
	f.do(t, "GET", "/api/docs/d/versions", nil, viewer...).json(t, &list)
	if len(list.Versions) != 0 {
		t.Fatalf("versions after the document's delete %+v", list.Versions)
	}
}
