package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"outpost/relay/wire"
)

// refEvents is the encoding/json path ScanEvents must match: decode the
// batch, stamp the agent, encode each record.
func refEvents(body []byte, agent string) ([]byte, []uint64, error) {
	var b wire.EventBatch
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, nil, err
	}
	var out []byte
	var seqs []uint64
	for _, r := range b.Records {
		r.Agent = agent
		l, err := json.Marshal(r)
		if err != nil {
			return nil, nil, err
		}
		out = append(append(out, l...), '\n')
		seqs = append(seqs, r.Seq)
	}
	return out, seqs, nil
}

// refIngest is the collector's encoding/json path: one value and nothing
// after it, every record with an agent, encoded without HTML escaping.
func refIngest(body []byte) ([]byte, error) {
	var b wire.IngestBatch
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&b); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, r := range b.Records {
		if r.Agent == "" {
			return nil, errors.New("empty agent")
		}
		if err := enc.Encode(&r); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// checkScan compares both scanners with encoding/json on body: whatever a
// scanner accepts, encoding/json accepts and encodes to the same bytes.
func checkScan(t *testing.T, body []byte) (events, ingest bool) {
	t.Helper()
	var l wire.Lines
	if wire.ScanEvents(&l, body, "ag_<1>") {
		events = true
		want, seqs, err := refEvents(body, "ag_<1>")
		if err != nil {
			t.Fatalf("ScanEvents accepted %q; encoding/json: %v", body, err)
		}
		if !bytes.Equal(l.Buf, want) {
			t.Fatalf("ScanEvents(%q):\ngot  %s\nwant %s", body, l.Buf, want)
		}
		if fmt.Sprint(l.Seqs) != fmt.Sprint(seqs) || l.Len() != len(seqs) {
			t.Fatalf("ScanEvents(%q): seqs got %v, want %v", body, l.Seqs, seqs)
		}
		for i := range l.Len() {
			if bytes.IndexByte(l.Line(i), '\n') >= 0 {
				t.Fatalf("line %d holds a newline: %q", i, l.Line(i))
			}
		}
	}
	if wire.ScanIngest(&l, body) {
		ingest = true
		want, err := refIngest(body)
		if err != nil {
			t.Fatalf("ScanIngest accepted %q; encoding/json: %v", body, err)
		}
		if !bytes.Equal(l.Buf, want) {
			t.Fatalf("ScanIngest(%q):\ngot  %s\nwant %s", body, l.Buf, want)
		}
		var b wire.IngestBatch
		json.Unmarshal(body, &b)
		for i, r := range b.Records {
			if string(l.Agent[i]) != r.Agent || l.Seqs[i] != r.Seq {
				t.Fatalf("record %d: got %s/%d, want %s/%d", i, l.Agent[i], l.Seqs[i], r.Agent, r.Seq)
			}
		}
		if l.Relay != b.Relay {
			t.Fatalf("relay: got %q, want %q", l.Relay, b.Relay)
		}
	}
	return events, ingest
}

func TestScanMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name           string
		body           string
		events, ingest bool // whether the one-pass scanner takes it
	}{
		{"canonical", `{"records":[{"seq":1,"time":"2026-01-01T00:00:00Z","type":"alert","data":{"a":1}}]}`, true, false},
		{"ingest canonical", `{"relay":"r1","records":[{"agent":"ag_1","seq":9,"time":"2026-01-01T00:00:00Z","type":"x"}]}`, true, true},
		{"fields reordered, spaces", " {\n\"records\" : [ { \"data\" : [ 1 , 2.5e-3 , {\"x\" : null} ] , \"type\":\"t\", \"seq\" : 7 } , {\"seq\":8} ] } \n", true, false},
		{"agent in body replaced", `{"records":[{"agent":"forged","seq":1}]}`, true, true},
		{"unknown fields dropped", `{"v":[1,{"a":"b"}],"records":[{"seq":1,"extra":"x","data":"y"}],"z":true}`, true, false},
		{"keys fold case", `{"RECORDS":[{"Seq":2,"TYPE":"a","Data":false}]}`, true, false},
		{"time with offset and fraction", `{"records":[{"seq":1,"time":"2026-03-01T10:20:30.120000+02:00"},{"seq":2,"time":"2026-03-01T10:20:30+00:00"}]}`, true, false},
		{"html and line separators in data", `{"records":[{"seq":1,"data":{"<k>":"a&b \u2028 ` + "\u2028\u2029é" + `"}}]}`, true, false},
		{"html in type", `{"records":[{"seq":1,"type":"a<b"}]}`, true, false},
		{"escapes in type", `{"records":[{"seq":1,"type":"a\"b\u00e9\n"}]}`, true, false},
		{"non-ASCII type", `{"records":[{"seq":1,"type":"腾讯云"}]}`, true, false},
		{"invalid UTF-8 in data", "{\"records\":[{\"seq\":1,\"data\":\"\xff\xfe\"}]}", true, false},
		{"data null", `{"records":[{"seq":1,"data":null}]}`, true, false},
		{"empty record", `{"records":[{}]}`, true, false},
		{"empty records", `{"records":[]}`, true, true},
		{"escaped key", `{"records":[{"s\u0065q":1}]}`, false, false},
		{"non-ASCII key folds", `{"recordſ":[{"seq":1}]}`, false, false},
		{"duplicate records", `{"records":[{"seq":1,"type":"a"}],"records":[{"seq":2}]}`, false, false},
		{"duplicate field", `{"records":[{"seq":1,"seq":2}]}`, false, false},
		{"null seq", `{"records":[{"seq":null}]}`, false, false},
		{"null record", `{"records":[null]}`, false, false},
		{"null batch", `null`, false, false},
		{"seq string", `{"records":[{"seq":"1"}]}`, false, false},
		{"seq float", `{"records":[{"seq":1.0}]}`, false, false},
		{"seq negative", `{"records":[{"seq":-1}]}`, false, false},
		{"seq overflow", `{"records":[{"seq":18446744073709551616}]}`, false, false},
		{"bad time", `{"records":[{"seq":1,"time":"yesterday"}]}`, false, false},
		{"bad data", `{"records":[{"seq":1,"data":{"a":}}]}`, false, false},
		{"bad escape", `{"records":[{"seq":1,"data":"\x"}]}`, false, false},
		{"raw control byte", "{\"records\":[{\"seq\":1,\"type\":\"a\tb\"}]}", false, false},
		{"trailing data", `{"records":[{"seq":1}]} {}`, false, false},
		{"truncated", `{"records":[{"seq":1}`, false, false},
		{"ingest empty agent", `{"records":[{"agent":"","seq":1}]}`, true, false},
		{"leading zero", `{"records":[{"seq":1,"data":01}]}`, false, false},
		{"deep data", `{"records":[{"seq":1,"data":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `}]}`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, in := checkScan(t, []byte(tt.body))
			if ev != tt.events || in != tt.ingest {
				t.Errorf("taken by ScanEvents, ScanIngest: got %v, %v, want %v, %v", ev, in, tt.events, tt.ingest)
			}
		})
	}
}

// FuzzScan: on any body, what the one-pass scanners accept encoding/json
// accepts too, and they encode it to the same bytes.
func FuzzScan(f *testing.F) {
	f.Add([]byte(`{"records":[{"seq":1,"time":"2026-01-01T00:00:00Z","type":"alert","data":{"a":1}}]}`))
	f.Add([]byte(`{"relay":"1","records":[{"agent":"ag_1","seq":9,"data":["<&>",1e5,-0.5,true,null]}]}`))
	f.Add([]byte(`{"records":[{"seq":2,"time":"2026-03-01T10:20:30.5+02:00","type":"\u00e9"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkScan(t, body) })
}

func BenchmarkScanEvents(b *testing.B) {
	body := sampleBatch(500)
	b.SetBytes(int64(len(body)))
	var l wire.Lines
	for b.Loop() {
		if !wire.ScanEvents(&l, body, "ag_0123456789") {
			b.Fatal("not taken")
		}
	}
}

// BenchmarkDecodeEvents is the encoding/json path ScanEvents replaces.
func BenchmarkDecodeEvents(b *testing.B) {
	body := sampleBatch(500)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := refEvents(body, "ag_0123456789"); err != nil {
			b.Fatal(err)
		}
	}
}

// sampleBatch is n records of about 200 bytes, as an agent sends them.
func sampleBatch(n int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"records":[`)
	for s := 1; s <= n; s++ {
		if s > 1 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"seq":%d,"time":"2026-05-01T12:00:00.123456Z","type":"process","data":{"pid":%d,"cmd":"/usr/sbin/sshd -D","user":"root","pad":"%s"}}`, s, s, strings.Repeat("x", 70))
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}
