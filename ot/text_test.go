package ot

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestTextBasics(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    string
	}{
		{"empty", ""},
		{"ascii", "hello world"},
		{"mixed", "héllo 中文 😀 👍🏽 e\u0301"},
		{"one leaf exactly", strings.Repeat("a", maxLeaf)},
		{"many leaves ascii", strings.Repeat("abcdefghij", 1000)},
		{"many leaves multibyte", strings.Repeat("中😀é", 2000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := NewText(tc.s)
			checkRope(t, x)
			if x.String() != tc.s {
				t.Fatalf("String() differs from input")
			}
			if x.Len() != utf8.RuneCountInString(tc.s) || x.ByteLen() != len(tc.s) {
				t.Fatalf("Len %d ByteLen %d, want %d %d", x.Len(), x.ByteLen(), utf8.RuneCountInString(tc.s), len(tc.s))
			}
			var buf bytes.Buffer
			n, err := x.WriteTo(&buf)
			if err != nil || n != int64(len(tc.s)) || buf.String() != tc.s {
				t.Fatalf("WriteTo: n=%d err=%v equal=%v", n, err, buf.String() == tc.s)
			}
			var chunks strings.Builder
			for c := range x.Chunks() {
				if c == "" {
					t.Fatal("empty chunk")
				}
				chunks.WriteString(c)
			}
			if chunks.String() != tc.s {
				t.Fatal("Chunks do not add up to the text")
			}
			rs := []rune(tc.s)
			for i := 0; i <= len(rs); i += 1 + len(rs)/17 {
				for j := i; j <= len(rs); j += 1 + len(rs)/13 {
					if got := x.Slice(i, j); got != string(rs[i:j]) {
						t.Fatalf("Slice(%d, %d) = %q, want %q", i, j, got, string(rs[i:j]))
					}
				}
			}
			if !x.Equal(NewText(tc.s)) || x.Equal(NewText(tc.s+"!")) {
				t.Fatal("Equal is wrong")
			}
		})
	}
}

func TestTextZeroValue(t *testing.T) {
	var x Text
	if x.Len() != 0 || x.ByteLen() != 0 || x.String() != "" || x.Slice(0, 0) != "" {
		t.Fatal("zero Text is not empty")
	}
	y, err := mustParse(t, `["abc"]`).Apply(x)
	if err != nil || y.String() != "abc" {
		t.Fatalf("insert into zero Text: %q %v", y.String(), err)
	}
}

func TestTextInvalidUTF8Replaced(t *testing.T) {
	x := NewText("a\xffb")
	if x.String() != "a\uFFFDb" || x.Len() != 3 {
		t.Fatalf("got %q len %d", x.String(), x.Len())
	}
}

func TestTextSlicePanicsOutOfRange(t *testing.T) {
	x := NewText("abc")
	for _, r := range [][2]int{{-1, 1}, {2, 1}, {0, 4}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Slice(%d, %d) did not panic", r[0], r[1])
				}
			}()
			x.Slice(r[0], r[1])
		}()
	}
}

type failWriter struct{ n int }

var errWrite = errors.New("write failed")

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n < len(p) {
		k := w.n
		w.n = 0
		return k, errWrite
	}
	w.n -= len(p)
	return len(p), nil
}

func TestTextWriteToError(t *testing.T) {
	x := NewText(strings.Repeat("z", 5000))
	n, err := x.WriteTo(&failWriter{n: 2500})
	if !errors.Is(err, errWrite) || n != 2500 {
		t.Fatalf("n=%d err=%v, want 2500 and errWrite", n, err)
	}
}

// edit is one random edit for the rope model test.
type edit struct {
	pos, del int
	ins      string
}

func (e edit) op() Op {
	b := NewBuilder()
	b.Retain(e.pos)
	b.Delete(e.del)
	b.Insert(e.ins)
	return b.Build()
}

func randEdit(r *rand.Rand, n int) edit {
	e := edit{pos: r.IntN(n + 1)}
	switch r.IntN(10) {
	case 0: // big delete
		e.del = r.IntN(min(n-e.pos, 3000) + 1)
	case 1: // paste
		e.ins = randText(r, r.IntN(5000))
	case 2: // replace
		e.del = r.IntN(min(n-e.pos, 50) + 1)
		e.ins = randText(r, r.IntN(50))
	case 3, 4: // backspace
		e.del = min(n-e.pos, 1)
	default: // keystroke
		e.ins = randText(r, 1)
	}
	return e
}

// TestTextAgainstRuneModel applies random edit sequences to Text and to a
// plain []rune and compares them, checking the rope's balance and cached
// counts after every step, and that every old version still reads as it
// did (persistence).
func TestTextAgainstRuneModel(t *testing.T) {
	forBothPaths(t, testTextAgainstRuneModel)
}

// forBothPaths runs f with Apply's single-leaf fast path on and off.
func forBothPaths(t *testing.T, f func(t *testing.T)) {
	t.Run("fast path", f)
	t.Run("general path", func(t *testing.T) {
		leafFastPath = false
		t.Cleanup(func() { leafFastPath = true })
		f(t)
	})
}

func testTextAgainstRuneModel(t *testing.T) {
	for seed := range uint64(6) {
		r := rand.New(rand.NewPCG(seed, 99))
		start := randText(r, []int{0, 10, 3000, 20000, 30000, 1000}[seed])
		x := NewText(start)
		model := []rune(start)
		type version struct {
			x    Text
			want string
		}
		var old []version
		steps := 400
		if testing.Short() {
			steps = 100
		}
		for step := range steps {
			e := randEdit(r, len(model))
			y, err := e.op().Apply(x)
			if err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			model = append(model[:e.pos:e.pos], append([]rune(e.ins), model[e.pos+e.del:]...)...)
			if step%4 == 0 {
				checkRope(t, y)
			}
			if y.Len() != len(model) {
				t.Fatalf("seed %d step %d: Len %d, want %d", seed, step, y.Len(), len(model))
			}
			if step%10 == 0 {
				if y.String() != string(model) {
					t.Fatalf("seed %d step %d: text differs from the model", seed, step)
				}
				old = append(old, version{y, string(model)})
				// Same text, chunked differently.
				if !y.Equal(NewText(string(model))) || !NewText(string(model)).Equal(y) {
					t.Fatalf("seed %d step %d: Equal false for equal texts", seed, step)
				}
				if len(model) > 0 {
					alt := append([]rune(nil), model...)
					alt[len(alt)-1] = 'Q'
					if alt[len(alt)-1] != model[len(model)-1] && y.Equal(NewText(string(alt))) {
						t.Fatalf("seed %d step %d: Equal true for different texts", seed, step)
					}
				}
			}
			// Spot-check slices around the edit.
			from := max(0, e.pos-3)
			to := min(len(model), e.pos+len([]rune(e.ins))+3)
			if got := y.Slice(from, to); got != string(model[from:to]) {
				t.Fatalf("seed %d step %d: Slice(%d,%d) = %q, want %q", seed, step, from, to, got, string(model[from:to]))
			}
			x = y
		}
		if x.String() != string(model) || x.ByteLen() != len(string(model)) {
			t.Fatalf("seed %d: final text differs from the model", seed)
		}
		for i, v := range old {
			if v.x.String() != v.want {
				t.Fatalf("seed %d: old version %d changed", seed, i)
			}
		}
		// Leaves should stay reasonably full: adjacent leaves are merged when
		// they fit, so on average a leaf holds well over a quarter of maxLeaf.
		if leaves := countLeaves(x.root); leaves > 4 && x.ByteLen()/leaves < maxLeaf/4 {
			t.Errorf("seed %d: %d leaves for %d bytes: rope fragmented", seed, leaves, x.ByteLen())
		}
	}
}

func countLeaves(n *node) int {
	if n == nil {
		return 0
	}
	if n.leaf() {
		return 1
	}
	return countLeaves(n.left) + countLeaves(n.right)
}

// TestTextKeystrokesStayCompact types many single characters at one spot and
// at scattered spots and checks the rope does not degrade into tiny leaves.
func TestTextKeystrokesStayCompact(t *testing.T) {
	forBothPaths(t, testTextKeystrokesStayCompact)
}

func testTextKeystrokesStayCompact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := NewText(randText(r, 20000))
	model := []rune(x.String())
	pos := 10000
	for i := range 2000 {
		if i%100 == 0 {
			pos = r.IntN(len(model) + 1)
		}
		ch := randText(r, 1)
		var err error
		x, err = edit{pos: pos, ins: ch}.op().Apply(x)
		if err != nil {
			t.Fatal(err)
		}
		model = append(model[:pos:pos], append([]rune(ch), model[pos:]...)...)
		pos++
	}
	checkRope(t, x)
	if x.String() != string(model) {
		t.Fatal("text differs from the model")
	}
	if leaves := countLeaves(x.root); x.ByteLen()/leaves < maxLeaf/3 {
		t.Errorf("%d leaves for %d bytes: rope fragmented", leaves, x.ByteLen())
	}
	if h := x.root.height; h > 20 {
		t.Errorf("height %d for %d leaves", h, countLeaves(x.root))
	}
}

// TestTextConcurrentReaders reads old versions from several goroutines while
// another derives new versions; run with -race.
func TestTextConcurrentReaders(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	base := NewText(randText(r, 20000))
	want := base.String()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if base.String() != want || base.Slice(100, 200) != string([]rune(want)[100:200]) {
					t.Error("base text changed under a reader")
					return
				}
			}
		})
	}
	x := base
	for range 500 {
		var err error
		x, err = randEdit(r, x.Len()).op().Apply(x)
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if base.String() != want {
		t.Fatal("base text changed")
	}
}

// TestApplySharesUnchangedSubtrees checks structurally that a small edit on
// a large text copies only O(log n) nodes and a few leaves' bytes, and that
// the single-leaf fast path copies exactly one root-to-leaf path.
func TestApplySharesUnchangedSubtrees(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	base := NewText(randText(r, 300_000)) // about 1 MiB
	old := map[*node]bool{}
	var mark func(n *node)
	mark = func(n *node) {
		old[n] = true
		if !n.leaf() {
			mark(n.left)
			mark(n.right)
		}
	}
	mark(base.root)
	fresh := func(x Text) (nodes, leafBytes int) {
		var walk func(n *node)
		walk = func(n *node) {
			if old[n] {
				return
			}
			nodes++
			if n.leaf() {
				leafBytes += n.bytes
				return
			}
			walk(n.left)
			walk(n.right)
		}
		walk(x.root)
		return nodes, leafBytes
	}
	h := base.root.height
	for _, tc := range []struct {
		name     string
		op       string
		fast     bool
		maxNodes int
	}{
		{"keystroke", `[150000,"x"]`, true, h + 1},
		{"backspace", `[150000,-1]`, true, h + 1},
		{"replace", `[150000,"xyz",-2]`, true, h + 1},
		{"at the start", `["x"]`, true, h + 1},
		{"at the end", `[300000,"x"]`, true, h + 1},
		{"across leaves", `[150000,-3000]`, false, 8*h + 8},
		{"paste", `[150000,"` + strings.Repeat("p", 5000) + `"]`, false, 8*h + 20},
		{"keystroke, general path", `[150000,"x"]`, false, 8*h + 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.fast {
				leafFastPath = false
				t.Cleanup(func() { leafFastPath = true })
			}
			x, err := mustParse(t, tc.op).Apply(base)
			if err != nil {
				t.Fatal(err)
			}
			checkRope(t, x)
			nodes, leafBytes := fresh(x)
			if nodes > tc.maxNodes {
				t.Errorf("%d new nodes, want at most %d (height %d)", nodes, tc.maxNodes, h)
			}
			ins, _ := mustParse(t, tc.op).Stats()
			if leafBytes > 4*maxLeaf+ins {
				t.Errorf("%d bytes of new leaves for a %d code point insert", leafBytes, ins)
			}
		})
	}
}

func TestCountRunes(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	for i := range 2000 {
		s := randText(r, r.IntN(100))
		if got, want := countRunes(s), utf8.RuneCountInString(s); got != want {
			t.Fatalf("case %d: countRunes(%q) = %d, want %d", i, s, got, want)
		}
		for j := 0; j <= utf8.RuneCountInString(s); j++ {
			if got, want := advance(s, j), len(string([]rune(s)[:j])); got != want {
				t.Fatalf("case %d: advance(%q, %d) = %d, want %d", i, s, j, got, want)
			}
		}
	}
}
