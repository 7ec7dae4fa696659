package wire

import (
	"strconv"
	"time"
)

// uint reads a JSON number that is a uint64 as encoding/json takes it.
func (s *scanner) uint() ([]byte, uint64, bool) {
	s.ws()
	start := s.i
	for s.i < len(s.src) && '0' <= s.src[s.i] && s.src[s.i] <= '9' {
		s.i++
	}
	d := s.src[start:s.i]
	if len(d) == 0 || len(d) > 1 && d[0] == '0' {
		return nil, 0, false
	}
	if s.i < len(s.src) && (s.src[s.i] == '.' || s.src[s.i] == 'e' || s.src[s.i] == 'E') {
		return nil, 0, false
	}
	v, err := strconv.ParseUint(string(d), 10, 64)
	return d, v, err == nil
}

// time reads a time as time.Time.UnmarshalJSON does (the raw string,
// escapes not decoded).
func (s *scanner) time(t *time.Time) ([]byte, bool) {
	s.ws()
	start := s.i
	if _, _, ok := s.str(); !ok {
		return nil, false
	}
	raw := s.src[start:s.i]
	return raw, t.UnmarshalJSON(raw) == nil
}

// canonicalTime reports that raw, a quoted time that parsed, is already
// what Time.MarshalJSON writes: UTC ("Z") and a fraction of at most nine
// digits without trailing zeros, so it is copied instead of formatted.
func canonicalTime(raw []byte) bool {
	const whole = len(`"2006-01-02T15:04:05Z"`)
	n := len(raw)
	if n < whole || n > whole+10 || raw[11] != 'T' || raw[n-2] != 'Z' {
		return false
	}
	if n == whole {
		return true
	}
	return n > whole+1 && raw[20] == '.' && raw[n-3] != '0'
}

// plainString reads a string without escapes or non-ASCII bytes (and
// without what HTML escaping would change) and returns its content.
func (s *scanner) plainString() ([]byte, bool) {
	raw, plain, ok := s.str()
	if !ok || !plain {
		return nil, false
	}
	return raw, true
}

// str reads a JSON string. raw is its content with quotes; plain reports
// that encoding it again gives the same bytes (printable ASCII, no
// backslash, and no <, >, & when HTML-escaping), in which case raw holds
// only the content.
func (s *scanner) str() (raw []byte, plain, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	start := s.i
	s.i++
	plain = true
	tab := &plainTab
	if s.escape {
		tab = &plainHTMLTab
	}
	for s.i < len(s.src) {
		c := s.src[s.i]
		if tab[c] {
			s.i++
			continue
		}
		switch {
		case c == '"':
			s.i++
			if plain {
				return s.src[start+1 : s.i-1], true, true
			}
			return s.src[start:s.i], false, true
		case c == '\\':
			plain = false
			if !s.escapeSeq() {
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		default:
			plain = false
			s.i++
		}
	}
	return nil, false, false
}

// escapeSeq validates the escape at s.i (a backslash) and moves past it.
func (s *scanner) escapeSeq() bool {
	if s.i+1 >= len(s.src) {
		return false
	}
	switch s.src[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return true
	case 'u':
		if s.i+6 > len(s.src) {
			return false
		}
		for _, h := range s.src[s.i+2 : s.i+6] {
			if !isHex(h) {
				return false
			}
		}
		s.i += 6
		return true
	}
	return false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// skip validates a value the relay does not use.
func (s *scanner) skip() bool {
	b, ok := s.value(s.l.scratch[:0])
	s.l.scratch = b[:0]
	return ok
}
