package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDamage: n records are spooled, the first k committed, then len(dmg)
// bytes at off are overwritten (anywhere in the segment: forwarded data,
// the cursor's frame, the tail). After reopening, every record after the
// cursor whose frame was not touched is delivered, in order; no record
// before the cursor comes back (the cursor is kept); nothing but original
// records or bytes from the damaged range is returned.
func FuzzDamage(f *testing.F) {
	f.Add(uint8(20), uint8(5), uint16(30), []byte{0xff})
	f.Add(uint8(20), uint8(0), uint16(0), []byte{0, 0, 0, 0})
	f.Add(uint8(10), uint8(10), uint16(500), []byte("garbage"))
	f.Add(uint8(30), uint8(12), uint16(12*frameLen-2), bytes.Repeat([]byte{0xF5, 0x0D, 0xA7, 0xE1}, 8))
	f.Fuzz(func(t *testing.T, n, k uint8, off uint16, dmg []byte) {
		nrec := int(n%40) + 1
		commit := int(k) % (nrec + 1)
		dir := t.TempDir()
		o := Options{SegmentBytes: 1 << 20}
		s, err := Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		recs := make([][]byte, nrec)
		for i := range recs {
			recs[i] = payload(i, recSize)
		}
		if err := s.Append(recs...); err != nil { // one fsync
			t.Fatal(err)
		}
		if commit > 0 {
			es, err := s.Peek(commit, 0)
			if err != nil || len(es) != commit {
				t.Fatalf("Peek: %d, %v", len(es), err)
			}
			if err := s.Commit(es[commit-1].Pos); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		path := segPath(dir, 1)
		seg, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		start := int(off) % (len(seg) + 1)
		dmg = dmg[:min(len(dmg), 4*frameLen)]
		end := start + len(dmg)
		if end > len(seg) {
			seg = append(seg, make([]byte, end-len(seg))...)
		}
		copy(seg[start:], dmg)
		if err := os.WriteFile(path, seg, 0o600); err != nil {
			t.Fatal(err)
		}

		s, err = Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		es, err := s.Peek(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, e := range es {
			if p := e.Payload; len(p) == recSize {
				if i, ok := original(p); ok {
					got = append(got, i)
					continue
				}
			}
			if !bytes.Contains(seg[start:end], e.Payload) && !bytes.Contains(dmg, e.Payload) {
				t.Fatalf("returned a record that is neither original nor from the damage: %q", e.Payload)
			}
		}
		touched := func(i int) bool { return i*frameLen < end && start < (i+1)*frameLen }
		at := 0
		for _, i := range got {
			if i < commit {
				t.Fatalf("record %d before the cursor (%d) delivered again: got %v", i, commit, got)
			}
		}
		for i := commit; i < nrec; i++ {
			for at < len(got) && got[at] < i {
				at++
			}
			if touched(i) {
				continue
			}
			if at >= len(got) || got[at] != i {
				t.Fatalf("intact record %d after the cursor lost: got %v (damage %d..%d, cursor %d)", i, got, start, end, commit)
			}
		}
		// The spool stays writable and readable behind the damage.
		if err := s.Append(payload(999, recSize)); err != nil {
			t.Fatal(err)
		}
		es, err = s.Peek(0, 0)
		if err != nil || len(es) == 0 {
			t.Fatalf("Peek after Append: %d records, %v", len(es), err)
		}
		if i, ok := original(es[len(es)-1].Payload); !ok || i != 999 {
			t.Fatalf("last record after Append: got %q, want record 999", es[len(es)-1].Payload)
		}
	})
}

// original reports which payload(i, recSize) p is.
func original(p []byte) (int, bool) {
	n := 0
	for _, c := range p[:8] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, bytes.Equal(p, payload(n, recSize))
}

// FuzzOpen: Open survives any segment and cursor file, the records it
// returns stay the same across a reopen, and new Appends are delivered.
func FuzzOpen(f *testing.F) {
	var valid []byte
	for i := range 3 {
		valid = appendFrame(valid, payload(i, recSize))
	}
	f.Add(valid, []byte(nil))
	f.Add(valid[:len(valid)-7], []byte("SPC1"))
	f.Add(append(appendFrame(nil, []byte("x")), 0, 0, 0, 0, 0, 0, 0, 0), []byte(nil))
	f.Fuzz(func(t *testing.T, seg, cursor []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(segPath(dir, 1), seg, 0o600); err != nil {
			t.Fatal(err)
		}
		if cursor != nil {
			if err := os.WriteFile(filepath.Join(dir, cursorName), cursor, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		o := Options{SegmentBytes: 1 << 20}
		s, err := Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		first, err := s.Peek(0, 0)
		if err != nil {
			s.Close()
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		again, err := s.Peek(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(first) {
			t.Fatalf("records after a reopen: got %d, want %d", len(again), len(first))
		}
		for i := range first {
			if !bytes.Equal(first[i].Payload, again[i].Payload) {
				t.Fatalf("record %d changed across a reopen", i)
			}
		}
		if err := s.Append([]byte("new")); err != nil {
			t.Fatal(err)
		}
		es, err := s.Peek(0, 0)
		if err != nil || len(es) != len(first)+1 || string(es[len(es)-1].Payload) != "new" {
			t.Fatalf("after Append: %d records (want %d), %v", len(es), len(first)+1, err)
		}
	})
}
