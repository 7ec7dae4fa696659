package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

// frame joins the frames of recs.
func frame(recs ...string) []byte {
	var b []byte
	for _, r := range recs {
		b = AppendRecordFrame(b, []byte(r))
	}
	return b
}

// rec is a record as the relay encodes it (json.Marshal of a Record).
func rec(agent string, seq uint64, data string) string {
	b, err := json.Marshal(Record{Agent: agent, Seq: seq, Time: time.Unix(1700000000, 0).UTC(), Type: "alert", Data: json.RawMessage(data)})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestRecordFrames(t *testing.T) {
	good := []string{
		rec("ag_1", 1, `{"msg":"plain"}`),
		rec("ag_2", 7, `{"msg":"腾讯云 \u2028 \"q\" \\ <x&y>"}`),
		rec("ag_1", 18446744073709551, `null`),
		rec("ag-3.x_Z", 42, `[1,2.5e-3,{"k":"v"}]`),
	}
	body := frame(good...)
	crcBad := frame(good...)
	crcBad[len(crcBad)-3] ^= 0x01 // a byte of the last record
	tailCut := body[:len(body)-1]
	lenOnly := binary.AppendUvarint(nil, 10)

	const seqTail = `,"time":"2026-01-01T00:00:00Z","type":"t"}`
	tests := []struct {
		name    string
		body    []byte
		want    []string // records, on success
		wantErr string   // substring of the error; "" for success
	}{
		{"several records", body, good, ""},
		{"one record", frame(good[1]), good[1:2], ""},
		{"empty body", nil, nil, ""},
		{"bad uvarint", []byte{0x80}, nil, "frame 0: bad length"},
		{"uvarint overflow", bytes.Repeat([]byte{0xff}, 11), nil, "frame 0: bad length"},
		{"length past the body", append(frame(good[0]), binary.AppendUvarint(nil, 1<<20)...), nil, "frame 1: bad length"},
		{"cut short", tailCut, nil, "frame 3: cut short"},
		{"length but no CRC", append(frame(good[0]), lenOnly...), nil, "frame 1: bad length"},
		{"CRC mismatch", crcBad, nil, "frame 3: CRC-32C mismatch"},
		{"head not agent", frame(good[0], `{"seq":1,"agent":"a"}`), nil, "record 1: not a record"},
		{"head with space", frame(`{ "agent":"a","seq":1` + seqTail), nil, "record 0: not a record"},
		{"empty agent", frame(`{"agent":"","seq":1` + seqTail), nil, "record 0:"},
		{"agent with backslash", frame(`{"agent":"a\\u0022b","seq":1` + seqTail), nil, "record 0:"},
		{"agent with escaped quote", frame(`{"agent":"a\"b","seq":1` + seqTail), nil, "record 0:"},
		{"agent with control byte", frame("{\"agent\":\"a\x01b\",\"seq\":1" + seqTail), nil, "record 0:"},
		{"agent non-ASCII", frame(`{"agent":"é","seq":1` + seqTail), nil, "record 0:"},
		{"missing seq", frame(`{"agent":"a","time":"2026-01-01T00:00:00Z","seq":1}`), nil, "record 0:"},
		{"seq 0", frame(`{"agent":"a","seq":0` + seqTail), nil, "record 0:"},
		{"seq leading zero", frame(`{"agent":"a","seq":01` + seqTail), nil, "record 0:"},
		{"seq non-digit", frame(`{"agent":"a","seq":"1"` + seqTail), nil, "record 0:"},
		{"seq negative", frame(`{"agent":"a","seq":-1` + seqTail), nil, "record 0:"},
		{"seq float", frame(`{"agent":"a","seq":1.5` + seqTail), nil, "record 0:"},
		{"seq huge", frame(`{"agent":"a","seq":18446744073709551616` + seqTail), nil, "record 0:"},
		{"seq last field", frame(`{"agent":"a","seq":1}`), nil, "record 0:"},
		{"raw newline", frame(good[0], "{\"agent\":\"a\",\"seq\":1,\"type\":\"a\nb\"}"), nil, "record 1:"},
		{"not ending in brace", frame(`{"agent":"a","seq":1,"type":"t"} `), nil, "record 0:"},
		{"empty record", frame(""), nil, "record 0:"},
		{"second frame bad after good", frame(good[0], good[1], `{"agent":"a","seq":0,"x":1}`), nil, "record 2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Lines
			err := ScanRecordFrames(&l, tt.body)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got, want := l.Len(), len(tt.want); got != want {
				t.Fatalf("records: got %d, want %d", got, want)
			}
			for i, w := range tt.want {
				var r Record
				if err := json.Unmarshal([]byte(w), &r); err != nil {
					t.Fatal(err)
				}
				if got := string(l.Line(i)); got != w {
					t.Errorf("line %d: got %s, want %s", i, got, w)
				}
				if got := string(l.Agent[i]); got != r.Agent || l.Seqs[i] != r.Seq {
					t.Errorf("record %d: got %s/%d, want %s/%d", i, got, l.Seqs[i], r.Agent, r.Seq)
				}
			}
			if want := strings.Join(tt.want, "\n") + "\n"; len(tt.want) > 0 && string(l.Buf) != want {
				t.Errorf("Buf: got %q, want %q", l.Buf, want)
			}
			sizes := make([]int, len(tt.want))
			for i, w := range tt.want {
				sizes[i] = len(w)
			}
			if got, want := RecordFramesSize(sizes...), len(tt.body); got != want {
				t.Errorf("RecordFramesSize: got %d, want %d", got, want)
			}
		})
	}
}

// A Lines reused from a pool must not keep records of the scan before.
func TestRecordFramesReusedLines(t *testing.T) {
	var l Lines
	if err := ScanRecordFrames(&l, frame(rec("ag_old", 1, `{"a":1}`), rec("ag_old", 2, `{"a":2}`))); err != nil {
		t.Fatal(err)
	}
	want := rec("ag_new", 9, `{}`)
	if err := ScanRecordFrames(&l, frame(want)); err != nil {
		t.Fatal(err)
	}
	if l.Len() != 1 || string(l.Line(0)) != want || string(l.Agent[0]) != "ag_new" || l.Seqs[0] != 9 {
		t.Fatalf("got %d records %q %s/%v, want 1 record %s", l.Len(), l.Buf, l.Agent, l.Seqs, want)
	}
}

func TestIsRecordFrames(t *testing.T) {
	tests := []struct {
		ct   string
		want bool
	}{
		{ContentTypeRecords, true},
		{"Application/X-Outpost-Records", true},
		{"application/x-outpost-records; charset=binary", true},
		{"  application/x-outpost-records  ;v=1", true},
		{"application/json", false},
		{"application/json; x=application/x-outpost-records", false},
		{"", false},
		{"application/x-outpost-records-v2", false},
		{"application/x-outpost", false},
	}
	for _, tt := range tests {
		t.Run(tt.ct, func(t *testing.T) {
			if got := IsRecordFrames(tt.ct); got != tt.want {
				t.Errorf("IsRecordFrames(%q): got %v, want %v", tt.ct, got, tt.want)
			}
		})
	}
}

// FuzzScanRecordFrames: whatever ScanRecordFrames takes is a run of frames
// whose CRC matched, framing its lines again gives the body back, and the
// agent and seq it read are those encoding/json reads from a valid line.
func FuzzScanRecordFrames(f *testing.F) {
	good := []string{rec("ag_1", 1, `{"m":"腾讯云"}`), rec("ag_2", 99, `"a\nb"`)}
	f.Add(frame(good...))
	f.Add([]byte{})
	f.Add(frame(good[0])[:10])
	f.Add([]byte{0x80})
	crcBad := frame(good...)
	crcBad[len(crcBad)-2] ^= 0x40
	f.Add(crcBad)
	for _, r := range []string{`{"agent":"a","seq":0,"x":1}`, `{"agent":"a","seq":01,"x":1}`, `{"agent":"a\\b","seq":1,"x":1}`,
		"{\"agent\":\"a\",\"seq\":1,\"x\":\"\n\"}", `{"agent":"a","seq":1,"x":1} `, `{"seq":1,"agent":"a"}`, `{"agent":"a","seq":1,x}`} {
		f.Add(frame(r))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var l Lines
		if ScanRecordFrames(&l, body) != nil {
			return
		}
		var again []byte
		for i := range l.Len() {
			line := l.Line(i)
			again = AppendRecordFrame(again, line)
			if bytes.IndexByte(line, '\n') >= 0 || !bytes.HasPrefix(line, []byte(`{"agent":"`)) || line[len(line)-1] != '}' {
				t.Fatalf("line %d: got %q, want one relay-encoded record", i, line)
			}
			if l.Seqs[i] == 0 || len(l.Agent[i]) == 0 {
				t.Fatalf("record %d: got agent %q seq %d", i, l.Agent[i], l.Seqs[i])
			}
			var r struct {
				Agent string `json:"agent"`
				Seq   uint64 `json:"seq"`
			}
			if json.Valid(line) && json.Unmarshal(line, &r) == nil && (r.Agent != string(l.Agent[i]) || r.Seq != l.Seqs[i]) {
				t.Fatalf("record %d %q: got %s/%d, encoding/json reads %s/%d", i, line, l.Agent[i], l.Seqs[i], r.Agent, r.Seq)
			}
		}
		if !bytes.Equal(again, body) { // so every frame's CRC matched its record
			t.Fatalf("framing the lines again: got %x, want %x", again, body)
		}
	})
}

func BenchmarkScanRecordFrames(b *testing.B) {
	var body []byte
	pad := strings.Repeat("x", 120)
	for i := range 500 {
		body = AppendRecordFrame(body, []byte(rec(fmt.Sprintf("ag_%d", i%20), uint64(i+1), `{"msg":"`+pad+`"}`)))
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var l Lines
	for b.Loop() {
		if err := ScanRecordFrames(&l, body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRecordFramesOneEncoding: a length in more bytes than it needs is
// refused, so a body has one encoding (re-framing its records gives it
// back byte for byte).
func TestRecordFramesOneEncoding(t *testing.T) {
	r := `{"agent":"a","seq":1,"time":"2026-01-01T00:00:00Z","type":"t"}`
	b := []byte{byte(len(r)) | 0x80, 0x00} // len(r) < 128, in two bytes
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum([]byte(r), castagnoli))
	b = append(b, r...)
	var l Lines
	if err := ScanRecordFrames(&l, b); err == nil || !strings.Contains(err.Error(), "frame 0: bad length") {
		t.Errorf("non-minimal length: got %v, want frame 0: bad length", err)
	}
}
