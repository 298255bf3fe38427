package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A rule gives a layer its packages and the module packages they may import.
// Patterns are paths relative to the module root; "x/..." matches x and every
// package below it, "..." matches every package. A package may always import
// itself (an external test package does).
type rule struct {
	layer string
	pkgs  []string
	may   []string
}

// leaves are the bottom of the house: pure helpers every layer may use.
// Below them lies only the wire contract's table (internal/contract).
var leaves = []string{"ot", "auth", "metrics", "internal/crashtest", "internal/jsonx", "internal/layers", "internal/natstest", "internal/sioclient", "internal/contract"}

// rules is the table of docs/architecture.md, "Layers"; keep the two equal.
// Each layer may import the layers below it, never one above or beside it.
var rules = []rule{
	// internal/contract/genjs is a program: it writes the frontend's copy
	// of the contract.
	{"app", []string{"cmd/...", "internal/contract/genjs"}, []string{"..."}},
	// The edge reaches the transport through sockets' API only: "sockets"
	// matches that package, not sockets/engineio or sockets/parser.
	// webhook tells other services about commits: an edge to the outside
	// like httpapi, fed by the app through collab.Config's hooks.
	{"edge", []string{"httpapi", "collab/session", "webhook"}, append([]string{"collab", "storage", "sockets"}, leaves...)},
	// The core knows nothing of sockets, HTTP or users (auth).
	{"core", []string{"collab"}, []string{"storage", "ot", "metrics", "internal/..."}},
	{"store", []string{"storage"}, []string{"ot", "internal/..."}},
	// Leaves import no other package of the module but the contract's
	// table, which imports nothing.
	{"leaves", leaves[:len(leaves)-1], []string{"internal/contract"}},
	{"contract", []string{"internal/contract"}, nil},
	// The transport knows nothing of documents; it shares the internal
	// helpers (sockets/parser uses internal/jsonx).
	{"transport", []string{"sockets/..."}, []string{"sockets/...", "internal/..."}},
	{"browser", []string{"frontend/..."}, nil},
}

// An exception excuses known wrong-way imports until the change that
// removes them lands; the check fails once one is no longer needed.
type exception struct {
	from string
	to   []string
	why  string
}

var exceptions = []exception{}

// A pkg is one package of the module and the module packages it imports,
// all as paths relative to the module root.
type pkg struct {
	path    string
	imports []string // by its non-test files
	tests   []string // only by its tests
}

func match(pattern, path string) bool {
	if pattern == "..." {
		return true
	}
	if dir, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == dir || strings.HasPrefix(path, dir+"/")
	}
	return path == pattern
}

func matchAny(patterns []string, path string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, path) })
}

// check returns one message per import that runs the wrong way, per package
// that belongs to no layer (or to two), and per exception no longer needed.
func check(rules []rule, exceptions []exception, pkgs []pkg) []string {
	var bad []string
	used := map[[2]string]bool{}
	excused := func(from, to string) bool {
		for _, e := range exceptions {
			if e.from == from && slices.Contains(e.to, to) {
				used[[2]string{from, to}] = true
				return true
			}
		}
		return false
	}
	for _, p := range pkgs {
		var in []rule
		for _, r := range rules {
			if matchAny(r.pkgs, p.path) {
				in = append(in, r)
			}
		}
		if len(in) != 1 {
			bad = append(bad, fmt.Sprintf("%s is in %s: give it exactly one layer in the rules of internal/layers/layers_test.go and in docs/architecture.md", p.path, layerNames(in)))
			continue
		}
		r := in[0]
		for _, imp := range []struct {
			paths []string
			where string
		}{{p.imports, ""}, {p.tests, " (in its tests)"}} {
			for _, to := range imp.paths {
				if to == p.path || matchAny(r.may, to) || excused(p.path, to) {
					continue
				}
				may := "nothing from the module"
				if len(r.may) > 0 {
					may = "only " + strings.Join(r.may, ", ")
				}
				bad = append(bad, fmt.Sprintf("%s imports %s%s: the %s layer (%s) may import %s", p.path, to, imp.where, r.layer, strings.Join(r.pkgs, ", "), may))
			}
		}
	}
	for _, e := range exceptions {
		for _, to := range e.to {
			if !used[[2]string{e.from, to}] {
				bad = append(bad, fmt.Sprintf("exception %s -> %s (%s) is not needed any more: delete it", e.from, to, e.why))
			}
		}
	}
	return bad
}

func layerNames(rs []rule) string {
	if len(rs) == 0 {
		return "no layer"
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.layer)
	}
	return "layers " + strings.Join(names, " and ")
}

func TestCheckFindsWrongWayImports(t *testing.T) {
	session := exception{"collab/session", []string{"sockets/engineio"}, "test"}
	for _, tc := range []struct {
		name       string
		exceptions []exception
		pkgs       []pkg
		want       []string // one substring per expected message
	}{
		{name: "allowed imports", pkgs: []pkg{
			{path: "cmd/collabd", imports: []string{"collab/session", "sockets/engineio", "storage", "frontend"}},
			{path: "httpapi", imports: []string{"collab", "storage", "auth", "ot", "metrics", "internal/jsonx"}},
			{path: "collab/session", imports: []string{"collab", "sockets"}, tests: []string{"internal/sioclient", "collab/session"}},
			{path: "collab", imports: []string{"storage", "ot"}, tests: []string{"internal/crashtest"}},
			{path: "storage", imports: []string{"ot"}},
			{path: "sockets", imports: []string{"sockets/engineio", "sockets/parser"}},
			{path: "sockets/parser", imports: []string{"internal/jsonx"}},
			{path: "ot", tests: []string{"ot"}},
			{path: "frontend"},
		}},
		{name: "storage imports collab",
			pkgs: []pkg{{path: "storage", imports: []string{"ot", "collab"}}},
			want: []string{"storage imports collab: the store layer (storage) may import only ot, internal/..."}},
		{name: "storage tests import collab",
			pkgs: []pkg{{path: "storage", tests: []string{"collab"}}},
			want: []string{"storage imports collab (in its tests)"}},
		{name: "a leaf imports a leaf",
			pkgs: []pkg{{path: "ot", imports: []string{"internal/jsonx"}}},
			want: []string{"ot imports internal/jsonx: the leaves layer (ot, auth, metrics, internal/crashtest, internal/jsonx, internal/layers, internal/natstest, internal/sioclient) may import only internal/contract"}},
		{name: "the contract imports a leaf",
			pkgs: []pkg{{path: "internal/contract", tests: []string{"auth"}}},
			want: []string{"internal/contract imports auth (in its tests): the contract layer (internal/contract) may import nothing from the module"}},
		{name: "a leaf imports upward",
			pkgs: []pkg{{path: "internal/jsonx", imports: []string{"storage"}}},
			want: []string{"internal/jsonx imports storage"}},
		{name: "core imports the edge and the transport",
			pkgs: []pkg{{path: "collab", imports: []string{"collab/session", "sockets"}}},
			want: []string{"collab imports collab/session", "collab imports sockets"}},
		{name: "the edge imports a sockets subpackage",
			pkgs: []pkg{{path: "httpapi", imports: []string{"sockets/engineio"}}},
			want: []string{"httpapi imports sockets/engineio"}},
		{name: "edge to edge",
			pkgs: []pkg{{path: "httpapi", imports: []string{"collab/session"}}},
			want: []string{"httpapi imports collab/session"}},
		{name: "the transport imports documents",
			pkgs: []pkg{{path: "sockets/parser", imports: []string{"ot"}}},
			want: []string{"sockets/parser imports ot"}},
		{name: "the browser imports Go",
			pkgs: []pkg{{path: "frontend", imports: []string{"sockets"}}},
			want: []string{"frontend imports sockets"}},
		{name: "a package in no layer",
			pkgs: []pkg{{path: "cluster"}},
			want: []string{"cluster is in no layer"}},
		{name: "an exception excuses its import only",
			exceptions: []exception{session},
			pkgs:       []pkg{{path: "collab/session", imports: []string{"sockets/engineio", "sockets/parser"}}},
			want:       []string{"collab/session imports sockets/parser"}},
		{name: "an exception no longer needed",
			exceptions: []exception{session},
			pkgs:       []pkg{{path: "collab/session", imports: []string{"sockets"}}},
			want:       []string{"exception collab/session -> sockets/engineio (test) is not needed any more"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := check(rules, tc.exceptions, tc.pkgs)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d messages, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("message %d: %q\nwant it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// TestModuleImportsRunDown checks every package of the module against rules.
func TestModuleImportsRunDown(t *testing.T) {
	pkgs := loadModule(t)
	for _, want := range []string{"ot", "storage", "collab", "collab/session", "httpapi", "sockets", "cmd/collabd"} {
		if !slices.ContainsFunc(pkgs, func(p pkg) bool { return p.path == want }) {
			t.Fatalf("go list did not report package %s", want)
		}
	}
	for _, msg := range check(rules, exceptions, pkgs) {
		t.Error(msg)
	}
}

// loadModule lists the module's packages and their module-internal imports
// with go list.
func loadModule(t *testing.T) []pkg {
	t.Helper()
	var mod struct{ Path, Dir string }
	if err := json.Unmarshal(goList(t, "-m", "-json"), &mod); err != nil {
		t.Fatal(err)
	}
	registerSources(t, mod.Dir)
	inModule := func(paths ...[]string) []string {
		var out []string
		for _, ps := range paths {
			for _, p := range ps {
				if r, ok := strings.CutPrefix(p, mod.Path+"/"); ok && !slices.Contains(out, r) {
					out = append(out, r)
				}
			}
		}
		return out
	}
	dec := json.NewDecoder(bytes.NewReader(goList(t, "-json=ImportPath,Imports,TestImports,XTestImports", mod.Path+"/...")))
	var pkgs []pkg
	for {
		var l struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		p := pkg{path: strings.TrimPrefix(l.ImportPath, mod.Path+"/"), imports: inModule(l.Imports)}
		for _, to := range inModule(l.TestImports, l.XTestImports) {
			if !slices.Contains(p.imports, to) {
				p.tests = append(p.tests, to)
			}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func goList(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// registerSources opens every directory go list looks in. go test caches a
// passing result keyed on the files the test itself opened, and go list
// reads the sources in a child process: without this, a new wrong-way
// import would be met by the cached pass.
func registerSources(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		// The directories the go command skips in "./..." patterns.
		if name := d.Name(); path != root && (name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		_, err = os.ReadDir(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
