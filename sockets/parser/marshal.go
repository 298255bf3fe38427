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
)

// Binary marks a byte slice sent as a binary attachment. Plain []byte values are attachments
// too; json.RawMessage is not (it is JSON).
type Binary []byte

var (
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	hasBinaryCache    sync.Map // reflect.Type -> bool
	fieldsCache       sync.Map // reflect.Type -> []field
)

// MarshalArgs encodes the payload of an EVENT (with head, the event name, first) or of an ACK
// (head == nil) as a compact JSON array. Byte slices anywhere inside args (in structs, maps,
// slices, pointers, interfaces) become placeholders and are returned as attachments, in
// placeholder order; the attachments alias the caller's slices. JSON is not HTML-escaped and
// json.RawMessage / json.Number values are copied as they are.
func MarshalArgs(head any, args ...any) (data []byte, attachments [][]byte, err error) {
	w := argWriter{buf: make([]byte, 0, 64)}
	w.buf = append(w.buf, '[')
	n := 0
	if head != nil {
		if err := w.value(reflect.ValueOf(head)); err != nil {
			return nil, nil, err
		}
		n++
	}
	for _, a := range args {
		if n > 0 {
			w.buf = append(w.buf, ',')
		}
		n++
		if err := w.value(reflect.ValueOf(a)); err != nil {
			return nil, nil, err
		}
	}
	w.buf = append(w.buf, ']')
	if len(w.atts) > MaxAttachments {
		return nil, nil, ErrTooManyAttachments
	}
	return w.buf, w.atts, nil
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

type argWriter struct {
	buf  []byte
	atts [][]byte
	tmp  bytes.Buffer
	enc  *json.Encoder
}

// plain appends the standard JSON encoding of v, without HTML escaping.
func (w *argWriter) plain(v any) error {
	if w.enc == nil {
		w.enc = json.NewEncoder(&w.tmp)
		w.enc.SetEscapeHTML(false)
	}
	w.tmp.Reset()
	if err := w.enc.Encode(v); err != nil {
		return err
	}
	b := w.tmp.Bytes()
	w.buf = append(w.buf, b[:len(b)-1]...) // drop Encode's newline
	return nil
}

// scalar appends the JSON of common scalar values without going through encoding/json, and
// reports whether it did. Types with their own marshalling are left to encoding/json.
func (w *argWriter) scalar(v reflect.Value) bool {
	t := v.Type()
	if t.PkgPath() != "" && (t.Implements(marshalerType) || t.Implements(textMarshalerType)) {
		return false
	}
	switch v.Kind() {
	case reflect.Bool:
		w.buf = strconv.AppendBool(w.buf, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.buf = strconv.AppendInt(w.buf, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		w.buf = strconv.AppendUint(w.buf, v.Uint(), 10)
	default:
		return false
	}
	return true
}

func (w *argWriter) placeholder(b []byte) {
	w.buf = append(w.buf, `{"_placeholder":true,"num":`...)
	w.buf = strconv.AppendInt(w.buf, int64(len(w.atts)), 10)
	w.buf = append(w.buf, '}')
	w.atts = append(w.atts, b)
}

func (w *argWriter) value(v reflect.Value) error {
	if !v.IsValid() {
		w.buf = append(w.buf, "null"...)
		return nil
	}
	t := v.Type()
	if t == rawMessageType {
		raw := v.Bytes()
		if len(raw) == 0 {
			w.buf = append(w.buf, "null"...)
			return nil
		}
		if !json.Valid(raw) {
			return fmt.Errorf("parser: invalid json.RawMessage argument")
		}
		w.buf = append(w.buf, raw...)
		return nil
	}
	if !hasBinary(t) {
		if w.scalar(v) {
			return nil
		}
		return w.plain(v.Interface())
	}
	switch t.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			w.buf = append(w.buf, "null"...)
			return nil
		}
		return w.value(v.Elem())
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			if v.IsNil() {
				w.buf = append(w.buf, "null"...)
				return nil
			}
			w.placeholder(v.Bytes())
			return nil
		}
		if v.IsNil() {
			w.buf = append(w.buf, "null"...)
			return nil
		}
		fallthrough
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 { // [N]byte: copy out
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			w.placeholder(b)
			return nil
		}
		w.buf = append(w.buf, '[')
		for i := range v.Len() {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			if err := w.value(v.Index(i)); err != nil {
				return err
			}
		}
		w.buf = append(w.buf, ']')
		return nil
	case reflect.Map:
		if v.IsNil() {
			w.buf = append(w.buf, "null"...)
			return nil
		}
		type kv struct {
			k string
			v reflect.Value
		}
		kvs := make([]kv, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			k, err := mapKey(it.Key())
			if err != nil {
				return err
			}
			kvs = append(kvs, kv{k, it.Value()})
		}
		slices.SortFunc(kvs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
		w.buf = append(w.buf, '{')
		for i, e := range kvs {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			if err := w.plain(e.k); err != nil {
				return err
			}
			w.buf = append(w.buf, ':')
			if err := w.value(e.v); err != nil {
				return err
			}
		}
		w.buf = append(w.buf, '}')
		return nil
	case reflect.Struct:
		w.buf = append(w.buf, '{')
		n := 0
		for _, f := range structFields(t) {
			fv, ok := fieldByIndex(v, f.index)
			if !ok || (f.omitEmpty && isEmpty(fv)) {
				continue
			}
			if n > 0 {
				w.buf = append(w.buf, ',')
			}
			n++
			w.buf = append(w.buf, f.key...)
			if err := w.value(fv); err != nil {
				return err
			}
		}
		w.buf = append(w.buf, '}')
		return nil
	}
	return w.plain(v.Interface())
}

func mapKey(k reflect.Value) (string, error) {
	if k.Kind() == reflect.String {
		return k.String(), nil
	}
	if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
		b, err := tm.MarshalText()
		return string(b), err
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10), nil
	}
	return "", fmt.Errorf("parser: unsupported map key type %v", k.Type())
}

func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

type field struct {
	name      string
	key       []byte // the encoded name and colon: "name":
	typ       reflect.Type
	index     []int
	omitEmpty bool
}

// structFields lists the JSON fields of a struct type the way encoding/json names them
// (json tags, "-", omitempty, embedded structs promoted). Name conflicts keep the shallowest.
func structFields(t reflect.Type) []field {
	if f, ok := fieldsCache.Load(t); ok {
		return f.([]field)
	}
	var out []field
	seen := map[string]int{}
	var walk func(t reflect.Type, index []int, depth int)
	walk = func(t reflect.Type, index []int, depth int) {
		if depth > 8 {
			return
		}
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(index), i)
			ft := sf.Type
			if sf.Anonymous && name == "" {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct {
					walk(et, idx, depth+1)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if d, dup := seen[name]; dup && d <= depth {
				continue
			}
			seen[name] = depth
			key, _ := json.Marshal(name)
			key = append(key, ':')
			out = append(out, field{name: name, key: key, typ: ft, index: idx, omitEmpty: strings.Contains(opts, "omitempty")})
		}
	}
	walk(t, nil, 0)
	fieldsCache.Store(t, out)
	return out
}

// hasBinary reports whether values of type t may hold a byte slice to send as an attachment.
func hasBinary(t reflect.Type) bool {
	if b, ok := hasBinaryCache.Load(t); ok {
		return b.(bool)
	}
	hasBinaryCache.Store(t, false) // breaks cycles of recursive types
	b := computeHasBinary(t)
	hasBinaryCache.Store(t, b)
	return b
}

func computeHasBinary(t reflect.Type) bool {
	if t == rawMessageType {
		return false
	}
	if t.Kind() != reflect.Interface && (t.Implements(marshalerType) || t.Implements(textMarshalerType) ||
		reflect.PointerTo(t).Implements(marshalerType) || reflect.PointerTo(t).Implements(textMarshalerType)) {
		return false
	}
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return true
		}
		return hasBinary(t.Elem())
	case reflect.Pointer, reflect.Map:
		return hasBinary(t.Elem())
	case reflect.Struct:
		for _, f := range structFields(t) {
			if hasBinary(f.typ) {
				return true
			}
		}
	}
	return false
}
