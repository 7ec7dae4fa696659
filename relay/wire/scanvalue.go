package wire

// Byte classes of string contents. plain*: copied as is and encoded again
// the same (printable ASCII, not '"' or '\\'; the HTML one also not <, >,
// &). data*: copied as is by compacting (everything but '"', '\\' and
// control bytes; the HTML one also not <, >, & and 0xE2, which may start
// U+2028 or U+2029).
var plainTab, plainHTMLTab, dataTab, dataHTMLTab [256]bool

func init() {
	for c := 0; c < 256; c++ {
		ok := c >= 0x20 && c != '"' && c != '\\'
		html := c != '<' && c != '>' && c != '&'
		plainTab[c] = ok && c < 0x80
		plainHTMLTab[c] = ok && c < 0x80 && html
		dataTab[c] = ok
		dataHTMLTab[c] = ok && html && c != 0xE2
	}
}

// maxDepth keeps the scanner far below encoding/json's nesting limit
// (10000); deeper input goes to encoding/json.
const maxDepth = 1000

// value validates the next JSON value and appends it to dst compacted as
// json.Compact (and, when HTML-escaping, as json.Marshal of a RawMessage)
// writes it.
func (s *scanner) value(dst []byte) ([]byte, bool) {
	return s.valueDepth(dst, 0)
}

func (s *scanner) valueDepth(dst []byte, depth int) ([]byte, bool) {
	if depth > maxDepth {
		return dst, false
	}
	switch c := s.peek(); {
	case c == '{':
		return s.object(dst, depth)
	case c == '[':
		return s.array(dst, depth)
	case c == '"':
		return s.dataString(dst)
	case c == '-' || '0' <= c && c <= '9':
		return s.number(dst)
	case c == 't':
		return s.literal(dst, "true")
	case c == 'f':
		return s.literal(dst, "false")
	case c == 'n':
		return s.literal(dst, "null")
	}
	return dst, false
}

func (s *scanner) object(dst []byte, depth int) ([]byte, bool) {
	s.i++
	dst = append(dst, '{')
	if s.peek() == '}' {
		s.i++
		return append(dst, '}'), true
	}
	for {
		if s.peek() != '"' {
			return dst, false
		}
		var ok bool
		if dst, ok = s.dataString(dst); !ok || s.peek() != ':' {
			return dst, false
		}
		s.i++
		dst = append(dst, ':')
		if dst, ok = s.valueDepth(dst, depth+1); !ok {
			return dst, false
		}
		var c byte
		if dst, c = s.copySep(dst, '}'); c != ',' {
			return dst, c != 0
		}
	}
}

func (s *scanner) array(dst []byte, depth int) ([]byte, bool) {
	s.i++
	dst = append(dst, '[')
	if s.peek() == ']' {
		s.i++
		return append(dst, ']'), true
	}
	for {
		var ok bool
		if dst, ok = s.valueDepth(dst, depth+1); !ok {
			return dst, false
		}
		var c byte
		if dst, c = s.copySep(dst, ']'); c != ',' {
			return dst, c != 0
		}
	}
}

// copySep reads what follows a member or an element as sep does, copies
// it to dst and returns it: ',' (more to come), end (the last) or 0 (bad).
// It does not call sep so that it stays inlined.
func (s *scanner) copySep(dst []byte, end byte) ([]byte, byte) {
	c := s.peek()
	if c != ',' && c != end {
		return dst, 0
	}
	s.i++
	return append(dst, c), c
}

// dataString copies a string, escapes kept as written, HTML characters
// and U+2028/U+2029 escaped when s.escape (json.Compact's rules).
func (s *scanner) dataString(dst []byte) ([]byte, bool) {
	tab := &dataTab
	if s.escape {
		tab = &dataHTMLTab
	}
	src := s.src
	i := s.i + 1
	run := s.i // start of bytes not yet copied
	for i < len(src) {
		c := src[i]
		if tab[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			i++
			s.i = i
			return append(dst, src[run:i]...), true
		case c == '\\':
			s.i = i
			if !s.escapeSeq() {
				return dst, false
			}
			i = s.i
		case c < 0x20:
			return dst, false
		case c == 0xE2:
			if i+2 < len(src) && src[i+1] == 0x80 && src[i+2]&^1 == 0xA8 {
				dst = append(dst, src[run:i]...)
				dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[src[i+2]&0xF])
				i += 3
				run = i
				continue
			}
			i++
		default: // <, >, &
			dst = append(dst, src[run:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			i++
			run = i
		}
	}
	return dst, false
}

const hexDigits = "0123456789abcdef"

// number copies a JSON number, checking its grammar.
func (s *scanner) number(dst []byte) ([]byte, bool) {
	src, i := s.src, s.i
	start := i
	if i < len(src) && src[i] == '-' {
		i++
	}
	switch {
	case i < len(src) && src[i] == '0':
		i++
	case i < len(src) && '1' <= src[i] && src[i] <= '9':
		i = digits(src, i)
	default:
		return dst, false
	}
	if i < len(src) && src[i] == '.' {
		j := digits(src, i+1)
		if j == i+1 {
			return dst, false
		}
		i = j
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		j := digits(src, i)
		if j == i {
			return dst, false
		}
		i = j
	}
	s.i = i
	return append(dst, src[start:i]...), true
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func (s *scanner) literal(dst []byte, lit string) ([]byte, bool) {
	if len(s.src)-s.i < len(lit) || string(s.src[s.i:s.i+len(lit)]) != lit {
		return dst, false
	}
	s.i += len(lit)
	return append(dst, lit...), true
}
