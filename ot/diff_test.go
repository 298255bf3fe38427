package ot

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDiffTexts(t *testing.T) {
	for _, tc := range []struct {
		name, a, b string
		want       []Diff
	}{
		{"both empty", "", "", []Diff{}},
		{"equal", "abc", "abc", []Diff{{0, "abc"}}},
		{"insert into empty", "", "hi", []Diff{{1, "hi"}}},
		{"delete all", "hi", "", []Diff{{-1, "hi"}}},
		{"replace words", "one two three", "1 2 three", []Diff{{-1, "one two"}, {1, "1 2"}, {0, " three"}}},
		{"insert in the middle", "hello world", "hello there world", []Diff{{0, "hello "}, {1, "there "}, {0, "world"}}},
		{"code points", "a😀b", "a👍🏽b", []Diff{{0, "a"}, {-1, "😀"}, {1, "👍🏽"}, {0, "b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DiffTexts(tc.a, tc.b); !slices.Equal(got, tc.want) {
				t.Fatalf("DiffTexts(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestOpFromTexts(t *testing.T) {
	for _, tc := range []struct {
		name, a, b, want string
	}{
		{"no change", "abc", "abc", `[]`},
		{"from empty", "", "hi", `["hi"]`},
		{"to empty", "hi", "", `[-2]`},
		{"replace words", "one two three", "1 2 three", `["1 2",-7]`},
		{"append", "abc", "abcd", `[3,"d"]`},
		{"counts code points", "a😀b", "a👍🏽b", `[1,"👍🏽",-1]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := OpFromTexts(tc.a, tc.b)
			if got := o.String(); got != tc.want {
				t.Fatalf("OpFromTexts(%q, %q) = %s, want %s", tc.a, tc.b, got, tc.want)
			}
			if got := mustApply(t, o, tc.a); got != tc.b {
				t.Fatalf("%s on %q = %q, want %q", o, tc.a, got, tc.b)
			}
		})
	}
}

// TestOpFromTextsProperty: applying OpFromTexts(a, b) to a gives b, and the
// diff it is built from rebuilds both texts, for random texts and for b
// derived from a by a random edit (the usual case: a small change).
func TestOpFromTextsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for i := range iterations(3000) {
		a := randText(r, r.IntN(60))
		var b string
		if i%2 == 0 {
			b = randText(r, r.IntN(60))
		} else {
			b = mustApply(t, randOp(r, utf8.RuneCountInString(a)), a)
		}
		var fromA, fromB strings.Builder
		for _, d := range DiffTexts(a, b) {
			if !utf8.ValidString(d.Text) || d.Text == "" {
				t.Fatalf("case %d: DiffTexts(%q, %q): segment %+v", i, a, b, d)
			}
			if d.Op <= 0 {
				fromA.WriteString(d.Text)
			}
			if d.Op >= 0 {
				fromB.WriteString(d.Text)
			}
		}
		if fromA.String() != a || fromB.String() != b {
			t.Fatalf("case %d: DiffTexts(%q, %q) rebuilds %q, %q", i, a, b, fromA.String(), fromB.String())
		}
		o := OpFromTexts(a, b)
		checkNormal(t, o)
		if got := mustApply(t, o, a); got != b {
			t.Fatalf("case %d: OpFromTexts(%q, %q) = %v gives %q", i, a, b, o, got)
		}
	}
}

func TestDiffJSON(t *testing.T) {
	ds := []Diff{{-1, "old"}, {0, " \"q\" "}, {1, "😀"}}
	js, err := json.Marshal(ds)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[[-1,"old"],[0," \"q\" "],[1,"😀"]]`; string(js) != want {
		t.Fatalf("marshal: %s, want %s", js, want)
	}
	var back []Diff
	if err := json.Unmarshal(js, &back); err != nil || !slices.Equal(back, ds) {
		t.Fatalf("unmarshal: %v %v", back, err)
	}
	for _, bad := range []string{`[[0]]`, `[[0,"a",1]]`, `[{}]`, `[["0","a"]]`, `[[0,1]]`} {
		if err := json.Unmarshal([]byte(bad), &back); !errors.Is(err, ErrInvalid) {
			t.Errorf("unmarshal %s: %v, want ErrInvalid", bad, err)
		}
	}
}
