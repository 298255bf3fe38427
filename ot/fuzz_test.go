package ot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzDoc is the text FuzzParseApply applies ops to: 2,200 code points of
// mixed scripts, spread over several rope leaves.
var fuzzDoc = strings.Repeat("hello wörld 中文 😀👍🏽 e\u0301\n", 100)

// realOps are ops of the kind clients send, used as seeds.
var realOps = []string{
	`[]`,
	`["h"]`,
	`[5,"x"]`,
	`[6,-5,"there"]`,
	`[12,"中文"]`,
	`[-1]`,
	`[3,-1]`,
	`[17,"😀"]`,
	`[1,"\ud83d\ude00",-1]`,
	`[2,"e\u0301",1,"👍🏽",-2]`,
	`["line\n",10,"\t\"q\"\\"]`,
	`[30,-10,"pasted text with \u2028 separators"]`,
	`[2999,"end"]`,
}

func FuzzParseApply(f *testing.F) {
	for _, s := range realOps {
		f.Add([]byte(s))
	}
	for _, s := range []string{`[0]`, `[1.5]`, `[1e3]`, `["\ud800"]`, `"x"`, "[\"\xff\"]", `[1,""]`, `[9007199254740992]`, `[1,2`, ` [ -3 , "a" ] `} {
		f.Add([]byte(s))
	}
	doc := NewText(fuzzDoc)
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		checkNormal(t, o)
		if ref, err := decodeWithEncodingJSON(data); err != nil || !ref.Equal(o) {
			t.Fatalf("encoding/json reads %q as %v (%v), Parse as %v", data, ref, err, o)
		}
		m, err := o.MarshalJSON()
		if err != nil || !json.Valid(m) || !utf8.Valid(m) {
			t.Fatalf("MarshalJSON = %q, %v", m, err)
		}
		if p, err := Parse(m); err != nil || !p.Equal(o) {
			t.Fatalf("Parse(Marshal(%v)) = %v, %v", o, p, err)
		}
		y, err := o.Apply(doc)
		if o.Span() > doc.Len() {
			if !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("op spanning %d on %d code points: error %v", o.Span(), doc.Len(), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		checkRope(t, y)
		want, err := applyRef(rawOf(o), []rune(fuzzDoc))
		if err != nil || y.String() != string(want) {
			t.Fatalf("Apply disagrees with the reference (%v)", err)
		}
		if y.Len() != o.TargetLen(doc.Len()) {
			t.Fatalf("Len %d, TargetLen %d", y.Len(), o.TargetLen(doc.Len()))
		}
		inv, err := o.Invert(doc)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := inv.Apply(y); err != nil || !back.Equal(doc) {
			t.Fatalf("invert round trip failed: %v", err)
		}
	})
}

// decodeWithEncodingJSON decodes an op with encoding/json, as a reference
// for inputs Parse accepts.
func decodeWithEncodingJSON(data []byte) (Op, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var vals []any
	if err := d.Decode(&vals); err != nil {
		return Op{}, err
	}
	if d.More() {
		return Op{}, errors.New("trailing data")
	}
	b := NewBuilder()
	for _, v := range vals {
		switch v := v.(type) {
		case string:
			b.Insert(v)
		case json.Number:
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return Op{}, err
			}
			if n > 0 {
				b.Retain(n)
			} else {
				b.Delete(-n)
			}
		default:
			return Op{}, fmt.Errorf("component %v", v)
		}
	}
	return b.Build(), nil
}

// rawOf returns the components of o in the test representation.
func rawOf(o Op) []rawComp {
	cs := make([]rawComp, len(o.c))
	for i, c := range o.c {
		switch c.k {
		case retain:
			cs[i] = rawComp{n: c.n}
		case del:
			cs[i] = rawComp{n: -c.n}
		case insert:
			cs[i] = rawComp{s: c.s}
		}
	}
	return cs
}

// opFromBytes turns fuzz bytes into an op on a text of n code points: the
// wire form if the bytes are one that fits, else a component stream, two
// bytes per component (kind, size).
func opFromBytes(data []byte, n int) Op {
	if o, err := Parse(data); err == nil && o.Span() <= n {
		return o
	}
	b := NewBuilder()
	pos := 0
	for i := 0; i+1 < len(data); i += 2 {
		size := int(data[i+1]%8) + 1
		switch data[i] % 3 {
		case 0:
			size = min(size, n-pos)
			b.Retain(size)
			pos += size
		case 1:
			size = min(size, n-pos)
			b.Delete(size)
			pos += size
		case 2:
			b.Insert(pieces[int(data[i+1])%len(pieces)])
		}
	}
	return b.Build()
}

func FuzzTransform(f *testing.F) {
	docs := []string{"", "hello world", "héllo 中文 😀👍🏽 e\u0301", "ab"}
	for i, a := range realOps {
		b := realOps[(i*5+3)%len(realOps)]
		f.Add(docs[i%len(docs)], []byte(a), []byte(b))
		f.Add(fuzzDoc[:60], []byte(a), []byte(b))
	}
	f.Add("xyz", []byte(`[1,"A"]`), []byte(`[1,"B"]`))
	f.Add("xyz", []byte{2, 1, 1, 3}, []byte{0, 1, 2, 5})
	f.Fuzz(func(t *testing.T, doc string, ab, bb []byte) {
		if !utf8.ValidString(doc) {
			doc = strings.ToValidUTF8(doc, "?")
		}
		n := utf8.RuneCountInString(doc)
		a, b := opFromBytes(ab, n), opFromBytes(bb, n)
		a1, b1, err := Transform(a, b)
		if err != nil {
			t.Fatal(err)
		}
		checkNormal(t, a1)
		checkNormal(t, b1)
		var tr Transformer
		tr.Reset(b)
		tr.Over(a)
		if got := tr.Op(); !got.Equal(b1) {
			t.Fatalf("Transformer gives %v, Transform %v (a=%v b=%v)", got, b1, a, b)
		}
		sa, sb := mustApply(t, a, doc), mustApply(t, b, doc)
		left, right := mustApply(t, b1, sa), mustApply(t, a1, sb)
		if left != right {
			t.Fatalf("TP1 fails on %q: a=%v b=%v a1=%v b1=%v: %q vs %q", doc, a, b, a1, b1, left, right)
		}
		c, err := Compose(a, b1)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustApply(t, c, doc); got != left {
			t.Fatalf("Compose(a, b1) gives %q, want %q", got, left)
		}
	})
}
