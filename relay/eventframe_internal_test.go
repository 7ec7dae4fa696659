package relay

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"outpost/relay/wire"
)

// TestFrameEventsVerdicts: the one-pass framing gives every body the
// verdict and the bytes the encoding/json path gives.
func TestFrameEventsVerdicts(t *testing.T) {
	many := `{"records":[` + strings.Repeat(`{"seq":1},`, maxRecords) + `{"seq":2}]}`
	tests := []struct {
		name, body, want string // want: "" or the error
	}{
		{"good", `{"records":[{"seq":1,"type":"a","data":{"x":"<y>"}},{"seq":2}]}`, ""},
		{"malformed", `{"records":[{"seq":1}`, "malformed JSON"},
		{"wrong type", `{"records":[{"seq":"1"}]}`, "malformed JSON"},
		{"no records", `{"records":[]}`, "a batch holds 1 to 2000 records"},
		{"null", `null`, "a batch holds 1 to 2000 records"},
		{"too many", many, "a batch holds 1 to 2000 records"},
		{"seq zero", `{"records":[{"seq":1},{"seq":0}]}`, "record sequence numbers start at 1"},
		{"seq absent", `{"records":[{"type":"a"}]}`, "record sequence numbers start at 1"},
		{"syntax error after seq zero", `{"records":[{"seq":0},{"seq":}]}`, "malformed JSON"},
		{"escaped key (encoding/json path)", `{"records":[{"s\u0065q":3}]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fast, slow wire.Lines
			errFast := frameEvents(&fast, []byte(tt.body), "ag_1")
			errSlow := eventsByJSON(&slow, []byte(tt.body), "ag_1")
			if got := fmt.Sprint(errFast); tt.want == "" && errFast != nil || tt.want != "" && got != tt.want {
				t.Fatalf("frameEvents: got %v, want %q", errFast, tt.want)
			}
			if fmt.Sprint(errFast) != fmt.Sprint(errSlow) {
				t.Fatalf("frameEvents %v, encoding/json path %v", errFast, errSlow)
			}
			if errFast == nil && !bytes.Equal(fast.Buf, slow.Buf) {
				t.Fatalf("records:\ngot  %s\nwant %s", fast.Buf, slow.Buf)
			}
		})
	}
}

// BenchmarkFrameEvents: a batch of 500 records of ~200 bytes framed for
// storage, by the one-pass scanner and by the encoding/json path it
// replaced (still the fallback).
func BenchmarkFrameEvents(b *testing.B) {
	body := benchEventBody(500)
	for _, bc := range []struct {
		name  string
		frame func(*wire.Lines, []byte, string) error
	}{{"scan", frameEvents}, {"encoding_json", eventsByJSON}} {
		b.Run(bc.name, func(b *testing.B) {
			var l wire.Lines
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := bc.frame(&l, body, "ag_0123456789abcdef"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func benchEventBody(n int) []byte {
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
