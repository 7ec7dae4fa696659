package collector

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"outpost/relay/wire"
)

// FuzzLoad: New rebuilds its state from any segment contents (an older
// segment and the newest, which may end in a torn line). Every readable
// line is counted, what it could not read is reported by RecoveryDropped,
// a second New agrees, and ingest works afterwards: a new record is taken,
// one already loaded is a duplicate.
func FuzzLoad(f *testing.F) {
	good := []byte(`{"agent":"a1","seq":1,"time":"2023-11-14T22:13:20Z","type":"process"}` + "\n")
	f.Add(good, append(bytes.Clone(good), `{"agent":"a1","seq":2`...))
	f.Add([]byte("{not json\n\n"), []byte(`{"agent":"","seq":0}`+"\n"))
	f.Add([]byte(nil), bytes.Repeat([]byte("x"), 300<<10))
	f.Fuzz(func(t *testing.T, older, newest []byte) {
		dir := t.TempDir()
		for i, b := range [][]byte{older, newest} {
			if err := os.WriteFile(filepath.Join(dir, segName(uint64(i+1))), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		c, err := New(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		st := c.Stats()
		recs, lostB := c.RecoveryDropped()
		lines := int64(bytes.Count(older, []byte("\n")) + bytes.Count(newest, []byte("\n")))
		if len(older) > 0 && older[len(older)-1] != '\n' {
			lines++
		}
		if len(newest) > 0 && newest[len(newest)-1] != '\n' {
			lines++
		}
		if int64(st.Total)+recs > lines {
			t.Fatalf("loaded %d and dropped %d of %d lines", st.Total, recs, lines)
		}
		if lostB > int64(len(older)+len(newest)) {
			t.Fatalf("dropped %d bytes of %d", lostB, len(older)+len(newest))
		}
		ack, err := c.ingest([]wire.Record{{Agent: "fuzz-new", Seq: 1, Type: "t"}})
		if err != nil || ack.Accepted != 1 {
			t.Fatalf("ingest of a new record: %+v, %v", ack, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		c, err = New(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := c.Stats().Total; got != st.Total+1 {
			t.Fatalf("records after a reopen: got %d, want %d", got, st.Total+1)
		}
		ack, err = c.ingest([]wire.Record{{Agent: "fuzz-new", Seq: 1, Type: "t"}})
		if err != nil || ack.Duplicates != 1 {
			t.Fatalf("ingest of a stored record: %+v, %v, want a duplicate", ack, err)
		}
	})
}
