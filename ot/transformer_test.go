package ot

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// transformSteps is the reference: Transform over each op in turn.
func transformSteps(tb testing.TB, log []Op, b Op) Op {
	tb.Helper()
	for _, a := range log {
		var err error
		if _, b, err = Transform(a, b); err != nil {
			tb.Fatal(err)
		}
	}
	return b
}

// TestTransformerMatchesTransform checks, over random logs of concurrent
// ops, that a Transformer reused from op to op gives exactly the ops that
// step-wise Transform gives, normalized, and that the results it returned
// earlier are not changed by its later use.
func TestTransformerMatchesTransform(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	var tr Transformer
	type result struct{ got, want Op }
	var kept []result
	for i := range iterations(3000) {
		doc := randText(r, r.IntN(30))
		// A log of ops, each made on the text the previous one produced,
		// and a late op made on doc.
		var log []Op
		text := doc
		for range r.IntN(6) {
			o := randOp(r, utf8.RuneCountInString(text))
			if r.IntN(2) == 0 { // a keystroke: Over's fast path
				var b Builder
				b.Retain(r.IntN(utf8.RuneCountInString(text) + 1))
				b.Insert(randText(r, 1+r.IntN(3)))
				o = b.Build()
			}
			log = append(log, o)
			text = mustApply(t, o, text)
		}
		late := randOp(r, utf8.RuneCountInString(doc))
		want := transformSteps(t, log, late)
		tr.Reset(late)
		for _, a := range log {
			tr.Over(a)
		}
		got := tr.Op()
		checkNormal(t, got)
		if !got.Equal(want) || got.Span() != want.Span() || got.String() != want.String() {
			t.Fatalf("case %d: over %v, %v gives %v, want %v", i, log, late, got, want)
		}
		gi, gd := got.Stats()
		wi, wd := want.Stats()
		if gi != wi || gd != wd {
			t.Fatalf("case %d: stats %d/%d, want %d/%d", i, gi, gd, wi, wd)
		}
		mustApply(t, got, text) // applies to the text after the log
		if i%10 == 0 {
			kept = append(kept, result{got, want})
		}
	}
	for i, k := range kept {
		if !k.got.Equal(k.want) {
			t.Fatalf("result %d changed after reuse: %v, want %v", i, k.got, k.want)
		}
	}
}

func TestTransformerCases(t *testing.T) {
	tests := []struct {
		name string
		log  []string
		op   string
		want string
	}{
		{"no log", nil, `[2,"x",-1]`, `[2,"x",-1]`},
		{"noop over anything", []string{`["ab"]`}, `[]`, `[]`},
		{"over a noop", []string{`[]`}, `[1,"y"]`, `[1,"y"]`},
		{"tie: logged insert first", []string{`["a"]`, `["b"]`}, `["x"]`, `[2,"x"]`},
		{"log after the op's end", []string{`[5,"zz"]`}, `[1,-1]`, `[1,-1]`},
		{"log deletes what the op deletes", []string{`[1,-2]`}, `[-3,"q"]`, `["q",-1]`},
		{"log deletes around the op's insert", []string{`[-4]`}, `[2,"m"]`, `["m"]`},
		{"log ends inside the op's retain", []string{`[1,"k"]`}, `[3,-1,"é"]`, `[4,"é",-1]`},
		{"step-wise, not over the composition", []string{`[1,"<"]`, `[-1]`}, `["X"]`, `["X"]`},
		{"keystroke inside the op's delete", []string{`[2,"ab"]`}, `[1,-3,"z"]`, `[1,"z",-1,2,-2]`},
		{"keystroke inside the op's retain", []string{`[1,"ab"]`}, `[3,"z"]`, `[5,"z"]`},
		{"keystroke where the op inserts", []string{`[3,"ab"]`}, `[3,"z",-1]`, `[5,"z",-1]`},
		{"keystroke at the start", []string{`["ab"]`}, `[-1,"z"]`, `[2,"z",-1]`},
		{"keystroke past the op's end", []string{`[9,"ab"]`}, `[1,-1]`, `[1,-1]`},
		{"keystroke right after the op's delete", []string{`[3,"ab"]`}, `[1,-2]`, `[1,-2]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log []Op
			var tr Transformer
			tr.Reset(mustParse(t, tc.op))
			for _, l := range tc.log {
				log = append(log, mustParse(t, l))
				tr.Over(log[len(log)-1])
			}
			got := tr.Op()
			if got.String() != tc.want {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
			if want := transformSteps(t, log, mustParse(t, tc.op)); !got.Equal(want) {
				t.Fatalf("got %v, step-wise Transform gives %v", got, want)
			}
		})
	}
}

func TestTransformerAllocations(t *testing.T) {
	var log []Op
	for range 32 {
		log = append(log, mustParse(t, `["x"]`))
	}
	op := mustParse(t, `[3,"typed",-2]`)
	var tr Transformer
	allocs := testing.AllocsPerRun(100, func() {
		tr.Reset(op)
		for _, a := range log {
			tr.Over(a)
		}
		if tr.Op().IsNoop() {
			t.Fatal("noop")
		}
	})
	if allocs > 1 {
		t.Fatalf("%v allocations per op transformed over 32 ops, want 1", allocs)
	}
}
