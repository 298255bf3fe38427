package frontend

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

func TestFSHoldsTheBundle(t *testing.T) {
	fsys := FS()
	if err := fstest.TestFS(fsys, "index.html", "app.js", "editor.js", "app.css", "sw.js"); err != nil {
		t.Fatal(err)
	}
}

func TestIndexReferencesTheBundle(t *testing.T) {
	index, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<script src="/app.js" defer></script>`,
		`<link rel="stylesheet" href="/app.css">`,
		`<link rel="modulepreload" href="/editor.js">`,
		`<link rel="icon" href="data:,">`,
		`<meta name="viewport"`,
	} {
		if !strings.Contains(string(index), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	for _, name := range []string{"app.js", "editor.js", "app.css", "sw.js"} {
		info, err := fs.Stat(FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() == 0 {
			t.Errorf("%s is empty", name)
		}
	}
}
