package agentsim

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWithGrace(t *testing.T) {
	for _, tt := range []struct {
		name       string
		cancelPar  bool
		wait       time.Duration
		wantActive bool
	}{
		{"parent alive", false, 50 * time.Millisecond, true},
		{"within grace after parent ended", true, 20 * time.Millisecond, true},
		{"after grace", true, 300 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			parent, cancelParent := context.WithCancel(context.Background())
			defer cancelParent()
			g, cancel := withGrace(parent, 100*time.Millisecond)
			defer cancel()
			if tt.cancelPar {
				cancelParent()
			}
			time.Sleep(tt.wait)
			if got := g.Err() == nil; got != tt.wantActive {
				t.Errorf("got active %v, want %v", got, tt.wantActive)
			}
		})
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
	got, err := doctorDiskFree(dir)
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
