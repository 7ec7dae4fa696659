package doctor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"outpost/relay/relaytest"
	"outpost/relay/wire"
)

func TestDoctorLoad(t *testing.T) {
	tests := []struct {
		cpu, mem float64
		verdict  Verdict
		fix      []string
	}{
		{40, 60, VerdictOK, nil},
		{94.9, 94.9, VerdictOK, nil},
		{97, 30, VerdictFail, []string{"process using the CPU", "top"}},
		{20, 99, VerdictFail, []string{"process using the memory", "add memory"}},
		{100, 100, VerdictFail, []string{"CPU", "memory"}},
	}
	for _, tt := range tests {
		d := &Doctor{Load: func() (float64, float64) { return tt.cpu, tt.mem }, LoadEvery: time.Millisecond}
		c := d.CheckLoad()
		drExpect(t, c, tt.verdict, tt.fix...)
		if tt.cpu == 97 && strings.Contains(c.Fix, "memory") {
			t.Errorf("CPU-only fix mentions memory: %q", c.Fix)
		}
	}
	// A burst is not "maintained": one reading below 95 % passes, and the
	// readings are taken only while the load is high.
	readings := []float64{100, 99, 40, 100, 100}
	calls := 0
	d := &Doctor{LoadSamples: 5, LoadEvery: time.Millisecond, Load: func() (float64, float64) {
		calls++
		return readings[calls-1], 10
	}}
	drExpect(t, d.CheckLoad(), VerdictOK)
	if calls != 3 {
		t.Errorf("Load read %d times, want 3 (stop at the first low reading)", calls)
	}
	calls = 0
	d.Load = func() (float64, float64) { calls++; return 10, 10 }
	drExpect(t, d.CheckLoad(), VerdictOK)
	if calls != 1 {
		t.Errorf("a calm host is read %d times, want once", calls)
	}
}

func TestDoctorUpstream(t *testing.T) {
	ctx := context.Background()
	d := &Doctor{Timeout: time.Second}
	closed := relaytest.FreeAddr(t)
	drExpect(t, d.CheckUpstream(ctx, "http://"+drOpenAddr(t)+wire.PathIngest), VerdictOK)
	drExpect(t, d.CheckUpstream(ctx, "https://"+closed), VerdictFail, "allow outbound TCP "+closed, "firewall ACL / security group")
	drExpect(t, d.CheckUpstream(ctx, "ftp://x"), VerdictFail, "--upstream")
}

func TestDoctorCache(t *testing.T) {
	data := t.TempDir()
	// 1 MB already in the ring: it may grow by cap - 1 MB.
	ring := filepath.Join(data, "cache", "edge")
	os.MkdirAll(ring, 0o700)
	os.WriteFile(filepath.Join(ring, "seg-1.ndjson"), make([]byte, 1_000_000), 0o600)
	var asked string
	free := func(n uint64) func(string) (uint64, error) {
		return func(dir string) (uint64, error) { asked = dir; return n, nil }
	}
	tests := []struct {
		name    string
		target  CacheTarget
		free    uint64
		verdict Verdict
		fix     []string
	}{
		{"10 GB cap, 1 GB free", CacheTarget{Cluster: "edge", Dir: "cache/edge"}, 1_000_000_000, VerdictWarn,
			[]string{"free 9.0 GB", "outpost cluster policy edge --cache-dir DIR --cache-max 1001MB"}},
		{"10 GB cap, 20 GB free", CacheTarget{Cluster: "edge", Dir: "cache/edge"}, 20_000_000_000, VerdictOK, nil},
		{"used bytes count", CacheTarget{Cluster: "edge", Dir: ring, Max: 2_000_000}, 1_500_000, VerdictOK, nil},
		{"small cap, no room", CacheTarget{Cluster: "edge", Dir: ring, Max: 5_000_000}, 1_000_000, VerdictWarn, []string{"--cache-max 2MB"}},
		{"directory not created yet", CacheTarget{Cluster: "new", Dir: "cache/new/deeper"}, 1_000, VerdictWarn, []string{"policy new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Doctor{DataDir: data, FreeBytes: free(tt.free)}
			drExpect(t, d.CheckCache(tt.target), tt.verdict, tt.fix...)
			if _, err := os.Stat(asked); err != nil {
				t.Errorf("free space asked of a missing directory %s", asked)
			}
		})
	}
	d := &Doctor{DataDir: data, FreeBytes: func(string) (uint64, error) { return 0, errors.New("statfs: boom") }}
	drExpect(t, d.CheckCache(CacheTarget{Dir: "cache"}), VerdictSkip)
}

func TestDoctorDiskFree(t *testing.T) {
	if _, err := exec.LookPath("df"); err != nil {
		t.Skip("no df")
	}
	n, err := diskFree(t.TempDir())
	if err != nil || n == 0 {
		t.Fatalf("diskFree = %d, %v", n, err)
	}
}

// TestDiskFreeAgreesWithDF checks the doctor's free-space reading against
// what df says for the same directory.
func TestDiskFreeAgreesWithDF(t *testing.T) {
	df, err := exec.LookPath("df")
	if err != nil {
		t.Skip("no df on this machine")
	}
	dir := t.TempDir()
	out, err := exec.Command(df, "-Pk", dir).Output()
	if err != nil {
		t.Skipf("df: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) < 4 {
		t.Skipf("unexpected df output %q", out)
	}
	kb, err := strconv.ParseUint(f[3], 10, 64)
	if err != nil {
		t.Skipf("unexpected df output %q", out)
	}
	got, err := diskFree(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := kb * 1024
	diff := float64(got) - float64(want)
	if diff < 0 {
		diff = -diff
	}
	if diff > 0.01*float64(want)+64<<20 { // files come and go between the readings
		t.Errorf("got %d bytes free, df says %d", got, want)
	}
}
