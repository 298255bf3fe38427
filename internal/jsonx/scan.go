package jsonx

// MaxDepth is encoding/json's nesting limit (arrays and objects); a Scanner
// whose MaxDepth is 0 uses it.
const MaxDepth = 10000

// Scanner reads JSON text in Data from offset I. It accepts exactly what
// encoding/json accepts: whitespace is space, tab, CR and LF; strings may hold
// any byte from 0x20 up (encoding/json does not check UTF-8 inside strings,
// and neither does this), escapes are \" \\ \/ \b \f \n \r \t and \uXXXX with
// any four hex digits (lone surrogates included); numbers follow the JSON
// grammar (no leading zeros, no '+', digits after '.' and after the
// exponent); nesting deeper than MaxDepth fails.
type Scanner struct {
	Data []byte
	I    int
	// Depth is the nesting depth of the value being read: a caller that
	// reads an enclosing '[' or '{' itself sets it to 1.
	Depth int
	// MaxDepth bounds Depth; 0 means the package's MaxDepth.
	MaxDepth int
}

// SkipSpace moves I past whitespace.
func (s *Scanner) SkipSpace() {
	for s.I < len(s.Data) {
		switch s.Data[s.I] {
		case ' ', '\t', '\r', '\n':
			s.I++
		default:
			return
		}
	}
}

// Eat moves I past c if c is the next byte.
func (s *Scanner) Eat(c byte) bool {
	if s.I < len(s.Data) && s.Data[s.I] == c {
		s.I++
		return true
	}
	return false
}

// AtEnd reports whether only whitespace is left.
func (s *Scanner) AtEnd() bool {
	s.SkipSpace()
	return s.I == len(s.Data)
}

// Value reads one JSON value starting at I (no leading whitespace) and
// leaves I just after it. It reports false for anything encoding/json
// rejects (or a nesting deeper than MaxDepth); I is then undefined.
func (s *Scanner) Value() bool {
	if s.I >= len(s.Data) {
		return false
	}
	switch c := s.Data[s.I]; {
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

func (s *Scanner) literal(lit string) bool {
	if len(s.Data)-s.I < len(lit) || string(s.Data[s.I:s.I+len(lit)]) != lit {
		return false
	}
	s.I += len(lit)
	return true
}

func (s *Scanner) digits() int {
	n := 0
	for s.I < len(s.Data) && s.Data[s.I] >= '0' && s.Data[s.I] <= '9' {
		s.I++
		n++
	}
	return n
}

func (s *Scanner) number() bool {
	s.Eat('-')
	if s.I >= len(s.Data) {
		return false
	}
	switch c := s.Data[s.I]; {
	case c == '0':
		s.I++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.Eat('.') && s.digits() == 0 {
		return false
	}
	if s.Eat('e') || s.Eat('E') {
		if !s.Eat('+') {
			s.Eat('-')
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

// str reads a string; Data[I] is its opening quote.
func (s *Scanner) str() bool {
	s.I++
	for s.I < len(s.Data) {
		c := s.Data[s.I]
		switch {
		case c == '"':
			s.I++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			s.I++
			if s.I >= len(s.Data) {
				return false
			}
			switch s.Data[s.I] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.I++
			case 'u':
				if len(s.Data)-s.I < 5 || !isHex(s.Data[s.I+1]) || !isHex(s.Data[s.I+2]) ||
					!isHex(s.Data[s.I+3]) || !isHex(s.Data[s.I+4]) {
					return false
				}
				s.I += 5
			default:
				return false
			}
		default:
			s.I++
		}
	}
	return false
}

func (s *Scanner) push() bool {
	s.Depth++
	max := s.MaxDepth
	if max == 0 {
		max = MaxDepth
	}
	return s.Depth <= max
}

// array reads an array; Data[I] is its '['.
func (s *Scanner) array() bool {
	if !s.push() {
		return false
	}
	s.I++
	s.SkipSpace()
	if s.Eat(']') {
		s.Depth--
		return true
	}
	for {
		s.SkipSpace()
		if !s.Value() {
			return false
		}
		s.SkipSpace()
		if s.Eat(']') {
			s.Depth--
			return true
		}
		if !s.Eat(',') {
			return false
		}
	}
}

// object reads an object; Data[I] is its '{'.
func (s *Scanner) object() bool {
	if !s.push() {
		return false
	}
	s.I++
	s.SkipSpace()
	if s.Eat('}') {
		s.Depth--
		return true
	}
	for {
		s.SkipSpace()
		if s.I >= len(s.Data) || s.Data[s.I] != '"' || !s.str() {
			return false
		}
		s.SkipSpace()
		if !s.Eat(':') {
			return false
		}
		s.SkipSpace()
		if !s.Value() {
			return false
		}
		s.SkipSpace()
		if s.Eat('}') {
			s.Depth--
			return true
		}
		if !s.Eat(',') {
			return false
		}
	}
}
