package ot

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits of Parse.
const (
	// DefaultMaxBytes is the default limit on the size of an op's JSON
	// form: 1 MiB.
	DefaultMaxBytes = 1 << 20
	// DefaultMaxComponents is the default limit on the number of
	// components of an op's JSON form (before normalization).
	DefaultMaxComponents = 1 << 16
	// MaxCount is the largest count of a retain or delete, and the largest
	// total span of an op: 2^53-1, the largest integer a JavaScript client
	// represents exactly.
	MaxCount = 1<<53 - 1
)

// ParseOptions sets the limits of ParseLimit. A zero field means the
// default; a negative field means no limit (for ops the server wrote
// itself, such as ops read back from storage).
type ParseOptions struct {
	// MaxBytes limits the size of the JSON text in bytes (default
	// DefaultMaxBytes).
	MaxBytes int
	// MaxComponents limits the number of array elements (default
	// DefaultMaxComponents).
	MaxComponents int
}

// Parse parses and normalizes an op from its JSON wire form with the default
// limits. See ParseLimit.
func Parse(data []byte) (Op, error) { return ParseLimit(data, ParseOptions{}) }

// ParseLimit parses an op from its JSON wire form and normalizes it
// (merging adjacent components of one kind, putting an insert before an
// adjacent delete, dropping the trailing retain).
//
// It accepts exactly a JSON array whose elements are non-zero integers
// (within ±MaxCount, written without fraction or exponent) and non-empty
// strings, with optional whitespace. Strings must be valid UTF-8; escapes
// may encode surrogate pairs but not lone surrogates. Every error matches
// ErrInvalid; a size over a limit (or a span over MaxCount) also matches
// ErrTooLarge. The message says what is wrong and where.
func ParseLimit(data []byte, opts ParseOptions) (Op, error) {
	maxBytes := opts.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxBytes > 0 && len(data) > maxBytes {
		return Op{}, tooLarge(fmt.Sprintf("%d bytes, limit %d", len(data), maxBytes))
	}
	maxComps := opts.MaxComponents
	if maxComps == 0 {
		maxComps = DefaultMaxComponents
	}
	p := parser{data: data}
	if err := p.parse(maxComps); err != nil {
		return Op{}, err
	}
	return p.b.Build(), nil
}

type parser struct {
	data []byte
	pos  int
	b    Builder
	buf  []byte // unescaped string being built
}

func (p *parser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// found describes what is at the current position, for error messages.
func (p *parser) found() string {
	if p.pos >= len(p.data) {
		return "end of input"
	}
	r, _ := utf8.DecodeRune(p.data[p.pos:])
	return fmt.Sprintf("%q at byte %d", r, p.pos)
}

func (p *parser) parse(maxComps int) error {
	p.ws()
	if p.pos >= len(p.data) || p.data[p.pos] != '[' {
		return invalidf("expected a JSON array, found " + p.found())
	}
	p.pos++
	p.ws()
	span := 0
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
	} else {
		for i := 1; ; i++ {
			if maxComps > 0 && i > maxComps {
				return tooLarge(fmt.Sprintf("more than %d components", maxComps))
			}
			p.ws()
			if p.pos >= len(p.data) {
				return invalidf("unterminated array")
			}
			switch c := p.data[p.pos]; {
			case c == '"':
				start := p.pos
				s, err := p.str()
				if err != nil {
					return invalidf(fmt.Sprintf("component %d: %s", i, err))
				}
				if s == "" {
					return invalidf(fmt.Sprintf("component %d: empty insert string at byte %d", i, start))
				}
				p.b.insert(s, countRunes(s))
			case c == '-' || c >= '0' && c <= '9':
				n, err := p.num()
				if err != nil {
					return invalidf(fmt.Sprintf("component %d: %s", i, err))
				}
				m := n
				if m < 0 {
					m = -m
				}
				if span > MaxCount-m {
					return tooLarge(fmt.Sprintf("component %d: span exceeds %d code points", i, MaxCount))
				}
				span += m
				if n > 0 {
					p.b.Retain(n)
				} else {
					p.b.Delete(-n)
				}
			default:
				return invalidf(fmt.Sprintf("component %d: expected an integer or a string, found %s", i, p.found()))
			}
			p.ws()
			if p.pos < len(p.data) && p.data[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.pos < len(p.data) && p.data[p.pos] == ']' {
				p.pos++
				break
			}
			return invalidf(fmt.Sprintf("after component %d: expected ',' or ']', found %s", i, p.found()))
		}
	}
	p.ws()
	if p.pos != len(p.data) {
		return invalidf("unexpected data after the array: " + p.found())
	}
	return nil
}

// num parses a JSON number that must be a non-zero integer within ±MaxCount.
func (p *parser) num() (int, error) {
	start := p.pos
	neg := false
	if p.data[p.pos] == '-' {
		neg = true
		p.pos++
	}
	digits := p.pos
	n, big := 0, false
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		if n > MaxCount/10 {
			big = true
		} else {
			n = n*10 + int(p.data[p.pos]-'0')
		}
		p.pos++
	}
	if p.pos == digits {
		return 0, fmt.Errorf("malformed number at byte %d", start)
	}
	if p.data[digits] == '0' && p.pos-digits > 1 {
		return 0, fmt.Errorf("number %s at byte %d has a leading zero", p.data[start:p.pos], start)
	}
	if p.pos < len(p.data) {
		switch p.data[p.pos] {
		case '.', 'e', 'E':
			for p.pos < len(p.data) {
				c := p.data[p.pos]
				if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
					break
				}
				p.pos++
			}
			return 0, fmt.Errorf("number %s at byte %d is not an integer", p.data[start:p.pos], start)
		}
	}
	if big || n > MaxCount {
		return 0, fmt.Errorf("number %s at byte %d is out of range (limit ±%d)", p.data[start:p.pos], start, MaxCount)
	}
	if n == 0 {
		return 0, fmt.Errorf("zero count at byte %d (retain and delete counts must not be 0)", start)
	}
	if neg {
		n = -n
	}
	return n, nil
}

// str parses a JSON string at p.pos (on the opening quote). It rejects
// invalid UTF-8, raw control characters and lone surrogate escapes.
func (p *parser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	p.buf = p.buf[:0]
	escaped := false
	for {
		if p.pos >= len(p.data) {
			return "", fmt.Errorf("unterminated string starting at byte %d", start-1)
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			var s string
			if escaped {
				p.buf = append(p.buf, p.data[start:p.pos]...)
				s = string(p.buf)
			} else {
				s = string(p.data[start:p.pos])
			}
			p.pos++
			return s, nil
		case c < 0x20:
			return "", fmt.Errorf("control character %#x in string at byte %d (must be escaped)", c, p.pos)
		case c < utf8.RuneSelf && c != '\\':
			p.pos++
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", fmt.Errorf("invalid UTF-8 in string at byte %d", p.pos)
			}
			p.pos += size
		default: // backslash
			p.buf = append(p.buf, p.data[start:p.pos]...)
			escaped = true
			if err := p.escape(); err != nil {
				return "", err
			}
			start = p.pos
		}
	}
}

// escape decodes the escape sequence at p.pos (on the backslash) into p.buf.
func (p *parser) escape() error {
	at := p.pos
	if p.pos+1 >= len(p.data) {
		return fmt.Errorf("unterminated escape at byte %d", at)
	}
	c := p.data[p.pos+1]
	p.pos += 2
	switch c {
	case '"', '\\', '/':
		p.buf = append(p.buf, c)
	case 'b':
		p.buf = append(p.buf, '\b')
	case 'f':
		p.buf = append(p.buf, '\f')
	case 'n':
		p.buf = append(p.buf, '\n')
	case 'r':
		p.buf = append(p.buf, '\r')
	case 't':
		p.buf = append(p.buf, '\t')
	case 'u':
		r, ok := p.hex4()
		if !ok {
			return fmt.Errorf("malformed \\u escape at byte %d", at)
		}
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00: // high surrogate: a low one must follow
			if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
				save := p.pos
				p.pos += 2
				lo, ok := p.hex4()
				if ok && lo >= 0xdc00 && lo <= 0xdfff {
					r = utf16.DecodeRune(r, lo)
					break
				}
				p.pos = save
			}
			return fmt.Errorf("lone surrogate escape \\u%04x at byte %d", r, at)
		case utf16.IsSurrogate(r):
			return fmt.Errorf("lone surrogate escape \\u%04x at byte %d", r, at)
		}
		p.buf = utf8.AppendRune(p.buf, r)
	default:
		return fmt.Errorf("invalid escape \\%c at byte %d", c, at)
	}
	return nil
}

// hex4 reads four hex digits at p.pos.
func (p *parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}
