package wire

import (
	"encoding/json"
	"time"
)

// Lines is what ScanEvents and ScanIngest produce: the batch's records,
// each encoded exactly as encoding/json encodes a Record and followed by a
// newline, in Buf. Reuse a Lines between calls to keep its buffers.
type Lines struct {
	Buf   []byte
	Ends  []int    // record i is Buf[Ends[i-1]:Ends[i]] (Ends[-1] = 0), newline included
	Seqs  []uint64 // record i's seq (0 when absent)
	Agent [][]byte // ScanIngest: record i's agent, a sub-slice of Buf
	Relay string   // ScanIngest: the batch's relay field

	data    []byte // the current record's compacted data value
	scratch []byte // values skipped over
}

// Line returns record i without its newline.
func (l *Lines) Line(i int) []byte {
	start := 0
	if i > 0 {
		start = l.Ends[i-1]
	}
	return l.Buf[start : l.Ends[i]-1]
}

// Len is the number of records.
func (l *Lines) Len() int { return len(l.Ends) }

func (l *Lines) reset() {
	l.Buf, l.Ends, l.Seqs, l.Agent, l.Relay = l.Buf[:0], l.Ends[:0], l.Seqs[:0], l.Agent[:0], ""
}

// ScanEvents reads an EventBatch body in one pass: it validates it, stamps
// every record with agent and encodes it as json.Marshal(Record) would. It
// reports false for anything it does not handle exactly like
// json.Unmarshal + json.Marshal (malformed input, but also escaped or
// non-ASCII keys, duplicate keys, null fields, a non-object record): the
// caller then takes the encoding/json path, which gives the verdict.
func ScanEvents(l *Lines, body []byte, agent string) bool {
	l.reset()
	var stamp []byte
	if agent != "" {
		a, _ := json.Marshal(agent)
		stamp = append(append([]byte(`"agent":`), a...), ',')
	}
	s := scanner{src: body, l: l, stamp: stamp, escape: true}
	return s.batch(false)
}

// ScanIngest is ScanEvents for an IngestBatch as the collector stores it
// (json.Encoder with SetEscapeHTML(false)): the agent comes from each
// record and is reported in Agent; a batch whose agent strings hold
// escapes or non-ASCII bytes is left to encoding/json (false).
func ScanIngest(l *Lines, body []byte) bool {
	l.reset()
	s := scanner{src: body, l: l, ingest: true}
	return s.batch(true)
}

type scanner struct {
	src    []byte
	i      int
	l      *Lines
	stamp  []byte // `"agent":"ID",` or nil
	escape bool   // HTML-escape as json.Marshal does
	ingest bool
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scanner) ws() {
	for s.i < len(s.src) && isSpace(s.src[s.i]) {
		s.i++
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.src) {
		return 0
	}
	return s.src[s.i]
}

// key reads `"name":` and returns name lower-cased; ok is false for keys
// with escapes or non-ASCII bytes (encoding/json folds those by Unicode
// rules) and for keys too long to be a field.
func (s *scanner) key() (k [8]byte, n int, ok bool) {
	if s.peek() != '"' {
		return k, 0, false
	}
	s.i++
	for s.i < len(s.src) {
		c := s.src[s.i]
		s.i++
		switch {
		case c == '"':
			if s.peek() != ':' {
				return k, 0, false
			}
			s.i++
			return k, n, true
		case c == '\\' || c >= 0x80 || c < 0x20:
			return k, 0, false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if n < len(k) {
			k[n] = c
		}
		n++
	}
	return k, 0, false
}

func is(k [8]byte, n int, name string) bool { return n == len(name) && string(k[:n]) == name }

// batch reads {"records":[...], ...} with nothing but space after it.
func (s *scanner) batch(ingest bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	seenRecs, seenRelay := false, false
	if s.peek() == '}' {
		return false // no records: encoding/json answers that
	}
	for more := true; more; {
		k, n, ok := s.key()
		switch {
		case !ok:
			return false
		case is(k, n, "records"):
			if seenRecs || !s.records() {
				return false
			}
			seenRecs = true
		case ingest && is(k, n, "relay"):
			r, plain := s.plainString()
			if seenRelay || !plain {
				return false
			}
			s.l.Relay, seenRelay = string(r), true
		default:
			if !s.skip() {
				return false
			}
		}
		if more, ok = s.sep('}'); !ok {
			return false
		}
	}
	s.ws()
	return seenRecs && s.i == len(s.src)
}

// records reads the array of records.
func (s *scanner) records() bool {
	if s.peek() != '[' {
		return false
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		if !s.record() {
			return false
		}
		if more, ok := s.sep(']'); !more {
			return ok
		}
	}
}

// sep reads what follows a member or an element: ',' (more to come) or
// end (the last); ok is false for anything else.
func (s *scanner) sep(end byte) (more, ok bool) {
	switch s.peek() {
	case ',':
		s.i++
		return true, true
	case end:
		s.i++
		return false, true
	}
	return false, false
}

// field bits, so that a repeated field goes to encoding/json.
const (
	fAgent = 1 << iota
	fSeq
	fTime
	fType
	fData
)

// fieldBit is the bit of a record's known field, 0 for any other key
// (small enough to be inlined into record).
func fieldBit(k [8]byte, n int) int {
	if n > len(k) {
		return 0
	}
	switch string(k[:n]) {
	case "agent":
		return fAgent
	case "seq":
		return fSeq
	case "time":
		return fTime
	case "type":
		return fType
	case "data":
		return fData
	}
	return 0
}

// record reads one record object and appends its encoding.
func (s *scanner) record() bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	var (
		seen         int
		seq          []byte
		tm           time.Time
		tmRaw        []byte
		typ, agent   []byte
		typPlain     bool
		hasData      bool
		dataBuf      = s.l.data[:0]
		agentPresent bool
		seqVal       uint64
		empty        = s.peek() == '}'
	)
	if empty {
		s.i++
	}
	for more := !empty; more; {
		k, n, ok := s.key()
		if !ok {
			return false
		}
		bit := fieldBit(k, n)
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		switch bit {
		case fAgent:
			a, plain := s.plainString()
			if !plain || s.ingest && len(a) == 0 {
				return false
			}
			agent, agentPresent = a, true
		case fSeq:
			seq, seqVal, ok = s.uint()
		case fTime:
			tmRaw, ok = s.time(&tm)
		case fType:
			typ, typPlain, ok = s.str()
		case fData:
			hasData = true
			var d []byte
			d, ok = s.value(dataBuf)
			dataBuf = d
		default:
			ok = s.skip()
		}
		if !ok {
			return false
		}
		if more, ok = s.sep('}'); !ok {
			return false
		}
	}
	s.l.data = dataBuf
	if s.ingest && !agentPresent {
		return false
	}
	return s.emit(agent, seq, seqVal, tm, tmRaw, typ, typPlain, hasData)
}

// emit appends the record as json.Marshal(Record) writes it.
func (s *scanner) emit(agent, seq []byte, seqVal uint64, tm time.Time, tmRaw []byte, typ []byte, typPlain, hasData bool) bool {
	b := append(s.l.Buf, '{')
	agentAt := -1
	if s.ingest {
		b = append(b, `"agent":"`...)
		agentAt = len(b)
		b = append(append(b, agent...), `",`...)
	} else {
		b = append(b, s.stamp...)
	}
	b = append(b, `"seq":`...)
	if seq == nil {
		seq = []byte{'0'}
	}
	b = append(b, seq...)
	b = append(b, `,"time":`...)
	if canonicalTime(tmRaw) {
		b = append(b, tmRaw...)
	} else {
		b = append(b, '"')
		var err error
		if b, err = tm.AppendText(b); err != nil {
			return false
		}
		b = append(b, '"')
	}
	b = append(b, `,"type":`...)
	switch {
	case typ == nil:
		b = append(b, `""`...)
	case typPlain:
		b = append(append(append(b, '"'), typ...), '"')
	default:
		var v string
		if json.Unmarshal(typ, &v) != nil {
			return false
		}
		b = appendJSONString(b, v, s.escape)
	}
	if hasData {
		b = append(append(b, `,"data":`...), s.l.data...)
	}
	b = append(b, '}', '\n')
	s.l.Buf = b
	s.l.Ends = append(s.l.Ends, len(b))
	s.l.Seqs = append(s.l.Seqs, seqVal)
	if s.ingest {
		s.l.Agent = append(s.l.Agent, b[agentAt:agentAt+len(agent)])
	}
	return true
}

// appendJSONString encodes v as encoding/json does, with or without HTML
// escaping.
func appendJSONString(b []byte, v string, escape bool) []byte {
	if escape {
		e, _ := json.Marshal(v)
		return append(b, e...)
	}
	var w jsonBuf
	enc := json.NewEncoder(&w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return append(b, w[:len(w)-1]...) // without Encode's newline
}

type jsonBuf []byte

func (w *jsonBuf) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }
