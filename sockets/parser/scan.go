package parser

import "encoding/json"

// maxNestingDepth is the nesting limit of encoding/json's scanner (arrays and objects, the
// top-level array included); splitArray applies the same limit so both accept the same inputs.
const maxNestingDepth = 10000

// splitArray validates data as a JSON array and returns its elements as subslices of data
// (each element without the whitespace around it), in one pass, without reflection.
//
// It accepts exactly what json.Unmarshal into a []json.RawMessage accepts, byte for byte:
// whitespace is space, tab, CR and LF; strings may hold any byte from 0x20 up (encoding/json
// does not check UTF-8 inside strings, and neither does this; Decode checks the whole frame
// first), escapes are \" \\ \/ \b \f \n \r \t and \uXXXX with any four hex digits (lone
// surrogates included); numbers follow the JSON grammar (no leading zeros, no '+', digits
// after '.' and after the exponent); nesting deeper than maxNestingDepth fails. The
// differential fuzz target FuzzSplitArray holds it to that.
func splitArray(data []byte) ([]json.RawMessage, bool) {
	s := scanner{data: data}
	s.skipSpace()
	if s.i >= len(s.data) || s.data[s.i] != '[' {
		return nil, false
	}
	s.i++
	s.depth = 1
	out := make([]json.RawMessage, 0, 4)
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
	} else {
		for {
			s.skipSpace()
			start := s.i
			if !s.value() {
				return nil, false
			}
			out = append(out, json.RawMessage(s.data[start:s.i:s.i]))
			s.skipSpace()
			if s.i >= len(s.data) {
				return nil, false
			}
			c := s.data[s.i]
			s.i++
			if c == ']' {
				break
			}
			if c != ',' {
				return nil, false
			}
		}
	}
	s.skipSpace()
	return out, s.i == len(s.data)
}

// scanner is the state of one splitArray call: the input, the read offset and the nesting
// depth of the value being read.
type scanner struct {
	data  []byte
	i     int
	depth int
}

func (s *scanner) skipSpace() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// value reads one JSON value starting at s.i (no leading whitespace) and leaves s.i just after it.
func (s *scanner) value() bool {
	if s.i >= len(s.data) {
		return false
	}
	switch c := s.data[s.i]; {
	case c == '"':
		return s.str()
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.data)-s.i < len(lit) || string(s.data[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.data) && s.data[s.i] >= '0' && s.data[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *scanner) number() bool {
	if s.data[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.data) {
		return false
	}
	switch c := s.data[s.i]; {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.i < len(s.data) && s.data[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if s.i < len(s.data) && (s.data[s.i] == 'e' || s.data[s.i] == 'E') {
		s.i++
		if s.i < len(s.data) && (s.data[s.i] == '+' || s.data[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// str reads a string; s.data[s.i] is its opening quote.
func (s *scanner) str() bool {
	s.i++
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			s.i++
			if s.i >= len(s.data) {
				return false
			}
			switch s.data[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if len(s.data)-s.i < 5 || !isHex(s.data[s.i+1]) || !isHex(s.data[s.i+2]) ||
					!isHex(s.data[s.i+3]) || !isHex(s.data[s.i+4]) {
					return false
				}
				s.i += 5
			default:
				return false
			}
		default:
			s.i++
		}
	}
	return false
}

func (s *scanner) push() bool {
	s.depth++
	return s.depth <= maxNestingDepth
}

// array reads an array; s.data[s.i] is its '['.
func (s *scanner) array() bool {
	if !s.push() {
		return false
	}
	s.i++
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		s.skipSpace()
		if !s.value() {
			return false
		}
		s.skipSpace()
		if s.i >= len(s.data) {
			return false
		}
		c := s.data[s.i]
		s.i++
		if c == ']' {
			s.depth--
			return true
		}
		if c != ',' {
			return false
		}
	}
}

// object reads an object; s.data[s.i] is its '{'.
func (s *scanner) object() bool {
	if !s.push() {
		return false
	}
	s.i++
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		s.skipSpace()
		if s.i >= len(s.data) || s.data[s.i] != '"' || !s.str() {
			return false
		}
		s.skipSpace()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return false
		}
		s.i++
		s.skipSpace()
		if !s.value() {
			return false
		}
		s.skipSpace()
		if s.i >= len(s.data) {
			return false
		}
		c := s.data[s.i]
		s.i++
		if c == '}' {
			s.depth--
			return true
		}
		if c != ',' {
			return false
		}
	}
}
