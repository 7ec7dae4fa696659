//go:build linux

package main

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What the performance harness reads about processes: CPU time and RSS
// from /proc, counters from /metrics.

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// cpuSeconds is utime+stime of pid (all its threads) so far.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

// childPIDs lists the processes whose parent is pid (nginx's workers).
func childPIDs(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

// cpuOf sums cpuSeconds over pids; a process that went away counts 0.
func cpuOf(pids ...int) float64 {
	var sum float64
	for _, p := range pids {
		v, _ := cpuSeconds(p)
		sum += v
	}
	return sum
}

// rssKiB is VmRSS of pid.
func rssKiB(t *testing.T, pid int) float64 {
	t.Helper()
	return rssMB(t, pid) * 1024
}

// metricsOf reads every unlabelled sample of a Prometheus text page
// (integers or floats, as client_golang writes them).
func metricsOf(url string) (map[string]float64, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' || strings.ContainsRune(l, '{') {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	return out, sc.Err()
}

// perfMetric is one sample of a relay's /metrics; the first name found wins
// (names differ between Outpost's own and the standard collectors).
func perfMetric(t *testing.T, plainURL string, names ...string) float64 {
	t.Helper()
	m, err := metricsOf(plainURL + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	for _, n := range names {
		if v, ok := m[n]; ok {
			return v
		}
	}
	t.Fatalf("none of %q in %s/metrics", names, plainURL)
	return 0
}

// perfMedian of xs (NaN for none).
func perfMedian(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// perfSI formats n with a k suffix past ten thousand (156k, 9.8k).
func perfSI(n float64) string {
	switch {
	case math.IsNaN(n):
		return "n/a"
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", n/1000)
	case n >= 1000:
		return fmt.Sprintf("%.1fk", n/1000)
	}
	return fmt.Sprintf("%.0f", n)
}

// perfRatio is a/b with two decimals, "-" when either is missing.
func perfRatio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}
