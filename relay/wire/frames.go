package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
)

// ContentTypeRecords is the relay -> collector ingest body in record
// frames: for each record, its length (uvarint), the CRC-32C of its bytes
// (4 bytes, little endian) and the record, a JSON object the relay
// encoded itself when it took the event in (`{"agent":"ID","seq":N,...}`,
// as json.Marshal writes a Record). The relay validated each record once,
// on intake; the collector checks the CRC, the record's agent/seq prefix
// and that it holds no newline, and stores it as it came, instead of
// parsing the JSON a second time. A collector that does not know the type
// answers 4xx and the relay falls back to the JSON IngestBatch.
const ContentTypeRecords = "application/x-outpost-records"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// IsRecordFrames reports whether a Content-Type names record frames; the
// collector and the management host's per-record account check both ask
// it, so they never disagree on how a body is read.
func IsRecordFrames(contentType string) bool {
	ct, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(ct), ContentTypeRecords)
}

// AppendRecordFrame appends the frame of one record to b.
func AppendRecordFrame(b, rec []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(rec)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(rec, castagnoli))
	return append(b, rec...)
}

// RecordFramesSize is the length of the frames of records of these sizes.
func RecordFramesSize(sizes ...int) int {
	n := 0
	for _, s := range sizes {
		n += uvarintLen(uint64(s)) + 4 + s
	}
	return n
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// ScanRecordFrames reads a ContentTypeRecords body into l as ScanIngest
// would (each record followed by a newline in Buf, its seq in Seqs and its
// agent in Agent), or says what is wrong with the first bad frame.
func ScanRecordFrames(l *Lines, body []byte) error {
	l.reset()
	i := 0
	return EachRecordFrame(body, func(rec []byte) error {
		agent, seq, ok := recordHead(rec)
		if !ok {
			return fmt.Errorf("record %d: not a record the relay encoded (want {\"agent\":\"ID\",\"seq\":N,...} on one line)", i)
		}
		i++
		at := len(l.Buf) + len(`{"agent":"`)
		l.Buf = append(append(l.Buf, rec...), '\n')
		l.Ends = append(l.Ends, len(l.Buf))
		l.Seqs = append(l.Seqs, seq)
		l.Agent = append(l.Agent, l.Buf[at:at+len(agent)])
		return nil
	})
}

// EachRecordFrame calls fn with each record of a ContentTypeRecords body
// whose CRC matches, and stops at the first bad frame or error of fn.
func EachRecordFrame(body []byte, fn func(rec []byte) error) error {
	for i := 0; len(body) > 0; i++ {
		n, k := binary.Uvarint(body)
		if k <= 0 || k != uvarintLen(n) || n > uint64(len(body)) {
			return fmt.Errorf("frame %d: bad length", i) // unreadable or not minimal: one encoding per body
		}
		body = body[k:]
		if uint64(len(body)) < 4+n {
			return fmt.Errorf("frame %d: cut short (%d of %d bytes)", i, max(len(body)-4, 0), n)
		}
		sum, rec := binary.LittleEndian.Uint32(body), body[4:4+n]
		body = body[4+n:]
		if crc32.Checksum(rec, castagnoli) != sum {
			return fmt.Errorf("frame %d: CRC-32C mismatch (damaged in transit)", i)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// recordHead reads the agent and seq a relay-encoded record starts with;
// the agent must be plain (no escapes, quotes or control bytes) and seq
// positive, the record one JSON object on one line.
func recordHead(rec []byte) (agent []byte, seq uint64, ok bool) {
	const pre = `{"agent":"`
	if !bytes.HasPrefix(rec, []byte(pre)) || rec[len(rec)-1] != '}' || bytes.IndexByte(rec, '\n') >= 0 {
		return nil, 0, false
	}
	rest := rec[len(pre):]
	q := bytes.IndexByte(rest, '"')
	if q <= 0 {
		return nil, 0, false
	}
	agent = rest[:q]
	for _, c := range agent {
		if c < 0x20 || c == '\\' || c >= 0x7f {
			return nil, 0, false
		}
	}
	rest = rest[q+1:]
	const seqKey = `,"seq":`
	if !bytes.HasPrefix(rest, []byte(seqKey)) {
		return nil, 0, false
	}
	rest = rest[len(seqKey):]
	d := 0
	for ; d < len(rest) && rest[d] >= '0' && rest[d] <= '9'; d++ {
		if seq > (1<<64-1-9)/10 {
			return nil, 0, false // near the uint64 limit: the JSON path takes it
		}
		seq = seq*10 + uint64(rest[d]-'0')
	}
	if d == 0 || d >= len(rest) || rest[d] != ',' || rest[0] == '0' {
		return nil, 0, false
	}
	return agent, seq, true
}
