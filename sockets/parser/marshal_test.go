package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// MarshalArgs must write what encoding/json writes (without HTML escaping), except that byte
// slices become placeholders. The shapes below are generic over B, the type of their byte
// slices: B = []byte is what MarshalArgs gets, B = refBytes is the reference given to
// encoding/json, where refBytes writes the placeholder MarshalArgs should write.

// refBytes stands for a byte slice in a reference value: it encodes as the next placeholder
// and records its attachment in refAtts.
type refBytes []byte

var (
	refMu   sync.Mutex // held while encoding a reference
	refAtts [][]byte
)

func (b refBytes) MarshalJSON() ([]byte, error) {
	if b == nil {
		return []byte("null"), nil
	}
	refAtts = append(refAtts, b)
	return fmt.Appendf(nil, `{"_placeholder":true,"num":%d}`, len(refAtts)-1), nil
}

// reference returns what MarshalArgs(nil, args...) must return when args are the refBytes
// versions of its arguments.
func reference(args ...any) (string, [][]byte, error) {
	refMu.Lock()
	defer refMu.Unlock()
	refAtts = nil
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(args); err != nil {
		return "", nil, err
	}
	return strings.TrimSuffix(buf.String(), "\n"), refAtts, nil
}

// named returns b (a Binary or Bytes), or b as a refBytes in the reference instantiation.
func named[B ~[]byte](b any) any {
	if _, ref := any(B(nil)).(refBytes); ref {
		return refBytes(reflect.ValueOf(b).Bytes())
	}
	return b
}

type Base[B ~[]byte] struct {
	Name string `json:"name"`
	Blob B      `json:"blob,omitempty"`
	Note string
}

type Extra[B ~[]byte] struct {
	Blob  B      `json:"blob"` // tagged like Base.Blob at the same depth: both dropped
	Note  string `json:"Note"` // tagged: wins over Base.Note
	Count int    `json:"count,string"`
}

type hidden[B ~[]byte] struct {
	Secret B `json:"secret,omitempty"`
	Level  int
}

// Issue is the struct of issue 11: an embedded struct's field tagged "name" and the outer
// field tagged "name"; encoding/json keeps the outer one only.
type Issue[B ~[]byte] struct {
	Base[B]
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type Doc[B ~[]byte] struct {
	Base[B]
	*Extra[B]
	hidden[B]
	Name   string         `json:"name"`
	ID     int            `json:"id,omitempty"`
	Data   B              `json:"data"`
	Maybe  B              `json:"maybe,omitzero"`
	Gone   B              `json:"gone,omitempty"`
	Stamp  Stamp          `json:"stamp,omitzero"`
	Span   Span           `json:"span,omitzero"`
	Part   Base[B]        `json:"part,omitzero"`
	Temp   Celsius        `json:"temp,string"`
	Key    Key            `json:"key"`
	Num    *int           `json:"num,string"`
	Ratio  float64        `json:"ratio,string,omitempty"`
	Text   string         `json:"text,string,omitempty"`
	Any    any            `json:"any"`
	M      json.Marshaler `json:"m,omitempty"`
	Items  []Base[B]      `json:"items,omitempty"`
	Blobs  [2]B           `json:"blobs"`
	Raw    [2]byte        `json:"raw"`
	ByID   map[int]B      `json:"by_id,omitempty"`
	ByKey  map[Key]any    `json:"by_key,omitempty"`
	Ptr    *Base[B]       `json:"ptr"`
	PP     **B            `json:"pp,omitempty"`
	Custom Custom[B]      `json:"custom"`
	Skip   B              `json:"-"`
	//lint:ignore U1000 an unexported field: never encoded, which is what this tests
	skip B
}

// Quirks holds the rarer field rules.
type Quirks[B ~[]byte] struct {
	Label                   // embedded non-struct: a field named Label
	Anything                // embedded interface: a field named Anything
	tagged[B]  `json:"in"`  // unexported embedded struct with a name: a field
	*hidden[B] `json:"hid"` // same through a pointer
	//lint:ignore SA5008 the key "-", as encoding/json reads this tag
	Dash B `json:"-,"`
	//lint:ignore SA5008 a name encoding/json refuses: the field keeps its Go name
	Odd string `json:"a\\b"`
	//lint:ignore SA5008 an unknown option, which encoding/json ignores
	Almost string  `json:",omitemptyx"`
	Int    Int8s   `json:"int8s,omitempty"`
	Digits []Digit // elements with MarshalText: not a byte slice
	//lint:ignore SA5008 the string option is for scalars only: encoding/json ignores it here
	Quoted B         `json:"quoted,string,omitempty"`
	Chain  *Chain[B] `json:"chain,omitempty"`
}

type tagged[B ~[]byte] struct {
	X B `json:"x"`
}

// Twice embeds Leaf along two paths at the same depth, so Leaf's fields cancel out; encoding/json
// still keeps those of Deep, which Leaf embeds.
type Twice[B ~[]byte] struct {
	Left[B]
	Right[B]
	Own B `json:"own"`
}

type Left[B ~[]byte] struct{ Leaf[B] }
type Right[B ~[]byte] struct{ *Leaf[B] } // a pointer: vet flags the repeated tags otherwise
type Leaf[B ~[]byte] struct {
	Deep[B]
	L B `json:"leaf"`
}
type Deep[B ~[]byte] struct {
	D B `json:"deep"`
}

// Chain embeds itself: encoding/json looks at each struct type once.
type Chain[B ~[]byte] struct {
	*Chain[B]
	Data B `json:"data"`
}

type Node[B ~[]byte] struct {
	Data B        `json:"data"`
	Next *Node[B] `json:"next"`
}

type (
	Label    string
	Anything interface{}
	Bytes    []byte // no methods: a byte slice like any other
	Int8s    []int8
	Digit    uint8
	Celsius  float64 // MarshalJSON on the value
	Key      struct{ A, B int }
	Stamp    struct{ Unix int64 } // IsZero on the value
	Span     struct{ N int }      // IsZero on the pointer
	Nilable  struct{ S string }   // MarshalJSON on the pointer, nil included
	Failing  struct{ B []byte }
)

// Custom has MarshalJSON on its pointer: encoding/json calls it only for addressable values and
// encodes the others field by field.
type Custom[B ~[]byte] struct {
	Raw B `json:"raw"`
	N   int
}

func (c *Custom[B]) MarshalJSON() ([]byte, error) {
	if c == nil { // called through an interface holding a nil *Custom
		return []byte(`"nil"`), nil
	}
	return fmt.Appendf(nil, `{"custom": %d}`, len(c.Raw)), nil
}

func (c Celsius) MarshalJSON() ([]byte, error)  { return fmt.Appendf(nil, `{"c": %g}`, float64(c)), nil }
func (k Key) MarshalText() ([]byte, error)      { return fmt.Appendf(nil, "%d<%d", k.A, k.B), nil }
func (d *Digit) MarshalText() ([]byte, error)   { return []byte{'0' + byte(*d)%10}, nil }
func (s Stamp) IsZero() bool                    { return s.Unix <= 0 }
func (s *Span) IsZero() bool                    { return s.N <= 0 }
func (f *Failing) MarshalJSON() ([]byte, error) { return nil, errors.New("failing") }
func (n *Nilable) MarshalJSON() ([]byte, error) {
	if n == nil {
		return []byte(`"nil"`), nil
	}
	return json.Marshal(n.S)
}

type marshalCase struct {
	name string
	v    any
}

// marshalCases returns the values of TestMarshalArgsMatchesEncodingJSON, with byte slices of
// type B. The fuzz test fills new values of the same types.
func marshalCases[B ~[]byte]() []marshalCase {
	n := 7
	pn := &n
	blob := B{1, 2, 3}
	cyclic := &Node[B]{Data: B{1}}
	cyclic.Next = cyclic
	cyclicMap := map[string]any{"b": B{1}}
	cyclicMap["self"] = cyclicMap
	cyclicSlice := []any{B{1}, nil}
	cyclicSlice[1] = cyclicSlice
	deep := &Node[B]{}
	for range 1500 {
		deep = &Node[B]{Next: deep}
	}
	return []marshalCase{
		{"issue: outer tag wins", Issue[B]{Base: Base[B]{Name: "inner", Blob: B{1}}, ID: 1, Name: "outer"}},
		{"embedded nil pointer", Doc[B]{Name: "n", Data: blob}},
		{"embedded pointer", &Doc[B]{Extra: &Extra[B]{Blob: B{9}, Note: "x", Count: 3}, Data: blob}},
		{"omitempty", Doc[B]{Gone: B{}, Items: []Base[B]{}, ByID: map[int]B{}, Ratio: 0}},
		{"omitzero", Doc[B]{Maybe: B{}, Stamp: Stamp{-1}, Span: Span{-2}, Part: Base[B]{Note: "n"}}},
		{"omitzero pointer IsZero addressable", &Doc[B]{Maybe: nil, Stamp: Stamp{5}, Span: Span{3}}},
		{"string option", Doc[B]{Num: pn, Ratio: 0.5, Text: `say "<hi>"`, Temp: 21.5, Extra: &Extra[B]{Count: -4}}},
		{"unexported embedded", Doc[B]{hidden: hidden[B]{Secret: B{4}, Level: 2}}},
		{"interface holding structs", []any{
			Doc[B]{Any: Base[B]{Name: "b", Blob: B{1}}},
			Doc[B]{Any: &Base[B]{Blob: B{2}}},
			Doc[B]{Any: Custom[B]{Raw: B{3}}},
			Doc[B]{Any: &Custom[B]{Raw: B{4}}},
		}},
		{"int and text keys", Doc[B]{
			ByID:  map[int]B{2: {1}, 10: {2}, -1: nil},
			ByKey: map[Key]any{{1, 2}: B{3}, {1, 0}: "<", {0, 9}: nil},
		}},
		{"pointer text keys", map[*Key]B{nil: {1}, {2, 3}: {2}}},
		{"uint keys", map[uint8][]any{200: {B{1}}, 3: nil}},
		{"marshalers", Doc[B]{Temp: -3, Key: Key{4, 5}, M: (*Nilable)(nil), Custom: Custom[B]{Raw: B{1}, N: 1}}},
		{"marshaler pointer addressable", []Doc[B]{{M: &Nilable{"<s>"}, Custom: Custom[B]{Raw: B{1, 2}}}}},
		{"marshaler in map values", map[string]Custom[B]{"a": {Raw: B{1}}}},
		{"pointers", Doc[B]{Ptr: &Base[B]{Blob: B{1}}, PP: func() **B { p := &blob; return &p }()}},
		{"nested binary", map[string]any{"list": []any{B{1}, map[string]B{"k": {2}}, [2]B{{3}, nil}}, "doc": Doc[B]{Data: B{4}, Blobs: [2]B{{5}}}}},
		{"named byte slices", []any{named[B](Binary{1}), []any{named[B](Bytes{})}}},
		{"byte arrays stay arrays", Doc[B]{Raw: [2]byte{1, 2}}},
		{"twice embedded", Twice[B]{Left: Left[B]{Leaf[B]{Deep[B]{B{1}}, B{2}}}, Right: Right[B]{&Leaf[B]{Deep[B]{B{3}}, B{4}}}, Own: B{5}}},
		{"quirks", Quirks[B]{Label: "l", Anything: B{1}, tagged: tagged[B]{X: B{2}}, hidden: &hidden[B]{Secret: B{3}}, Dash: B{4}, Odd: "o", Int: Int8s{-1}, Digits: []Digit{1, 2}, Quoted: B{6}}},
		{"self-embedding", Quirks[B]{Chain: &Chain[B]{Chain: &Chain[B]{Data: B{1}}, Data: B{2}}}},
		{"quirks nil", &Quirks[B]{}},
		{"html and line separators", Doc[B]{Name: "<a&b>\u2028\xff", Any: map[string]any{"<k>": "&"}}},
		{"raw and number", []any{B{1}, json.RawMessage(`{ "a" : [1, 2] }`), json.Number("1.50")}},
		{"float formats", []any{B{}, 1e21, 1e-7, float32(3.4e38), math.Copysign(0, -1), 100.0}},
		{"nil values", []any{B(nil), (*Doc[B])(nil), map[string]B(nil), []B(nil), nil}},
		{"deep", []any{B{1}, deep}},
		{"error: NaN", []any{B{1}, math.NaN()}},
		{"error: Inf field", Doc[B]{Ratio: math.Inf(1)}},
		{"error: cycle", cyclic},
		{"error: map cycle", cyclicMap},
		{"error: slice cycle", cyclicSlice},
		{"error: unsupported key", map[[2]int]B{{1, 2}: {1}}},
		{"error: unsupported value", []any{B{1}, make(chan int)}},
		{"error: marshaler", []any{B{1}, &Failing{}}},
		{"error: bad number", []any{B{1}, json.Number("1x")}},
		{"time", []any{B{1}, time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)}},
	}
}

var (
	casesBin = marshalCases[[]byte]()
	casesRef = marshalCases[refBytes]()
)

// checkMarshal compares MarshalArgs(nil, v) with encoding/json's encoding of ref.
func checkMarshal(t *testing.T, v, ref any) {
	t.Helper()
	want, wantAtts, wantErr := reference(ref)
	data, atts, err := MarshalArgs(nil, v)
	if len(wantAtts) > MaxAttachments && wantErr == nil {
		wantErr = ErrTooManyAttachments
	}
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("MarshalArgs(%T): err %v, encoding/json: %v", v, err, wantErr)
	}
	if err != nil {
		// The reference's types name refBytes where v's name []uint8.
		want := strings.ReplaceAll(wantErr.Error(), "github.com/collabd/collabd/sockets/parser.refBytes", "[]uint8")
		if want = strings.ReplaceAll(want, "parser.refBytes", "[]uint8"); err.Error() != want {
			t.Errorf("error %q, encoding/json: %q", err, want)
		}
		return
	}
	if string(data) != want {
		t.Fatalf("MarshalArgs(%T)\n got %s\nwant %s", v, data, want)
	}
	if len(atts) != len(wantAtts) {
		t.Fatalf("%d attachments, want %d", len(atts), len(wantAtts))
	}
	for i := range atts {
		if !bytes.Equal(atts[i], wantAtts[i]) {
			t.Fatalf("attachment %d = %v, want %v", i, atts[i], wantAtts[i])
		}
	}
}

func TestMarshalArgsMatchesEncodingJSON(t *testing.T) {
	for i, c := range casesBin {
		t.Run(c.name, func(t *testing.T) { checkMarshal(t, c.v, casesRef[i].v) })
	}
}

func TestMarshalArgsPlainIsEncodingJSON(t *testing.T) {
	// Without byte slices the output is json.Marshal's, HTML escaping off.
	type plain struct {
		Base[[]byte]
		Name string `json:"name"`
		Any  any    `json:"any,omitempty"`
		T    string `json:"t"`
	}
	for _, v := range []any{
		plain{Base: Base[[]byte]{Name: "inner"}, Name: "outer", Any: map[int]any{2: plain{}, 10: "x"}, T: "<&>"},
		[]any{Stamp{1}, Key{1, 2}, map[Key]int{{3, 4}: 1}, json.Number("2"), Celsius(1)},
	} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		want := "[" + strings.TrimSuffix(buf.String(), "\n") + "]"
		data, atts, err := MarshalArgs(nil, v)
		if err != nil || string(data) != want || atts != nil {
			t.Errorf("MarshalArgs(%#v) = %s, %v, %v\nwant %s", v, data, atts, err, want)
		}
	}
}

func TestMarshalArgsAttachmentsAlias(t *testing.T) {
	blob := []byte{1, 2}
	_, atts, err := MarshalArgs("m", map[string]any{"a": &Doc[[]byte]{Data: blob}})
	if err != nil || len(atts) != 1 || &atts[0][0] != &blob[0] {
		t.Fatalf("attachments %v, %v: want the caller's slice", atts, err)
	}
}

// FuzzMarshalArgsMatchesEncodingJSON fills values of the types of marshalCases from the fuzz
// input, the []byte and refBytes versions alike, and checks MarshalArgs against encoding/json.
// With an empty input it checks the case itself.
func FuzzMarshalArgsMatchesEncodingJSON(f *testing.F) {
	for i := range casesBin {
		f.Add(uint8(i), []byte{})
	}
	f.Add(uint8(1), []byte("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"))
	f.Add(uint8(2), bytes.Repeat([]byte{1, 3, 5, 7, 2}, 40))
	f.Fuzz(func(t *testing.T, pick uint8, data []byte) {
		i := int(pick) % len(casesBin)
		v, ref := casesBin[i].v, casesRef[i].v
		if len(data) > 0 && v != nil {
			r := &filler{data: data}
			a, b := reflect.New(reflect.TypeOf(v)).Elem(), reflect.New(reflect.TypeOf(ref)).Elem()
			r.fill(a, b, 0)
			v, ref = a.Interface(), b.Interface()
			if r.next()%2 == 1 { // addressable
				v, ref = a.Addr().Interface(), b.Addr().Interface()
			}
		}
		checkMarshal(t, v, ref)
	})
}

// filler fills a value and its reference version alike from fuzz bytes.
type filler struct{ data []byte }

func (r *filler) next() int {
	if len(r.data) == 0 {
		return 0
	}
	b := r.data[0]
	r.data = r.data[1:]
	return int(b)
}

// typePair is a type as MarshalArgs gets it and as its reference.
type typePair struct{ bin, ref reflect.Type }

func pair[T, R any]() typePair { return typePair{reflect.TypeFor[T](), reflect.TypeFor[R]()} }

// dynamic lists the types that interface fields may hold.
var dynamic = []typePair{
	pair[string, string](), pair[float64, float64](), pair[int, int](), pair[bool, bool](),
	pair[[]byte, refBytes](), pair[Binary, refBytes](), pair[Bytes, refBytes](),
	pair[[]any, []any](), pair[map[string]any, map[string]any](),
	pair[Base[[]byte], Base[refBytes]](), pair[*Base[[]byte], *Base[refBytes]](),
	pair[Custom[[]byte], Custom[refBytes]](), pair[*Custom[[]byte], *Custom[refBytes]](),
	pair[map[int][]byte, map[int]refBytes](), pair[[2][]byte, [2]refBytes](),
	pair[Stamp, Stamp](), pair[Key, Key](), pair[Celsius, Celsius](), pair[*Nilable, *Nilable](),
	pair[json.Number, json.Number](), pair[json.RawMessage, json.RawMessage](),
	pair[Doc[[]byte], Doc[refBytes]](), pair[Quirks[[]byte], Quirks[refBytes]](),
	pair[Twice[[]byte], Twice[refBytes]](),
}

var (
	strs    = []string{"", "a", "name", "<b&c>", "é\u2028", "\xff", `q"u\o`}
	ints    = []int64{0, 1, -1, 42, 1 << 53, -7}
	floats  = []float64{0, 1.5, -2.25e-7, 1e21, 3, math.NaN(), math.Inf(-1)}
	numbers = []string{"0", "1.50", "-2e10", "bad"}
	raws    = []string{`null`, `{ "a" : [1, 2] }`, `"<x>"`, `{bad`}
)

// fill sets a (of a type from marshalCases or dynamic) and b (its reference version) alike.
func (r *filler) fill(a, b reflect.Value, depth int) {
	if !a.CanSet() && a.Kind() != reflect.Struct {
		return // unexported
	}
	switch t := a.Type(); {
	case t == reflect.TypeFor[json.Number]():
		a.SetString(numbers[r.next()%len(numbers)])
		b.SetString(a.String())
		return
	case t == reflect.TypeFor[json.RawMessage]():
		a.SetBytes([]byte(raws[r.next()%len(raws)]))
		b.SetBytes(a.Bytes())
		return
	}
	deeper := depth < 4 && r.next()%4 != 0
	switch a.Kind() {
	case reflect.Bool:
		a.SetBool(r.next()%2 == 1)
		b.SetBool(a.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		a.SetInt(ints[r.next()%len(ints)])
		b.SetInt(a.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		a.SetUint(uint64(r.next()))
		b.SetUint(a.Uint())
	case reflect.Float32, reflect.Float64:
		a.SetFloat(floats[r.next()%len(floats)])
		b.SetFloat(a.Float())
	case reflect.String:
		a.SetString(strs[r.next()%len(strs)])
		b.SetString(a.String())
	case reflect.Slice:
		n := r.next() % 5
		if n == 4 {
			return // nil
		}
		if a.Type().Elem().Kind() == reflect.Uint8 {
			bs := make([]byte, n)
			for i := range bs {
				bs[i] = byte(r.next())
			}
			a.SetBytes(bs)
			b.SetBytes(bs)
			return
		}
		if !deeper {
			n = 0
		}
		a.Set(reflect.MakeSlice(a.Type(), n, n))
		b.Set(reflect.MakeSlice(b.Type(), n, n))
		for i := range n {
			r.fill(a.Index(i), b.Index(i), depth+1)
		}
	case reflect.Array:
		for i := range a.Len() {
			r.fill(a.Index(i), b.Index(i), depth+1)
		}
	case reflect.Map:
		n := r.next() % 4
		if n == 3 {
			return // nil
		}
		if !deeper {
			n = 0
		}
		if a.Type().Key().Kind() == reflect.Pointer {
			n = min(n, 1) // keys that encode alike would come out in any order
		}
		a.Set(reflect.MakeMap(a.Type()))
		b.Set(reflect.MakeMap(b.Type()))
		for range n {
			ka, kb := reflect.New(a.Type().Key()).Elem(), reflect.New(b.Type().Key()).Elem()
			r.fill(ka, kb, depth+1)
			va, vb := reflect.New(a.Type().Elem()).Elem(), reflect.New(b.Type().Elem()).Elem()
			r.fill(va, vb, depth+1)
			a.SetMapIndex(ka, va)
			b.SetMapIndex(kb, vb)
		}
	case reflect.Pointer:
		if !deeper {
			return
		}
		a.Set(reflect.New(a.Type().Elem()))
		b.Set(reflect.New(b.Type().Elem()))
		r.fill(a.Elem(), b.Elem(), depth+1)
	case reflect.Interface:
		if !deeper {
			return
		}
		d := dynamic[r.next()%len(dynamic)]
		if !d.bin.Implements(a.Type()) || !d.ref.Implements(b.Type()) {
			return
		}
		va, vb := reflect.New(d.bin).Elem(), reflect.New(d.ref).Elem()
		r.fill(va, vb, depth+1)
		a.Set(va)
		b.Set(vb)
	case reflect.Struct:
		for i := range a.NumField() {
			r.fill(a.Field(i), b.Field(i), depth+1)
		}
	}
}

type benchUpload struct {
	Name string   `json:"name"`
	Size int      `json:"size"`
	Mime string   `json:"mime,omitempty"`
	Tags []string `json:"tags"`
	Data []byte   `json:"data"`
}

func BenchmarkMarshalArgsStruct(b *testing.B) {
	v := &benchUpload{Name: "a.png", Size: 1024, Mime: "image/png", Tags: []string{"x", "y"}, Data: make([]byte, 1024)}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := MarshalArgs("upload", v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalArgsNoBinary(b *testing.B) {
	type cursor struct {
		Doc    string `json:"doc"`
		Client string `json:"client"`
		Pos    int    `json:"pos"`
		Anchor int    `json:"anchor,omitempty"`
	}
	v := cursor{Doc: "readme", Client: "c1", Pos: 42}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := MarshalArgs("cursor", v); err != nil {
			b.Fatal(err)
		}
	}
}
