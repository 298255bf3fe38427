package ot_test

import (
	"errors"
	"fmt"

	"github.com/collabd/collabd/ot"
)

func ExampleParse() {
	// Retain 6, delete 5, insert "there"; the rest is retained implicitly.
	op, err := ot.Parse([]byte(`[6, -5, "there"]`))
	if err != nil {
		panic(err)
	}
	doc := ot.NewText("hello world!")
	after, err := op.Apply(doc)
	if err != nil {
		panic(err)
	}
	ins, del := op.Stats()
	fmt.Println(after)
	fmt.Println(op, op.Span(), ins, del) // normalized: insert before delete
	// Output:
	// hello there!
	// [6,"there",-5] 11 5 5
}

func ExampleParse_invalid() {
	for _, in := range []string{`[0]`, `[1.5]`, `["\ud800"]`, `[5,"x"]`} {
		op, err := ot.Parse([]byte(in))
		if err == nil {
			_, err = op.Apply(ot.NewText("abc")) // spans 5 code points, text has 3
		}
		fmt.Println(errors.Is(err, ot.ErrInvalid), err)
	}
	// Output:
	// true ot: invalid operation: component 1: zero count at byte 1 (retain and delete counts must not be 0)
	// true ot: invalid operation: component 1: number 1.5 at byte 1 is not an integer
	// true ot: invalid operation: component 1: lone surrogate escape \ud800 at byte 2
	// true ot: operation out of range: op spans 5 code points, text has 3
}

func ExampleTransform() {
	doc := "xyz"
	a, _ := ot.Parse([]byte(`[1,"A"]`)) // sequenced first
	b, _ := ot.Parse([]byte(`[1,"B"]`)) // concurrent, same position
	a1, b1, _ := ot.Transform(a, b)

	viaA, _ := a.ApplyString(doc)
	viaA, _ = b1.ApplyString(viaA)
	viaB, _ := b.ApplyString(doc)
	viaB, _ = a1.ApplyString(viaB)
	fmt.Println(viaA, viaB) // a's insert stands first either way
	fmt.Println(a1, b1)
	// Output:
	// xAByz xAByz
	// [1,"A"] [2,"B"]
}

func ExampleCompose() {
	a, _ := ot.Parse([]byte(`[5," there"]`))
	b, _ := ot.Parse([]byte(`[11,"!"]`))
	c, _ := ot.Compose(a, b)
	out, _ := c.ApplyString("hello")
	fmt.Println(c, out)
	// Output:
	// [5," there!"] hello there!
}

func ExampleOp_Invert() {
	before := ot.NewText("héllo 😀")
	op, _ := ot.Parse([]byte(`[1,"e",-1,3,-2]`))
	after, _ := op.Apply(before)
	undo, _ := op.Invert(before)
	back, _ := undo.Apply(after)
	fmt.Printf("%s | %v | %s\n", after, undo, back)
	// Output:
	// hello | [1,"é",-1,3," 😀"] | héllo 😀
}

func ExampleBuilder() {
	b := ot.NewBuilder()
	b.Retain(2)
	b.Retain(1)
	b.Delete(2)
	b.Insert("中")
	b.Insert("文")
	b.Retain(10) // trailing retain: dropped
	op := b.Build()
	fmt.Println(op)
	// Output:
	// [3,"中文",-2]
}

func ExampleText() {
	v1 := ot.NewText("Grüße, 世界")
	op, _ := ot.Parse([]byte(`[7,"schöne "]`))
	v2, _ := op.Apply(v1)
	// v1 is unchanged and may still be read, even by other goroutines.
	fmt.Println(v1, "|", v2, "|", v2.Len(), v2.ByteLen(), v2.Slice(7, 13))
	// Output:
	// Grüße, 世界 | Grüße, schöne 世界 | 16 23 schöne
}
