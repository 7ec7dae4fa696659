package collector

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"outpost/relay/wire"
)

// framed is recs as the relay forwards them: each json.Marshal-ed and
// framed; lines is what the segment must hold for them.
func framed(t *testing.T, recs []wire.Record) (body, lines []byte) {
	t.Helper()
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		body = wire.AppendRecordFrame(body, b)
		lines = append(append(lines, b...), '\n')
	}
	return body, lines
}

// segments is the content of every segment in dir, in order.
func segments(t *testing.T, dir string) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "ingest-*.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	var out []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

var framesHdr = map[string]string{"Content-Type": wire.ContentTypeRecords}

func postFrames(t *testing.T, url string, body []byte) (int, wire.IngestAck, wire.Error) {
	t.Helper()
	code, resp := post(t, url+wire.PathIngest, body, framesHdr)
	var ack wire.IngestAck
	var e wire.Error
	if code == http.StatusOK {
		if err := json.Unmarshal(resp, &ack); err != nil {
			t.Fatalf("bad ack %q: %v", resp, err)
		}
	} else {
		json.Unmarshal(resp, &e)
	}
	return code, ack, e
}

// A framed batch is stored as it came, byte for byte, and counted (with
// its duplicates) as a JSON batch is.
func TestIngestFrames(t *testing.T) {
	dir := t.TempDir()
	c, srv := start(t, dir)
	recs := append(records("a", 1, 2, 3), records("b", 1)...)
	recs[1].Data = json.RawMessage(`{"msg":"腾讯云 \u2028 \"q\" \\ <x&y>"}`)
	body, lines := framed(t, recs)

	code, ack, e := postFrames(t, srv.URL, body)
	if code != http.StatusOK || ack != (wire.IngestAck{Accepted: 4}) {
		t.Fatalf("got %d %+v %+v, want 200 {Accepted:4}", code, ack, e)
	}
	if got, want := segments(t, dir), lines; !bytes.Equal(got, want) {
		t.Fatalf("segments:\ngot  %s\nwant %s", got, want)
	}
	if got := c.Received("a"); got != 3 {
		t.Errorf("Received(a): got %d, want 3", got)
	}

	// The same batch again plus one new record: three duplicates.
	again, more := framed(t, append(records("a", 1, 2, 4), records("b", 1)...))
	code, ack, e = postFrames(t, srv.URL, again)
	if code != http.StatusOK || ack != (wire.IngestAck{Accepted: 1, Duplicates: 3}) {
		t.Fatalf("resend: got %d %+v %+v, want 200 {Accepted:1 Duplicates:3}", code, ack, e)
	}
	newLine := bytes.SplitAfter(more, []byte("\n"))[2]
	if got, want := segments(t, dir), append(slices.Clone(lines), newLine...); !bytes.Equal(got, want) {
		t.Fatalf("segments after resend:\ngot  %s\nwant %s", got, want)
	}
	if got := getStats(t, srv).Duplicates; got != 3 {
		t.Errorf("stats duplicates: got %d, want 3", got)
	}

	// JSON batches still work beside frames (and count frames' records).
	if ack := ingest(t, srv, records("a", 4, 5)); ack != (wire.IngestAck{Accepted: 1, Duplicates: 1}) {
		t.Errorf("JSON batch: got %+v, want {Accepted:1 Duplicates:1}", ack)
	}
	if got := c.Received("a"); got != 5 {
		t.Errorf("Received(a): got %d, want 5", got)
	}
	stored(t, dir) // every line a Record
}

// A damaged framed batch is refused whole (400 bad_record) and nothing of
// it is stored.
func TestIngestFramesBad(t *testing.T) {
	good, _ := framed(t, records("a", 1, 2))
	crc := slices.Clone(good)
	crc[len(crc)-2] ^= 0x20
	head := wire.AppendRecordFrame(slices.Clone(good), []byte(`{"seq":3,"agent":"a","type":"x"}`))
	seq0 := wire.AppendRecordFrame(slices.Clone(good), []byte(`{"agent":"a","seq":0,"type":"x"}`))
	tests := []struct {
		name string
		body []byte
	}{
		{"bad CRC", crc},
		{"bad head", head},
		{"seq 0", seq0},
		{"cut frame", good[:len(good)-7]},
		{"JSON sent as frames", []byte(`{"records":[{"agent":"a","seq":1}]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c, srv := start(t, dir)
			code, _, e := postFrames(t, srv.URL, tt.body)
			if code != http.StatusBadRequest || e.Code != wire.CodeBadRecord || e.Message == "" {
				t.Fatalf("got %d %+v, want 400 %q with a reason", code, e, wire.CodeBadRecord)
			}
			if got := c.Received("a"); got != 0 {
				t.Errorf("Received(a): got %d, want 0", got)
			}
			if got := segments(t, dir); len(got) != 0 {
				t.Errorf("segments: got %q, want nothing", got)
			}
		})
	}
}
