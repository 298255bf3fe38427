package parser

import (
	"encoding/json"

	"github.com/collabd/collabd/internal/jsonx"
)

// splitArray validates data as a JSON array and returns its elements as subslices of data
// (each element without the whitespace around it), in one pass, without reflection.
//
// It accepts exactly what json.Unmarshal into a []json.RawMessage accepts, byte for byte
// (jsonx.Scanner's rules, encoding/json's nesting limit with the top-level array counted).
// The differential fuzz target FuzzSplitArray holds it to that.
func splitArray(data []byte) ([]json.RawMessage, bool) {
	s := jsonx.Scanner{Data: data}
	s.SkipSpace()
	if !s.Eat('[') {
		return nil, false
	}
	s.Depth = 1
	out := make([]json.RawMessage, 0, 4)
	s.SkipSpace()
	if !s.Eat(']') {
		for {
			s.SkipSpace()
			start := s.I
			if !s.Value() {
				return nil, false
			}
			out = append(out, json.RawMessage(data[start:s.I:s.I]))
			s.SkipSpace()
			if s.Eat(']') {
				break
			}
			if !s.Eat(',') {
				return nil, false
			}
		}
	}
	return out, s.AtEnd()
}
