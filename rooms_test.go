// Package collabd holds the repository-level checks of the design's rules
// that no single package can check by itself.
package collabd

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/collabd/collabd"

// TestEdgeRoomsUseSocketsOnly checks the import rule of the design's rooms
// of the code: the edge rooms (httpapi, collab/session) reach the transport through package sockets only, never through its
// subpackages (sockets/engineio, sockets/parser), neither directly, nor in
// their tests, nor through another package of the module. A speed trick they
// need is API of sockets (EncodeEvent, EventWriter).
func TestEdgeRoomsUseSocketsOnly(t *testing.T) {
	for _, room := range []string{"collab/session", "httpapi"} {
		for _, chain := range transportReach(t, room) {
			t.Errorf("%s reaches a subpackage of sockets: %s", room, strings.Join(chain, " -> "))
		}
	}
}

// TestTransportReachFindsCrossings makes sure the check above can fail: the
// conformance program, an app, imports sockets/engineio itself.
func TestTransportReachFindsCrossings(t *testing.T) {
	got := map[string]bool{}
	for _, chain := range transportReach(t, "cmd/socketio-conformance") {
		got[chain[len(chain)-1]] = true
	}
	if !got["sockets/engineio"] {
		t.Errorf("cmd/socketio-conformance imports sockets/engineio, not found (found %v)", got)
	}
}

// transportReach returns the import chains (package paths relative to the
// module) from the package in directory dir, its tests included, to
// subpackages of sockets, without passing through sockets itself (the one
// gate the rooms above it may use).
func transportReach(t *testing.T, dir string) [][]string {
	t.Helper()
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	load := func(rel string) *build.Package {
		p, err := build.ImportDir(filepath.Join(root, filepath.FromSlash(rel)), 0)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		return p
	}
	inModule := func(path string) (string, bool) {
		rel, ok := strings.CutPrefix(path, module+"/")
		return rel, ok
	}
	start := load(dir)
	if len(start.GoFiles) == 0 {
		t.Fatalf("%s: no Go files", dir)
	}
	var found [][]string
	seen := map[string]bool{dir: true}
	type item struct {
		rel   string
		chain []string
	}
	var queue []item
	push := func(chain []string, imports []string) {
		for _, imp := range imports {
			rel, ok := inModule(imp)
			if !ok || seen[rel] {
				continue
			}
			seen[rel] = true
			next := append(slices.Clip(chain), rel)
			if strings.HasPrefix(rel, "sockets/") {
				found = append(found, next)
				continue
			}
			if rel != "sockets" {
				queue = append(queue, item{rel, next})
			}
		}
	}
	push([]string{dir}, slices.Concat(start.Imports, start.TestImports, start.XTestImports))
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		push(it.chain, load(it.rel).Imports)
	}
	return found
}
