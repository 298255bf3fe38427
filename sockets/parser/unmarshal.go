package parser

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// HasPlaceholder reports whether data may contain a binary placeholder.
func HasPlaceholder(data []byte) bool { return bytes.Contains(data, placeholderKey) }

// placeholderNum returns the attachment index of data when data is exactly one placeholder.
func placeholderNum(data []byte, n int) (int, bool) {
	if firstByte(data) != '{' || !HasPlaceholder(data) {
		return 0, false
	}
	var ph struct {
		Placeholder bool     `json:"_placeholder"`
		Num         *float64 `json:"num"`
	}
	if json.Unmarshal(data, &ph) != nil || !ph.Placeholder || ph.Num == nil {
		return 0, false
	}
	num := *ph.Num
	if num != float64(int(num)) || num < 0 || int(num) >= n {
		return 0, false
	}
	return int(num), true
}

// Unmarshal decodes one argument into dst, resolving placeholders against atts:
//   - *[]byte or *Binary: the attachment the argument's placeholder points at (not copied);
//   - *json.RawMessage: the argument's JSON as received (placeholders left in place);
//   - *any: the decoded value, with Binary values where placeholders were;
//   - anything else: encoding/json, with each placeholder read as the base64 string of its
//     attachment, so []byte fields anywhere in dst receive the attachments.
func Unmarshal(data json.RawMessage, atts [][]byte, dst any) error {
	switch d := dst.(type) {
	case *json.RawMessage:
		*d = append((*d)[:0], data...)
		return nil
	case *[]byte:
		if i, ok := placeholderNum(data, len(atts)); ok {
			*d = atts[i]
			return nil
		}
	case *Binary:
		if i, ok := placeholderNum(data, len(atts)); ok {
			*d = atts[i]
			return nil
		}
		var b []byte
		if err := json.Unmarshal(data, &b); err != nil {
			return err
		}
		*d = b
		return nil
	case *any:
		if len(atts) == 0 || !HasPlaceholder(data) {
			return json.Unmarshal(data, d)
		}
		v, err := Tree(data, atts, false)
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	if len(atts) > 0 && HasPlaceholder(data) {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		v, err := replace(v, func(i int) any { return base64.StdEncoding.EncodeToString(atts[i]) }, len(atts))
		if err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		data = b
	}
	return json.Unmarshal(data, dst)
}

// Tree decodes data into plain Go values (maps, slices, strings, bools, nil, float64 or
// json.Number with useNumber) with Binary values in place of the placeholders.
func Tree(data []byte, atts [][]byte, useNumber bool) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if useNumber {
		dec.UseNumber()
	}
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if len(atts) == 0 {
		return v, nil
	}
	return replace(v, func(i int) any { return Binary(atts[i]) }, len(atts))
}

func replace(v any, with func(int) any, n int) (any, error) {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			r, err := replace(e, with, n)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
	case map[string]any:
		if ph, ok := x["_placeholder"].(bool); ok && ph {
			var num float64
			switch k := x["num"].(type) {
			case float64:
				num = k
			case json.Number:
				f, err := k.Float64()
				if err != nil {
					return nil, ErrIllegalPlaceholder
				}
				num = f
			default:
				return nil, fmt.Errorf("%w: %w", errInvalid, ErrIllegalPlaceholder)
			}
			if num != float64(int(num)) || num < 0 || int(num) >= n {
				return nil, fmt.Errorf("%w: %w", errInvalid, ErrIllegalPlaceholder)
			}
			return with(int(num)), nil
		}
		for k, e := range x {
			r, err := replace(e, with, n)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	}
	return v, nil
}
