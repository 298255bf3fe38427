package ot

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

var benchSizes = []struct {
	name  string
	bytes int
}{
	{"1KiB", 1 << 10},
	{"100KiB", 100 << 10},
	{"1MiB", 1 << 20},
}

// benchText returns prose of about size bytes, mostly ASCII with some
// accented, CJK and emoji words, as documents usually are.
func benchText(size int) string {
	words := []string{"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "café", "naïve", "中文", "文字", "😀", "👍🏽", "e\u0301t\u0301e\u0301", "lorem", "ipsum", "dolor", "sit", "amet"}
	r := rand.New(rand.NewPCG(42, 42))
	var b strings.Builder
	for b.Len() < size {
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// keystrokes returns n ops that each type one character at a random
// position of a text of docLen code points.
func keystrokes(r *rand.Rand, n, docLen int) []Op {
	ops := make([]Op, n)
	for i := range ops {
		b := NewBuilder()
		b.Retain(r.IntN(docLen + 1))
		b.Insert("x")
		ops[i] = b.Build()
	}
	return ops
}

// BenchmarkApply applies one keystroke (an insert, or a backspace) at a
// random position of a document; the cost must grow like log n, not n.
func BenchmarkApply(b *testing.B) {
	for _, size := range benchSizes {
		doc := NewText(benchText(size.bytes))
		r := rand.New(rand.NewPCG(1, uint64(size.bytes)))
		ins := keystrokes(r, 1024, doc.Len())
		dels := make([]Op, 1024)
		for i := range dels {
			bd := NewBuilder()
			bd.Retain(r.IntN(doc.Len()))
			bd.Delete(1)
			dels[i] = bd.Build()
		}
		for _, kind := range []struct {
			name string
			ops  []Op
		}{{"insert", ins}, {"delete", dels}} {
			b.Run(fmt.Sprintf("%s/%s", kind.name, size.name), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := kind.ops[i%len(kind.ops)].Apply(doc); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkApplyScattered applies one op of 1,000 small replacements spread
// over a 1 MiB document (a find-and-replace), on the general path.
func BenchmarkApplyScattered(b *testing.B) {
	doc := NewText(benchText(1 << 20))
	bd := NewBuilder()
	step := doc.Len() / 1000
	for range 1000 {
		bd.Retain(step - 3)
		bd.Delete(3)
		bd.Insert("abcd")
	}
	op := bd.Build()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := op.Apply(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyTyping types characters one after the other at a moving
// cursor, each edit applied to the previous version (the rope keeps
// merging the typed characters into its leaves).
func BenchmarkApplyTyping(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			doc := NewText(benchText(size.bytes))
			r := rand.New(rand.NewPCG(2, 2))
			pos := r.IntN(doc.Len())
			b.ReportAllocs()
			for b.Loop() {
				bd := NewBuilder()
				bd.Retain(pos)
				bd.Insert("x")
				var err error
				if doc, err = bd.Build().Apply(doc); err != nil {
					b.Fatal(err)
				}
				pos++
				if pos%64 == 0 { // the user moves elsewhere now and then
					pos = r.IntN(doc.Len())
				}
			}
		})
	}
}

// BenchmarkCompose composes two keystrokes at random positions (what a
// client does with its buffered edits).
func BenchmarkCompose(b *testing.B) {
	for _, size := range benchSizes {
		n := NewText(benchText(size.bytes)).Len()
		r := rand.New(rand.NewPCG(3, uint64(size.bytes)))
		as, bs := keystrokes(r, 1024, n), keystrokes(r, 1024, n+1)
		b.Run(size.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := Compose(as[i%1024], bs[i%1024]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkTransform transforms two concurrent keystrokes at random
// positions (what the sequencer does per op in the log after a stale base).
func BenchmarkTransform(b *testing.B) {
	for _, size := range benchSizes {
		n := NewText(benchText(size.bytes)).Len()
		r := rand.New(rand.NewPCG(4, uint64(size.bytes)))
		as, bs := keystrokes(r, 1024, n), keystrokes(r, 1024, n)
		b.Run(size.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, _, err := Transform(as[i%1024], bs[i%1024]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkTextString is the O(n) reference: materializing the whole text.
func BenchmarkTextString(b *testing.B) {
	doc := NewText(benchText(1 << 20))
	b.Run("1MiB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(doc.ByteLen()))
		for b.Loop() {
			_ = doc.String()
		}
	})
	b.Run("WriteTo/1MiB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(doc.ByteLen()))
		for b.Loop() {
			if _, err := doc.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkNewText(b *testing.B) {
	s := benchText(1 << 20)
	b.Run("1MiB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(s)))
		for b.Loop() {
			_ = NewText(s)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, tc := range []struct{ name, op string }{
		{"keystroke", `[51234,"x"]`},
		{"paste", `[17,"` + strings.Repeat("pasted text 中文 ", 100) + `",-3]`},
	} {
		data := []byte(tc.op)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTransformOverLog transforms a late keystroke over 20 concurrent
// keystrokes (a hot document's ops in flight), step-wise with Transform
// and with a reused Transformer.
func BenchmarkTransformOverLog(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	const docLen, logLen = 10_000, 20
	log := make([]Op, logLen)
	for i := range log {
		log[i] = keystrokes(r, 1, docLen+i)[0]
	}
	late := keystrokes(r, 1024, docLen)
	b.Run("Transform", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			op := late[i%1024]
			for _, a := range log {
				_, op, _ = Transform(a, op)
			}
			i++
		}
	})
	b.Run("Transformer", func(b *testing.B) {
		b.ReportAllocs()
		var tr Transformer
		i := 0
		for b.Loop() {
			tr.Reset(late[i%1024])
			for _, a := range log {
				tr.Over(a)
			}
			tr.Op()
			i++
		}
	})
}
