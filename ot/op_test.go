package ot

import (
	"strings"
	"testing"
)

func TestBuilder(t *testing.T) {
	type step struct {
		kind byte // 'r', 'd', 'i'
		n    int
		s    string
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  string
	}{
		{"nothing", nil, `[]`},
		{"zeros and empties ignored", []step{{'r', 0, ""}, {'d', 0, ""}, {'i', 0, ""}}, `[]`},
		{"trailing retain dropped", []step{{'r', 2, ""}, {'i', 0, "a"}, {'r', 5, ""}}, `[2,"a"]`},
		{"retains merged", []step{{'r', 2, ""}, {'r', 3, ""}, {'d', 1, ""}}, `[5,-1]`},
		{"deletes merged", []step{{'d', 2, ""}, {'d', 3, ""}}, `[-5]`},
		{"inserts merged", []step{{'i', 0, "a"}, {'i', 0, "é"}, {'i', 0, "😀"}}, `["aé😀"]`},
		{"insert moved before delete", []step{{'r', 1, ""}, {'d', 2, ""}, {'i', 0, "x"}}, `[1,"x",-2]`},
		{"insert joins the insert before a delete", []step{{'i', 0, "a"}, {'d', 2, ""}, {'i', 0, "b"}, {'d', 1, ""}, {'i', 0, "c"}}, `["abc",-3]`},
		{"retain closes the insert", []step{{'i', 0, "a"}, {'r', 1, ""}, {'i', 0, "b"}}, `["a",1,"b"]`},
		{"invalid UTF-8 replaced", []step{{'i', 0, "a\xffb"}}, `["a\ufffdb"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, zero := range []bool{false, true} {
				var b *Builder
				if zero {
					b = new(Builder) // the zero Builder is ready to use
				} else {
					b = NewBuilder()
				}
				for _, s := range tc.steps {
					switch s.kind {
					case 'r':
						b.Retain(s.n)
					case 'd':
						b.Delete(s.n)
					case 'i':
						b.Insert(s.s)
					}
				}
				o := b.Build()
				checkNormal(t, o)
				want := strings.ReplaceAll(tc.want, `\ufffd`, "\ufffd")
				if o.String() != want {
					t.Fatalf("zero=%v: got %s, want %s", zero, o, want)
				}
			}
		})
	}
}

func TestBuilderReuseDoesNotAlias(t *testing.T) {
	b := NewBuilder()
	b.Retain(1)
	b.Insert("first")
	first := b.Build()
	b.Insert("second")
	b.Delete(3)
	second := b.Build()
	if first.String() != `[1,"first"]` || second.String() != `["second",-3]` {
		t.Fatalf("got %v and %v", first, second)
	}
}

func TestBuilderPanicsOnNegative(t *testing.T) {
	for name, f := range map[string]func(b *Builder){
		"Retain": func(b *Builder) { b.Retain(-1) },
		"Delete": func(b *Builder) { b.Delete(-1) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "negative count") {
					t.Fatalf("recovered %v, want a negative count panic", r)
				}
			}()
			f(NewBuilder())
		})
	}
}

func TestZeroOp(t *testing.T) {
	var o Op
	if !o.IsNoop() || o.Span() != 0 || o.NumComponents() != 0 || o.String() != "[]" {
		t.Fatalf("zero Op: %v", o)
	}
	if got := mustApply(t, o, "abc"); got != "abc" {
		t.Fatalf("zero Op applied: %q", got)
	}
	if !o.Equal(mustParse(t, `[5]`)) {
		t.Fatal("zero Op differs from a parsed no-op")
	}
	c, _ := Compose(o, o)
	a1, b1, _ := Transform(o, o)
	if !c.IsNoop() || !a1.IsNoop() || !b1.IsNoop() {
		t.Fatalf("no-op algebra: %v %v %v", c, a1, b1)
	}
}
