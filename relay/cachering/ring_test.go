package cachering

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// rec is the numbered test record.
type rec struct {
	N   int    `json:"n"`
	Pad string `json:"pad"`
}

func line(n int) []byte {
	b, _ := json.Marshal(rec{N: n, Pad: strings.Repeat("x", 60+n%40)})
	return b
}

// onDisk is what a reader of the directory sees.
type onDisk struct {
	files []string // oldest first, live file last
	bytes int64
	nums  []int // record numbers in file order
}

// diskBytes sums the ring's file sizes without reading them.
func diskBytes(t *testing.T, dir, name string) (int64, int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	n := 0
	for _, e := range ents {
		if e.Name() != name && !strings.HasPrefix(e.Name(), name+".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
		n++
	}
	return total, n
}

// readDisk reads every file of the ring in order and checks it is NDJSON.
func readDisk(t *testing.T, dir, name string) onDisk {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var segs []int
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), name+".")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("unexpected file %s", e.Name())
		}
		segs = append(segs, n)
	}
	slices.Sort(segs)
	var d onDisk
	for _, n := range segs {
		d.files = append(d.files, fmt.Sprintf("%s.%06d", name, n))
	}
	d.files = append(d.files, name)
	for _, f := range d.files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		d.bytes += int64(len(b))
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("%s does not end with a newline", f)
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r rec
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: invalid line %q: %v", f, sc.Text(), err)
			}
			d.nums = append(d.nums, r.N)
		}
	}
	return d
}

// checkTail verifies the records on disk are exactly first..last in order.
func checkTail(t *testing.T, d onDisk, last int) (first int) {
	t.Helper()
	if len(d.nums) == 0 {
		t.Fatalf("no records on disk, want up to %d", last)
	}
	first = d.nums[0]
	for i, n := range d.nums {
		if got, want := n, first+i; got != want {
			t.Fatalf("record %d on disk: got n=%d, want %d", i, got, want)
		}
	}
	if got, want := d.nums[len(d.nums)-1], last; got != want {
		t.Fatalf("newest record: got %d, want %d", got, want)
	}
	return first
}

func TestRingCap(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		batch     int // lines per Append
		totalData int // bytes to write
	}{
		{"64KiB cap 8KiB segments", Options{MaxBytes: 64 << 10, SegmentBytes: 8 << 10}, 8, 1 << 20},
		{"default segment size is the 4KiB minimum", Options{MaxBytes: 64 << 10}, 4, 256 << 10},
		{"one line per append SyncEach", Options{MaxBytes: 16 << 10, SegmentBytes: 4 << 10, SyncEach: true}, 1, 128 << 10},
		{"custom file name", Options{MaxBytes: 32 << 10, SegmentBytes: 8 << 10, FileName: "siem.ndjson"}, 16, 256 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := Open(dir, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			name := tt.opts.FileName
			if name == "" {
				name = DefaultFileName
			}
			capB, seg := r.max, r.seg
			written, n := 0, 0
			for appends := 0; written < tt.totalData; appends++ {
				var lines [][]byte
				for range tt.batch {
					n++
					l := line(n)
					written += len(l) + 1
					lines = append(lines, l)
				}
				if err := r.Append(lines...); err != nil {
					t.Fatalf("append %d: %v", appends, err)
				}
				got, files := diskBytes(t, dir, name)
				if got > capB+seg {
					t.Fatalf("after append %d: %d bytes on disk, want <= cap+segment %d", appends, got, capB+seg)
				}
				st := r.Stats()
				if st.Bytes != got || st.Segments != files {
					t.Fatalf("after append %d: Stats %+v, disk %d bytes in %d files", appends, st, got, files)
				}
				if appends%50 == 0 {
					checkTail(t, readDisk(t, dir, name), n)
				}
			}
			d := readDisk(t, dir, name)
			first := checkTail(t, d, n)
			if first <= 1 {
				t.Fatalf("oldest record on disk is %d, want the oldest overwritten", first)
			}
			if d.bytes <= capB-seg {
				t.Fatalf("%d bytes kept, want more than cap-segment %d (too much deleted)", d.bytes, capB-seg)
			}
			st := r.Stats()
			if got, want := st.Dropped, int64(written)-d.bytes; got != want {
				t.Fatalf("Dropped: got %d, want %d", got, want)
			}
			if len(d.files) < 2 {
				t.Fatalf("got %d files, want rotation", len(d.files))
			}
		})
	}
}

func TestSetMax(t *testing.T) {
	tests := []struct {
		name    string
		newMax  int64
		wantErr error
		wantMax int64
	}{
		{"shrink trims", 16 << 10, nil, 16 << 10},
		{"shrink below live file", 4 << 10, nil, 4 << 10},
		{"grow", 128 << 10, nil, 128 << 10},
		{"zero is default", 0, nil, MaxCap},
		{"above 10GB rejected", MaxCap + 1, ErrCapTooLarge, 64 << 10},
		{"negative rejected", -5, errAny, 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := Open(dir, Options{MaxBytes: 64 << 10, SegmentBytes: 8 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			n := 0
			for range 100 { // ~120 KB: cap reached, live file ~half full
				n += 10
				var lines [][]byte
				for i := n - 9; i <= n; i++ {
					lines = append(lines, line(i))
				}
				if err := r.Append(lines...); err != nil {
					t.Fatal(err)
				}
			}
			err = r.SetMax(tt.newMax)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if got, want := r.max, tt.wantMax; got != want {
				t.Fatalf("cap: got %d, want %d", got, want)
			}
			got, _ := diskBytes(t, dir, DefaultFileName)
			if got > tt.wantMax {
				t.Fatalf("after SetMax: %d bytes on disk, want <= %d", got, tt.wantMax)
			}
			if st := r.Stats(); st.Bytes != got {
				t.Fatalf("Stats.Bytes %d, disk %d", st.Bytes, got)
			}
			for range 300 {
				n++
				if err := r.Append(line(n)); err != nil {
					t.Fatal(err)
				}
			}
			d := readDisk(t, dir, DefaultFileName)
			checkTail(t, d, n)
			if d.bytes > r.max+r.seg {
				t.Fatalf("%d bytes on disk, want <= %d", d.bytes, r.max+r.seg)
			}
		})
	}
}

func TestAppendRejects(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
	}{
		{"inner newline", []string{"{\"a\":\n1}"}},
		{"empty line", []string{""}},
		{"only a newline", []string{"\n"}},
		{"not JSON", []string{"hello"}},
		{"truncated JSON", []string{`{"a":`}},
		{"one bad line rejects the batch", []string{`{"a":1}`, `{"b":`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(t.TempDir(), Options{MaxBytes: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var lines [][]byte
			for _, l := range tt.lines {
				lines = append(lines, []byte(l))
			}
			if err := r.Append(lines...); !errors.Is(err, ErrInvalidLine) {
				t.Fatalf("got %v, want ErrInvalidLine", err)
			}
			if got, want := r.Stats().Bytes, int64(0); got != want {
				t.Fatalf("bytes written: got %d, want %d", got, want)
			}
		})
	}
}

func TestAppendNewline(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{MaxBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Append([]byte(`{"n":1}`+"\n"), []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, DefaultFileName))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "{\"n\":1}\n{\"n\":2}\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestConcurrentAppend(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{MaxBytes: 4 << 20, SegmentBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const writers, appends, per = 8, 60, 3
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for a := range appends {
				var lines [][]byte
				for i := range per {
					lines = append(lines, line(1+(w*appends+a)*per+i))
				}
				if err := r.Append(lines...); err != nil {
					errs <- err
					return
				}
				if a%20 == 0 {
					r.Stats()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	d := readDisk(t, dir, DefaultFileName)
	got := slices.Clone(d.nums)
	slices.Sort(got)
	if len(got) != writers*appends*per {
		t.Fatalf("got %d records, want %d", len(got), writers*appends*per)
	}
	for i, n := range got {
		if n != i+1 {
			t.Fatalf("record %d missing or duplicated", i+1)
		}
	}
	if len(d.files) < 3 {
		t.Fatalf("got %d files, want rotation under concurrency", len(d.files))
	}
}

func TestClosed(t *testing.T) {
	r, err := Open(t.TempDir(), Options{MaxBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"Append", func() error { return r.Append(line(1)) }},
		{"SetMax", func() error { return r.SetMax(1 << 20) }},
		{"Close", r.Close},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.call(); !errors.Is(got, ErrClosed) {
				t.Fatalf("got %v, want ErrClosed", got)
			}
		})
	}
}

// BenchmarkAppend: parallel Appends of one line (sync=1) and of a batch of
// 500 (~200 bytes each) as the relay writes them, checked by Append or
// taken as valid by AppendValid.
func BenchmarkAppend(b *testing.B) {
	pad := strings.Repeat("x", 150)
	batch := make([][]byte, 500)
	for i := range batch {
		batch[i] = []byte(fmt.Sprintf(`{"agent":"ag_1","seq":%d,"type":"t","data":"%s"}`, i+1, pad))
	}
	for _, bc := range []struct {
		name  string
		lines [][]byte
		valid bool
	}{
		{"line", [][]byte{line(1)}, false},
		{"batch500", batch, false},
		{"batch500/valid", batch, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := Open(b.TempDir(), Options{MaxBytes: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			n := 0
			for _, l := range bc.lines {
				n += len(l) + 1
			}
			b.SetBytes(int64(n))
			app := r.Append
			if bc.valid {
				app = r.AppendValid
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := app(bc.lines...); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
