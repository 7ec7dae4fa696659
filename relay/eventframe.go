package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"outpost/relay/wire"
)

// batchError is a 400 about the batch's contents.
type batchError struct{ msg string }

func (e *batchError) Error() string { return e.msg }

// linesPool keeps the framing buffers of event requests.
var linesPool = sync.Pool{New: func() any { return new(wire.Lines) }}

// maxPooledLines: a buffer above this (a rare batch near maxEventBody) is
// not kept.
const maxPooledLines = 1 << 20

func putLines(l *wire.Lines) {
	if cap(l.Buf) <= maxPooledLines {
		linesPool.Put(l)
	}
}

// frameEvents turns an event batch body into the records the relay
// stores, stamped with agent: in one pass by wire.ScanEvents, or, for what
// it leaves aside (odd but valid input, and every malformed body, whose
// verdict it gives), by encoding/json. It returns errBadJSON or a
// *batchError.
func frameEvents(l *wire.Lines, body []byte, agent string) error {
	if !wire.ScanEvents(l, body, agent) {
		return eventsByJSON(l, body, agent)
	}
	if n := l.Len(); n == 0 || n > maxRecords {
		return &batchError{fmt.Sprintf("a batch holds 1 to %d records", maxRecords)}
	}
	for _, s := range l.Seqs {
		if s == 0 {
			return &batchError{"record sequence numbers start at 1"}
		}
	}
	return nil
}

// eventsByJSON is the encoding/json path: decode the batch, then stamp
// and encode each record.
func eventsByJSON(l *wire.Lines, body []byte, agent string) error {
	l.Buf, l.Ends, l.Seqs = l.Buf[:0], l.Ends[:0], l.Seqs[:0]
	var batch wire.EventBatch
	if err := json.Unmarshal(body, &batch); err != nil {
		return errBadJSON
	}
	if len(batch.Records) == 0 || len(batch.Records) > maxRecords {
		return &batchError{fmt.Sprintf("a batch holds 1 to %d records", maxRecords)}
	}
	for _, rec := range batch.Records {
		if rec.Seq == 0 {
			return &batchError{"record sequence numbers start at 1"}
		}
		rec.Agent = agent // never trusted from the body
		b, err := json.Marshal(rec)
		if err != nil {
			return &batchError{"record data is not valid JSON"}
		}
		l.Buf = append(append(l.Buf, b...), '\n')
		l.Ends = append(l.Ends, len(l.Buf))
		l.Seqs = append(l.Seqs, rec.Seq)
	}
	return nil
}

// isBatchError reports a *batchError.
func isBatchError(err error) (*batchError, bool) {
	var be *batchError
	return be, errors.As(err, &be)
}

// bodyPool keeps event request bodies' buffers.
var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

func putBody(b *[]byte) {
	if cap(*b) <= maxPooledLines {
		bodyPool.Put(b)
	}
}

// writeAck answers wire.EventAck{Acked: seqs} as writeJSON would, without
// reflection.
func writeAck(w http.ResponseWriter, seqs []uint64) {
	b := make([]byte, 0, 16+len(seqs)*8)
	b = append(b, `{"acked":[`...)
	for i, s := range seqs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, s, 10)
	}
	b = append(b, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
