package spool

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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
	s, err := Open(dir, Options{SegmentBytes: 16 << 10, SyncInterval: time.Millisecond})
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
