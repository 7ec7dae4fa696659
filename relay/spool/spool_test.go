package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Most tests use 100-byte payloads (108-byte frames) and 432-byte
// segments, so each segment holds exactly four records.
const (
	recSize  = 100
	frameLen = frameHeader + recSize
	seg4     = 4 * frameLen
)

// logRec collects Logf output so tests can assert on recovery reports.
type logRec struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *logRec) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, msg)
	l.mu.Unlock()
	l.t.Log(msg)
}

func (l *logRec) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func opts(t *testing.T, segBytes int64) (Options, *logRec) {
	l := &logRec{t: t}
	return Options{SegmentBytes: segBytes, Logf: l.logf}, l
}

func mustOpen(t *testing.T, dir string, o Options) *Spool {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// payload encodes i in the first 8 bytes so tests can identify records.
func payload(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte('a' + i%26)
	}
	copy(b, fmt.Sprintf("%08d", i))
	return b
}

func number(t *testing.T, p []byte) int {
	t.Helper()
	n, err := strconv.Atoi(string(p[:8]))
	if err != nil {
		t.Fatalf("bad payload %q", p[:8])
	}
	return n
}

func appendRange(t *testing.T, s *Spool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.Append(payload(i, recSize)); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
}

func seq(from, to int) []int {
	var r []int
	for i := from; i < to; i++ {
		r = append(r, i)
	}
	return r
}

// drain returns the numbers of all unconsumed records without committing.
func drain(t *testing.T, s *Spool) ([]int, []Entry) {
	t.Helper()
	es, err := s.Peek(0, 0)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	var got []int
	for _, e := range es {
		got = append(got, number(t, e.Payload))
	}
	return got, es
}

func checkRecords(t *testing.T, s *Spool, want []int) []Entry {
	t.Helper()
	got, es := drain(t, s)
	if !slices.Equal(got, want) {
		t.Fatalf("records: got %v, want %v", got, want)
	}
	if st := s.Stats(); st.Pending != int64(len(want)) {
		t.Errorf("Stats.Pending: got %d, want %d", st.Pending, len(want))
	}
	return es
}

// abandon drops a Spool the way a crash would: descriptors are closed
// without fsync or cursor update, and the directory lock is released.
func abandon(s *Spool) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.active.Close()
	s.rd.close()
	s.lock.Close()
}

func segPath(dir string, seq uint64) string { return filepath.Join(dir, segName(seq)) }

func segFiles(t *testing.T, dir string) []uint64 {
	t.Helper()
	seqs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, path, off, []byte{b[off] ^ 0xff})
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		segBytes int64
		size     int
		n, batch int
	}{
		{"one segment", 1 << 20, 100, 50, 1},
		{"rotation", 1024, 100, 100, 1},
		{"batches across segments", 1024, 100, 100, 7},
		{"records larger than a segment", 64, 200, 20, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, _ := opts(t, tc.segBytes)
			s := mustOpen(t, dir, o)
			for i := 0; i < tc.n; i += tc.batch {
				var b [][]byte
				for j := i; j < min(i+tc.batch, tc.n); j++ {
					b = append(b, payload(j, tc.size))
				}
				if err := s.Append(b...); err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			st := s.Stats()
			if want := int64(tc.n * (frameHeader + tc.size)); st.Bytes != want || st.Pending != int64(tc.n) {
				t.Fatalf("Stats: got %+v, want Bytes %d Pending %d", st, want, tc.n)
			}
			if tc.segBytes < int64(tc.n*tc.size) && st.Segments < 2 {
				t.Errorf("Segments: got %d, want rotation", st.Segments)
			}

			first, err := s.Peek(10, 0)
			if err != nil || len(first) != 10 {
				t.Fatalf("Peek(10, 0): got %d records, %v; want 10", len(first), err)
			}
			again, _ := s.Peek(10, 0)
			if !slices.EqualFunc(first, again, func(a, b Entry) bool { return a.Pos == b.Pos }) {
				t.Errorf("second Peek got other records; Peek must not consume")
			}
			if es, _ := s.Peek(0, 3*tc.size); len(es) != 3 {
				t.Errorf("Peek(0, 3 payloads): got %d records, want 3", len(es))
			}
			if es, _ := s.Peek(5, 1); len(es) != 1 {
				t.Errorf("Peek(5, 1 byte): got %d records, want 1 (first always fits)", len(es))
			}
			if err := s.Commit(first[9].Pos); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if err := s.Commit(first[4].Pos); err != nil {
				t.Errorf("Commit behind cursor: got %v, want nil", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			s = mustOpen(t, dir, o)
			defer s.Close()
			es := checkRecords(t, s, seq(10, tc.n))
			if err := s.Commit(es[len(es)-1].Pos); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			st = s.Stats()
			if st.Bytes != 0 || st.Pending != 0 || st.Segments != 1 {
				t.Errorf("Stats after full commit: got %+v, want 0 bytes, 0 pending, 1 segment", st)
			}
			if got := segFiles(t, dir); len(got) != 1 {
				t.Errorf("segment files after full commit: got %v, want 1", got)
			}
			appendRange(t, s, tc.n, tc.n+3)
			checkRecords(t, s, seq(tc.n, tc.n+3))
		})
	}
}

func TestCrashWithoutClose(t *testing.T) {
	tests := []struct {
		name   string
		commit int // records committed before the crash
	}{
		{"nothing committed", 0},
		{"committed into a middle segment", 6},
		{"committed up to a segment boundary", 8},
		{"everything committed", 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, _ := opts(t, seg4)
			s := mustOpen(t, dir, o)
			appendRange(t, s, 0, 20)
			if tc.commit > 0 {
				es, _ := s.Peek(tc.commit, 0)
				if err := s.Commit(es[len(es)-1].Pos); err != nil {
					t.Fatal(err)
				}
			}
			abandon(s)

			s = mustOpen(t, dir, o)
			defer s.Close()
			if st := s.Stats(); st.Corrupt != 0 {
				t.Errorf("Corrupt: got %d, want 0", st.Corrupt)
			}
			checkRecords(t, s, seq(tc.commit, 20))
			appendRange(t, s, 20, 22)
			checkRecords(t, s, seq(tc.commit, 22))
		})
	}
}

const childEnv = "SPOOL_TEST_KILL9_DIR"

// TestKill9Child is the child half of TestKill9: it appends numbered
// records from several goroutines until killed, printing "ack N" for each
// record only after Append returned.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9")
	}
	s, err := Open(dir, Options{SegmentBytes: 16 << 10, SyncInterval: time.Millisecond, Logf: func(string, ...any) {}})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var next atomic.Int64
	var out sync.Mutex
	for w := range 4 {
		go func() {
			batch := w + 1
			for {
				first := int(next.Add(int64(batch))) - batch
				var b [][]byte
				for i := first; i < first+batch; i++ {
					b = append(b, payload(i, 200))
				}
				if err := s.Append(b...); err != nil {
					fmt.Println("error", err)
					os.Exit(2)
				}
				out.Lock()
				for i := first; i < first+batch; i++ {
					fmt.Printf("ack %d\n", i)
				}
				out.Unlock()
			}
		}()
	}
	time.Sleep(20 * time.Second) // the parent kills us long before
	os.Exit(3)
}

func TestKill9(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("needs SIGKILL")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const killAt = 2000
	start := time.Now()
	safety := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
	defer safety.Stop()
	acked := map[int]bool{}
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "ack "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("child printed %q", line)
			}
			acked[n] = true
		} else if strings.HasPrefix(line, "error") {
			t.Errorf("child: %s", line)
		}
		// Kill mid-stream: the child is appending continuously.
		if !killed && (len(acked) >= killAt || time.Since(start) > 3*time.Second && len(acked) > 0) {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before the kill (%v); stderr:\n%s", err, stderr.String())
	}
	t.Logf("child acknowledged %d records before SIGKILL (%v)", len(acked), err)

	o, _ := opts(t, 16<<10)
	s := mustOpen(t, dir, o)
	defer s.Close()
	got, _ := drain(t, s)
	present := map[int]bool{}
	for _, n := range got {
		present[n] = true
	}
	missing := 0
	for n := range acked {
		if !present[n] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("acknowledged records lost: got %d missing of %d acked, want 0", missing, len(acked))
	}
	if st := s.Stats(); st.Corrupt != 0 {
		t.Errorf("Corrupt: got %d, want 0", st.Corrupt)
	}
	t.Logf("recovered %d records (%d acked)", len(got), len(acked))
}

func TestTornTail(t *testing.T) {
	const n = 10
	tests := []struct {
		name  string
		tear  func(t *testing.T, path string)
		valid int // records that survive
	}{
		{"garbage appended", func(t *testing.T, p string) {
			writeAt(t, p, fileSize(t, p), []byte("this is not a frame at all"))
		}, n},
		{"half header", func(t *testing.T, p string) {
			writeAt(t, p, fileSize(t, p), []byte{0x10, 0, 0})
		}, n},
		{"last frame cut in half", func(t *testing.T, p string) {
			if err := os.Truncate(p, fileSize(t, p)-frameLen/2); err != nil {
				t.Fatal(err)
			}
		}, n - 1},
		{"zero-filled tail", func(t *testing.T, p string) {
			writeAt(t, p, fileSize(t, p), make([]byte, 4096))
		}, n},
		{"checksum mismatch in last frame", func(t *testing.T, p string) {
			flipByte(t, p, fileSize(t, p)-1)
		}, n - 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, logs := opts(t, 1<<20)
			s := mustOpen(t, dir, o)
			appendRange(t, s, 0, n)
			abandon(s)
			tc.tear(t, segPath(dir, 1))

			s = mustOpen(t, dir, o)
			defer s.Close()
			if !logs.has("torn tail") {
				t.Errorf("no torn tail log line")
			}
			if got, want := fileSize(t, segPath(dir, 1)), int64(tc.valid*frameLen); got != want {
				t.Errorf("segment size after recovery: got %d, want %d", got, want)
			}
			if st := s.Stats(); st.Corrupt != 0 || st.Segments != 1 || st.DroppedBytes == 0 {
				t.Errorf("Stats: got %+v, want Corrupt 0, 1 segment, the cut bytes counted", st)
			}
			checkRecords(t, s, seq(0, tc.valid))
			appendRange(t, s, 100, 102)
			checkRecords(t, s, append(seq(0, tc.valid), 100, 101))
		})
	}
}

func TestMidSegmentCorruption(t *testing.T) {
	// 12 records in three segments of four: 0-3, 4-7, 8-11.
	tests := []struct {
		name    string
		seg     uint64
		damage  func(t *testing.T, path string)
		want    []int
		newSegs int // segment files after reopen and one more Append
	}{
		{"checksum in sealed segment", 2, func(t *testing.T, p string) {
			flipByte(t, p, frameLen+frameHeader+20) // payload of record 5
		}, []int{0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11}, 4},
		{"length field in sealed segment", 2, func(t *testing.T, p string) {
			writeAt(t, p, frameLen+4, []byte{0, 0, 0, 0x7f}) // length of record 5
		}, []int{0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11}, 4},
		{"zero length in sealed segment", 2, func(t *testing.T, p string) {
			writeAt(t, p, 4, []byte{0, 0, 0, 0}) // length of record 4
		}, []int{0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11}, 4},
		{"magic in sealed segment", 2, func(t *testing.T, p string) {
			writeAt(t, p, 2*frameLen, []byte{0, 0, 0, 0}) // marker of record 6
		}, []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11}, 4},
		{"checksum in last segment", 3, func(t *testing.T, p string) {
			flipByte(t, p, frameLen+frameHeader) // payload of record 9
		}, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11}, 4},
		{"two records in last segment", 3, func(t *testing.T, p string) {
			flipByte(t, p, frameHeader+1) // payloads of records 8 and 9
			flipByte(t, p, frameLen+frameHeader+1)
		}, []int{0, 1, 2, 3, 4, 5, 6, 7, 10, 11}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, logs := opts(t, seg4)
			s := mustOpen(t, dir, o)
			appendRange(t, s, 0, 12)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, segPath(dir, tc.seg))

			s = mustOpen(t, dir, o)
			defer s.Close()
			if !logs.has("skipping") {
				t.Errorf("no corruption log line")
			}
			if got := s.Stats().Corrupt; got != 1 {
				t.Errorf("Corrupt: got %d, want 1", got)
			}
			checkRecords(t, s, tc.want)
			appendRange(t, s, 100, 101)
			checkRecords(t, s, append(slices.Clone(tc.want), 100))
			if got := len(segFiles(t, dir)); got != tc.newSegs {
				t.Errorf("segment files: got %d, want %d", got, tc.newSegs)
			}
		})
	}
}

func TestCorruptionWhileOpen(t *testing.T) {
	tests := []struct {
		name   string
		seg    uint64
		record int // index within the segment
		want   []int
	}{
		{"sealed segment", 2, 1, []int{0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 100}},
		{"active segment", 3, 1, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 100}},
		{"last record of the active segment", 3, 3, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, logs := opts(t, seg4)
			s := mustOpen(t, dir, o)
			defer s.Close()
			appendRange(t, s, 0, 12)
			flipByte(t, segPath(dir, tc.seg), int64(tc.record*frameLen+frameHeader+30))
			_, es := drain(t, s)
			if got := s.Stats().Corrupt; got != 1 || !logs.has("checksum mismatch") {
				t.Errorf("Corrupt: got %d, want 1 with a log line", got)
			}
			// Appends after the damage must stay readable.
			appendRange(t, s, 100, 101)
			checkRecords(t, s, tc.want)
			if len(es) != len(tc.want)-1 {
				t.Errorf("first Peek: got %d records, want %d", len(es), len(tc.want)-1)
			}
		})
	}
}

func TestMissingSegment(t *testing.T) {
	dir := t.TempDir()
	o, logs := opts(t, seg4)
	s := mustOpen(t, dir, o)
	appendRange(t, s, 0, 20) // segments 1-5
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(segPath(dir, 3)); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, o)
	defer s.Close()
	if got := s.Stats().Corrupt; got != 1 || !logs.has("missing") {
		t.Errorf("Corrupt: got %d, want 1 with a log line", got)
	}
	checkRecords(t, s, append(seq(0, 8), seq(12, 20)...))
}

func TestCursorRecovery(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		want    []int
		corrupt int64
		log     string
	}{
		{"cursor into missing segment", func(t *testing.T, dir string) {
			if err := os.Remove(segPath(dir, 2)); err != nil {
				t.Fatal(err)
			}
		}, seq(8, 20), 1, "missing segment"},
		{"cursor into missing last segments", func(t *testing.T, dir string) {
			for seq := uint64(2); seq <= 5; seq++ {
				if err := os.Remove(segPath(dir, seq)); err != nil {
					t.Fatal(err)
				}
			}
		}, nil, 1, "missing segment"},
		{"damaged cursor file", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, cursorName), []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, seq(4, 20), 1, "cursor file damaged"}, // segment 1 was deleted by Commit
		{"cursor past truncated data", func(t *testing.T, dir string) {
			if err := os.Truncate(segPath(dir, 2), frameLen); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(segPath(dir, 3)); err != nil {
				t.Fatal(err)
			}
		}, seq(12, 20), 1, "missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, logs := opts(t, seg4)
			s := mustOpen(t, dir, o)
			appendRange(t, s, 0, 20) // segments 1-5
			es, _ := s.Peek(6, 0)
			if err := s.Commit(es[5].Pos); err != nil { // cursor: segment 2, second record
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)

			s = mustOpen(t, dir, o)
			if got := s.Stats().Corrupt; got != tc.corrupt || !logs.has(tc.log) {
				t.Errorf("Corrupt: got %d, want %d with log %q", got, tc.corrupt, tc.log)
			}
			checkRecords(t, s, tc.want)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// The repaired cursor was persisted: a second Open is clean.
			s = mustOpen(t, dir, o)
			defer s.Close()
			if got := s.Stats().Corrupt; got != 0 {
				t.Errorf("Corrupt after second Open: got %d, want 0", got)
			}
			checkRecords(t, s, tc.want)
		})
	}
}

func TestErrFull(t *testing.T) {
	dir := t.TempDir()
	o, _ := opts(t, seg4)
	o.MaxBytes = 10 * frameLen
	s := mustOpen(t, dir, o)
	defer s.Close()
	appendRange(t, s, 0, 10)
	before := s.Stats()
	steps := []struct {
		name  string
		batch int
		want  error
	}{
		{"one more record", 1, ErrFull},
		{"batch", 3, ErrFull},
		{"batch above MaxBytes", 11, ErrTooLarge},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var b [][]byte
			for i := range st.batch {
				b = append(b, payload(50+i, recSize))
			}
			if err := s.Append(b...); !errors.Is(err, st.want) {
				t.Errorf("Append: got %v, want %v", err, st.want)
			}
			if got := s.Stats(); got != before {
				t.Errorf("Stats: got %+v, want unchanged %+v", got, before)
			}
		})
	}
	var onDisk int64
	for _, seq := range segFiles(t, dir) {
		onDisk += fileSize(t, segPath(dir, seq))
	}
	if onDisk != 10*frameLen {
		t.Errorf("bytes on disk: got %d, want %d (nothing written)", onDisk, 10*frameLen)
	}

	es, _ := s.Peek(3, 0)
	if err := s.Commit(es[2].Pos); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(payload(10, recSize), payload(11, recSize), payload(12, recSize)); err != nil {
		t.Fatalf("Append after Commit: got %v, want nil", err)
	}
	if err := s.Append(payload(13, recSize)); !errors.Is(err, ErrFull) {
		t.Errorf("Append at cap again: got %v, want ErrFull", err)
	}
	checkRecords(t, s, seq(3, 13))
}

func TestConcurrentAppenders(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
	}{
		{"fsync per append", 0},
		{"group commit 2ms", 2 * time.Millisecond},
	}
	const writers, perWriter = 8, 100
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, _ := opts(t, 4096)
			o.SyncInterval = tc.interval
			s := mustOpen(t, dir, o)
			defer s.Close()

			got := make([][]int, writers)
			done := make(chan struct{})
			go func() { // the single reader
				defer close(done)
				for total := 0; total < writers*perWriter; {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err := s.Wait(ctx)
					cancel()
					if err != nil {
						t.Errorf("Wait: %v", err)
						return
					}
					es, err := s.Peek(37, 0)
					if err != nil {
						t.Errorf("Peek: %v", err)
						return
					}
					for _, e := range es {
						var w, i int
						fmt.Sscanf(string(e.Payload), "%d-%d", &w, &i)
						got[w] = append(got[w], i)
					}
					total += len(es)
					if len(es) > 0 {
						if err := s.Commit(es[len(es)-1].Pos); err != nil {
							t.Errorf("Commit: %v", err)
							return
						}
					}
				}
			}()

			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := 0; i < perWriter; {
						var b [][]byte
						for range 1 + i%3 {
							if i < perWriter {
								b = append(b, fmt.Appendf(nil, "%02d-%06d-%s", w, i, strings.Repeat("x", 50)))
								i++
							}
						}
						if err := s.Append(b...); err != nil {
							t.Errorf("Append: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			<-done
			for w := range writers {
				if !slices.Equal(got[w], seq(0, perWriter)) {
					t.Errorf("writer %d: got %v, want 0..%d in order", w, got[w], perWriter-1)
				}
			}
			if st := s.Stats(); st.Pending != 0 || st.Bytes != 0 || st.Segments != 1 {
				t.Errorf("Stats: got %+v, want drained", st)
			}
		})
	}
}

func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	o, _ := opts(t, 1<<20)
	o.SyncInterval = 50 * time.Millisecond
	s := mustOpen(t, dir, o)
	defer s.Close()
	const n = 32
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-startGate
			if err := s.Append(payload(i, recSize)); err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
	close(startGate)
	wg.Wait()
	s.mu.Lock()
	syncs := s.syncs
	s.mu.Unlock()
	if syncs >= n/2 {
		t.Errorf("fsyncs for %d concurrent Appends: got %d, want far fewer", n, syncs)
	}
	t.Logf("%d Appends, %d fsyncs", n, syncs)

	// SyncInterval spaces fsyncs: the second of two back-to-back Appends
	// waits for the interval.
	start := time.Now()
	appendRange(t, s, 100, 102)
	if got := time.Since(start); got < o.SyncInterval {
		t.Errorf("two sequential Appends took %v, want >= SyncInterval %v", got, o.SyncInterval)
	}
}

func TestWait(t *testing.T) {
	dir := t.TempDir()
	o, _ := opts(t, seg4)
	s := mustOpen(t, dir, o)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait on empty spool: got %v, want DeadlineExceeded", err)
	}

	woke := make(chan error, 1)
	go func() { woke <- s.Wait(context.Background()) }()
	time.Sleep(10 * time.Millisecond)
	appendRange(t, s, 0, 1)
	select {
	case err := <-woke:
		if err != nil {
			t.Errorf("Wait after Append: got %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake after Append")
	}

	es, _ := s.Peek(1, 0)
	if err := s.Commit(es[0].Pos); err != nil {
		t.Fatal(err)
	}
	go func() { woke <- s.Wait(context.Background()) }()
	time.Sleep(10 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Wait after Close: got %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake on Close")
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	o, _ := opts(t, seg4)
	s := mustOpen(t, dir, o)
	appendRange(t, s, 0, 2)

	if _, err := Open(dir, o); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open: got %v, want ErrLocked", err)
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"empty record", s.Append(payload(9, recSize), nil), ErrEmptyRecord},
		{"commit beyond data", s.Commit(Position{seg: 1, off: 5 * frameLen}), ErrBadPosition},
		{"commit unknown segment", s.Commit(Position{seg: 99, off: 8}), ErrBadPosition},
		{"commit zero position", s.Commit(Position{}), nil},
		{"append nothing", s.Append(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Errorf("got %v, want %v", tc.err, tc.want)
			}
		})
	}
	checkRecords(t, s, seq(0, 2))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(payload(3, recSize)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: got %v, want ErrClosed", err)
	}
	if _, err := s.Peek(1, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Peek after Close: got %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
}

// BenchmarkAppend measures parallel single-record Appends of 200 bytes.
func BenchmarkAppend(b *testing.B) {
	for _, interval := range []time.Duration{0, 2 * time.Millisecond} {
		b.Run("SyncInterval="+interval.String(), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{MaxBytes: 1 << 40, SyncInterval: interval, Logf: b.Logf})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			p := payload(1, 200)
			b.SetBytes(int64(len(p)))
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Append(p); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
	// As the relay appends: batches of 500 from 8 connections, 5ms group
	// commit (its default SpoolSync).
	b.Run("batch500/SyncInterval=5ms", func(b *testing.B) {
		s, err := Open(b.TempDir(), Options{MaxBytes: 1 << 40, SyncInterval: 5 * time.Millisecond, Logf: b.Logf})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		batch := make([][]byte, 500)
		for i := range batch {
			batch[i] = payload(i, 200)
		}
		b.SetBytes(500 * 200)
		b.SetParallelism(4) // 8 appenders on 2 CPUs
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Append(batch...); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
	})
}

// TestCursorSyncLags: with CursorSync set, Commit may leave the persisted
// cursor behind: a crash then re-delivers records (duplicates, never loss),
// and Close persists the exact cursor.
func TestCursorSyncLags(t *testing.T) {
	for _, tt := range []struct {
		name  string
		close bool
		want  []int
	}{
		{"crash re-delivers from the persisted cursor", false, seq(0, 10)},
		{"close persists the cursor", true, seq(4, 10)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			o, _ := opts(t, 1<<20)
			o.CursorSync = time.Hour
			s := mustOpen(t, dir, o)
			appendRange(t, s, 0, 10)
			es := checkRecords(t, s, seq(0, 10))
			if err := s.Commit(es[3].Pos); err != nil {
				t.Fatal(err)
			}
			checkRecords(t, s, seq(4, 10))
			if tt.close {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				abandon(s)
			}
			s2 := mustOpen(t, dir, o)
			defer s2.Close()
			checkRecords(t, s2, tt.want)
		})
	}
}
