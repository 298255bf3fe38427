package parser

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// Binary marks a byte slice sent as a binary attachment. Plain []byte values are attachments
// too; json.RawMessage is not (it is JSON).
type Binary []byte

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	isZeroerType      = reflect.TypeFor[isZeroer]()
	typeInfos         sync.Map // reflect.Type -> *typeInfo
	fieldsCache       sync.Map // reflect.Type -> []field
	wrapperTypes      sync.Map // wrapperKey -> reflect.Type
)

type isZeroer interface{ IsZero() bool }

// MarshalArgs encodes the payload of an EVENT (with head, the event name, first) or of an ACK
// (head == nil) as a JSON array. Each element is what encoding/json writes for the argument,
// compact and without HTML escaping, except that byte slices (the values encoding/json would
// write as base64 strings: []byte, Binary) anywhere inside args become placeholders and are
// returned as attachments, in placeholder order; the attachments alias the caller's slices.
// A json.RawMessage argument is copied as it is.
func MarshalArgs(head any, args ...any) (data []byte, attachments [][]byte, err error) {
	w := &argWriter{}
	w.buf.Grow(64)
	w.buf.WriteByte('[')
	if head != nil {
		if err := w.arg(head); err != nil {
			return nil, nil, err
		}
	}
	for i, a := range args {
		if i > 0 || head != nil {
			w.buf.WriteByte(',')
		}
		if err := w.arg(a); err != nil {
			return nil, nil, err
		}
	}
	w.buf.WriteByte(']')
	if len(w.atts) > MaxAttachments {
		return nil, nil, ErrTooManyAttachments
	}
	return w.buf.Bytes(), w.atts, nil
}

// AppendArg appends one more element to the JSON array data (which must end with ']') and
// returns the result in a new slice; data is not modified. It is how a recovery offset is added
// as the last argument of an event.
func AppendArg(data []byte, elem []byte) []byte {
	end := bytes.LastIndexByte(data, ']')
	if end < 0 {
		return data
	}
	out := make([]byte, 0, len(data)+len(elem)+1)
	out = append(out, data[:end]...)
	if firstByte(data[1:end]) != 0 {
		out = append(out, ',')
	}
	out = append(out, elem...)
	out = append(out, data[end:]...)
	return out
}

// argWriter encodes arguments. Values whose type cannot hold a byte slice are encoded by
// encoding/json; the others are walked here, by encoding/json's rules, down to such values.
type argWriter struct {
	buf   bytes.Buffer
	enc   *json.Encoder // writes into buf
	atts  [][]byte
	depth int              // pointers, maps and slices being encoded
	seen  map[any]struct{} // those of them beyond cycleDepth
}

// arg appends one argument.
func (w *argWriter) arg(a any) error {
	if raw, ok := a.(json.RawMessage); ok {
		if len(raw) == 0 {
			w.buf.WriteString("null")
			return nil
		}
		if !json.Valid(raw) {
			return fmt.Errorf("parser: invalid json.RawMessage argument")
		}
		w.buf.Write(raw)
		return nil
	}
	return w.value(reflect.ValueOf(a))
}

// value appends the JSON of v.
func (w *argWriter) value(v reflect.Value) error {
	if !v.IsValid() {
		w.buf.WriteString("null")
		return nil
	}
	t := v.Type()
	ti := info(t)
	// A value read through an unexported embedded struct cannot be handed over (reflect
	// refuses): it is a struct or a pointer to one, walked below.
	if v.CanInterface() && (!ti.binary || ti.marshals || ti.ptrMarshals && v.CanAddr()) {
		return w.plain(v, false)
	}
	switch t.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			w.buf.WriteString("null")
			return nil
		}
		return w.value(v.Elem())
	case reflect.Pointer:
		if v.IsNil() {
			w.buf.WriteString("null")
			return nil
		}
		if err := w.enter(v); err != nil {
			return err
		}
		if err := w.value(v.Elem()); err != nil {
			return err
		}
		w.leave(v)
		return nil
	case reflect.Slice:
		if v.IsNil() {
			w.buf.WriteString("null")
			return nil
		}
		if isByteSlice(t) {
			w.placeholder(v.Bytes())
			return nil
		}
		if err := w.enter(v); err != nil {
			return err
		}
		if err := w.elements(v); err != nil {
			return err
		}
		w.leave(v)
		return nil
	case reflect.Array:
		return w.elements(v)
	case reflect.Map:
		return w.mapValue(v)
	case reflect.Struct:
		return w.structValue(v)
	}
	return w.plain(v, false) // not reached: other kinds hold no byte slice
}

func (w *argWriter) elements(v reflect.Value) error {
	w.buf.WriteByte('[')
	for i := range v.Len() {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		if err := w.value(v.Index(i)); err != nil {
			return err
		}
	}
	w.buf.WriteByte(']')
	return nil
}

func (w *argWriter) mapValue(v reflect.Value) error {
	t := v.Type()
	switch t.Key().Kind() {
	case reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
	default:
		if !t.Key().Implements(textMarshalerType) {
			return &json.UnsupportedTypeError{Type: t}
		}
	}
	if v.IsNil() {
		w.buf.WriteString("null")
		return nil
	}
	if err := w.enter(v); err != nil {
		return err
	}
	type entry struct {
		key string
		val reflect.Value
	}
	entries := make([]entry, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		k, err := keyName(it.Key())
		if err != nil {
			return fmt.Errorf("json: encoding error for type %q: %q", t.String(), err.Error())
		}
		entries = append(entries, entry{k, it.Value()})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	w.buf.WriteByte('{')
	for i, e := range entries {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		if err := w.encode(e.key); err != nil {
			return err
		}
		w.buf.WriteByte(':')
		if err := w.value(e.val); err != nil {
			return err
		}
	}
	w.buf.WriteByte('}')
	w.leave(v)
	return nil
}

// keyName is the JSON object key of map key k.
func keyName(k reflect.Value) (string, error) {
	if k.Kind() == reflect.String {
		return k.String(), nil
	}
	if tm, ok := reflect.TypeAssert[encoding.TextMarshaler](k); ok {
		if k.Kind() == reflect.Pointer && k.IsNil() {
			return "", nil
		}
		b, err := tm.MarshalText()
		return string(b), err
	}
	if k.CanInt() {
		return strconv.FormatInt(k.Int(), 10), nil
	}
	return strconv.FormatUint(k.Uint(), 10), nil
}

func (w *argWriter) structValue(v reflect.Value) error {
	w.buf.WriteByte('{')
	first := true
fields:
	for _, f := range jsonFields(v.Type()) {
		fv := v
		for _, i := range f.index {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() { // a field of a nil embedded struct: left out
					continue fields
				}
				fv = fv.Elem()
			}
			fv = fv.Field(i)
		}
		if f.omitEmpty && isEmpty(fv) || f.omitZero && isZero(fv) {
			continue
		}
		if !first {
			w.buf.WriteByte(',')
		}
		first = false
		w.buf.WriteString(f.key)
		var err error
		if f.quoted {
			err = w.plain(fv, true)
		} else {
			err = w.value(fv)
		}
		if err != nil {
			return err
		}
	}
	w.buf.WriteByte('}')
	return nil
}

// plain appends encoding/json's encoding of v, with the string option when quoted. When it
// matters v is handed over as the field of a wrapper struct, so that encoding/json sees it as
// it is: addressable or not (it calls pointer methods only on addressable values, v's own or
// those of its fields and elements), and of its interface type, not of the value it holds.
func (w *argWriter) plain(v reflect.Value, quoted bool) error {
	k := v.Kind()
	if !quoted && k != reflect.Interface &&
		!(v.CanAddr() && (info(v.Type()).ptrMarshals || k == reflect.Struct || k == reflect.Array)) {
		return w.encode(v.Interface())
	}
	p := reflect.New(wrapperType(v.Type(), quoted))
	p.Elem().Field(0).Set(v)
	x := p.Interface()
	if !v.CanAddr() {
		x = p.Elem().Interface()
	}
	start := w.buf.Len()
	if err := w.encode(x); err != nil {
		return err
	}
	b := w.buf.Bytes()[start:] // {"V":value}
	n := copy(b, b[len(`{"V":`):len(b)-1])
	w.buf.Truncate(start + n)
	return nil
}

// encode appends encoding/json's encoding of x, without HTML escaping.
func (w *argWriter) encode(x any) error {
	if w.enc == nil {
		w.enc = json.NewEncoder(&w.buf)
		w.enc.SetEscapeHTML(false)
	}
	if err := w.enc.Encode(x); err != nil { // Encode writes nothing on error
		return err
	}
	w.buf.Truncate(w.buf.Len() - 1) // Encode's newline
	return nil
}

type wrapperKey struct {
	t      reflect.Type
	quoted bool
}

// wrapperType returns struct{ V t }, with the tag `json:",string"` when quoted.
func wrapperType(t reflect.Type, quoted bool) reflect.Type {
	key := wrapperKey{t, quoted}
	if wt, ok := wrapperTypes.Load(key); ok {
		return wt.(reflect.Type)
	}
	f := reflect.StructField{Name: "V", Type: t}
	if quoted {
		f.Tag = `json:",string"`
	}
	wt := reflect.StructOf([]reflect.StructField{f})
	wrapperTypes.Store(key, wt)
	return wt
}

func (w *argWriter) placeholder(b []byte) {
	w.buf.WriteString(`{"_placeholder":true,"num":`)
	w.buf.Write(strconv.AppendInt(w.buf.AvailableBuffer(), int64(len(w.atts)), 10))
	w.buf.WriteByte('}')
	w.atts = append(w.atts, b)
}

// cycleDepth is how deep pointers, maps and slices nest before the encoder starts looking for
// cycles, which would recurse forever (encoding/json's threshold).
const cycleDepth = 1000

func (w *argWriter) enter(v reflect.Value) error {
	w.depth++
	if w.depth <= cycleDepth {
		return nil
	}
	k := cycleKeyOf(v)
	if _, ok := w.seen[k]; ok {
		return &json.UnsupportedValueError{Value: v, Str: "encountered a cycle via " + v.Type().String()}
	}
	if w.seen == nil {
		w.seen = map[any]struct{}{}
	}
	w.seen[k] = struct{}{}
	return nil
}

func (w *argWriter) leave(v reflect.Value) {
	if w.depth > cycleDepth {
		delete(w.seen, cycleKeyOf(v))
	}
	w.depth--
}

// cycleKey identifies a pointer (by address and type), a map (by address) or a slice (by
// address and length) on the path being encoded, as encoding/json does.
type cycleKey struct {
	t reflect.Type
	p any // an unsafe.Pointer
	n int
}

func cycleKeyOf(v reflect.Value) cycleKey {
	switch v.Kind() {
	case reflect.Pointer:
		return cycleKey{t: v.Type(), p: v.UnsafePointer()}
	case reflect.Map:
		return cycleKey{p: v.UnsafePointer(), n: -1}
	}
	return cycleKey{p: v.UnsafePointer(), n: v.Len()}
}

// typeInfo is what the encoder needs to know about a type.
type typeInfo struct {
	binary      bool // a value may hold a byte slice
	marshals    bool // encoding/json calls the value's MarshalJSON or MarshalText
	ptrMarshals bool // it calls them on the pointer, for addressable values only
}

func info(t reflect.Type) *typeInfo {
	if ti, ok := typeInfos.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti := &typeInfo{marshals: marshals(t)}
	ti.ptrMarshals = !ti.marshals && marshals(reflect.PointerTo(t))
	ti.binary = reachesBinary(t, map[reflect.Type]bool{})
	typeInfos.Store(t, ti)
	return ti
}

func marshals(t reflect.Type) bool {
	return t.Implements(marshalerType) || t.Implements(textMarshalerType)
}

// isByteSlice reports whether encoding/json writes slices of type t as base64 strings.
func isByteSlice(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && !marshals(reflect.PointerTo(t.Elem()))
}

// reachesBinary reports whether a value of type t may hold a byte slice that encoding/json
// would reach. seen holds the types already looked at (recursive types).
func reachesBinary(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] || marshals(t) {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Slice:
		return isByteSlice(t) || reachesBinary(t.Elem(), seen)
	case reflect.Array, reflect.Pointer, reflect.Map:
		return reachesBinary(t.Elem(), seen)
	case reflect.Struct:
		for _, f := range jsonFields(t) {
			if reachesBinary(f.typ, seen) {
				return true
			}
		}
	}
	return false
}

// field is a struct field as encoding/json encodes it.
type field struct {
	name      string
	key       string // `"name":`
	index     []int  // through embedded structs
	typ       reflect.Type
	tagged    bool // named by its tag
	omitEmpty bool
	omitZero  bool
	quoted    bool // the string option applies
}

// jsonFields returns the fields encoding/json encodes for struct type t, in its order. The
// fields of embedded structs are promoted by Go's rules amended by the tags: of the fields
// with one name, the least nested wins; among equals, a sole tagged one; otherwise none.
func jsonFields(t reflect.Type) []field {
	if f, ok := fieldsCache.Load(t); ok {
		return f.([]field)
	}
	type embedded struct {
		typ   reflect.Type
		index []int
	}
	var fields []field
	level := []embedded{{typ: t}}
	var count map[reflect.Type]int // how many times each struct of level is embedded at its depth
	visited := map[reflect.Type]bool{}
	for len(level) > 0 {
		var next []embedded
		nextCount := map[reflect.Type]int{}
		for _, e := range level {
			if visited[e.typ] {
				continue
			}
			visited[e.typ] = true
			for i := range e.typ.NumField() {
				sf := e.typ.Field(i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if !sf.IsExported() && !(sf.Anonymous && ft.Kind() == reflect.Struct) {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !validName(name) {
					name = ""
				}
				index := append(slices.Clone(e.index), i)
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
					nextCount[ft]++
					if nextCount[ft] == 1 {
						next = append(next, embedded{ft, index})
					}
					continue
				}
				f := field{
					name: name, tagged: name != "", index: index, typ: sf.Type,
					omitEmpty: hasOption(opts, "omitempty"),
					omitZero:  hasOption(opts, "omitzero"),
					quoted:    hasOption(opts, "string") && isScalar(ft.Kind()),
				}
				if f.name == "" {
					f.name = sf.Name
				}
				f.key = `"` + f.name + `":`
				fields = append(fields, f)
				if count[e.typ] > 1 {
					// Its struct is embedded more than once at this depth: a copy makes the
					// name ambiguous, as in Go.
					fields = append(fields, f)
				}
			}
		}
		level, count = next, nextCount
	}
	slices.SortFunc(fields, func(a, b field) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := len(a.index) - len(b.index); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return slices.Compare(a.index, b.index)
	})
	out := fields[:0]
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && fields[j].name == fields[i].name {
			j++
		}
		if j == i+1 || len(fields[i].index) < len(fields[i+1].index) || fields[i].tagged != fields[i+1].tagged {
			out = append(out, fields[i])
		}
		i = j
	}
	slices.SortFunc(out, func(a, b field) int { return slices.Compare(a.index, b.index) })
	fieldsCache.Store(t, out)
	return out
}

// validName reports whether encoding/json accepts a tag's name.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c) && !unicode.IsLetter(c) && !unicode.IsDigit(c) {
			return false
		}
	}
	return true
}

func hasOption(opts, name string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == name {
			return true
		}
	}
	return false
}

func isScalar(k reflect.Kind) bool {
	switch k {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

// isEmpty is the omitempty test.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Struct, reflect.Func, reflect.Chan, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return false
	}
	return v.IsZero()
}

// isZero is the omitzero test: the IsZero method of the field's type, else the zero value.
func isZero(v reflect.Value) bool {
	t := v.Type()
	if !v.CanInterface() {
		return v.IsZero()
	}
	switch {
	case t.Kind() == reflect.Interface && t.Implements(isZeroerType):
		// Like encoding/json, a nil interface or nil pointer is zero without the call.
		return v.IsNil() || v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil() || v.Interface().(isZeroer).IsZero()
	case t.Kind() == reflect.Pointer && t.Implements(isZeroerType):
		return v.IsNil() || v.Interface().(isZeroer).IsZero()
	case t.Implements(isZeroerType):
		return v.Interface().(isZeroer).IsZero()
	case reflect.PointerTo(t).Implements(isZeroerType):
		if !v.CanAddr() {
			c := reflect.New(t).Elem()
			c.Set(v)
			v = c
		}
		return v.Addr().Interface().(isZeroer).IsZero()
	}
	return v.IsZero()
}
