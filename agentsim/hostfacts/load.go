// Current load: CPU from two /proc/stat samples, memory from /proc/meminfo.

package hostfacts

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// cpuSampleInterval is the gap between the two /proc/stat samples in Load.
const cpuSampleInterval = 100 * time.Millisecond

// Load returns the current CPU and memory use in percent (0..100), for the
// doctor's "above 95 %" check. CPU is the busy share of all CPUs between two
// samples of the aggregate "cpu" line of Root/proc/stat taken 100 ms apart
// (busy = everything but idle and iowait); when /proc/stat is unusable it
// falls back to the 1-minute load average of Root/proc/loadavg divided by
// runtime.NumCPU, capped at 100. Memory is (MemTotal-MemAvailable)/MemTotal
// from Root/proc/meminfo, with MemFree+Buffers+Cached standing in for
// MemAvailable on kernels older than 3.14. A figure that cannot be read is 0.
func (h HostFS) Load() (cpu, mem float64) {
	return h.cpuPercent(), h.memPercent()
}

type cpuSample struct{ busy, total uint64 }

func (h HostFS) readCPU() (cpuSample, bool) {
	b, err := os.ReadFile(h.path("/proc/stat"))
	if err != nil {
		return cpuSample{}, false
	}
	return parseCPUStat(b)
}

// parseCPUStat reads the aggregate "cpu" line of /proc/stat: user nice
// system idle iowait irq softirq steal [guest guest_nice]. guest and
// guest_nice are already included in user and nice, so they are ignored.
func parseCPUStat(b []byte) (cpuSample, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[0] != "cpu" {
			continue
		}
		var s cpuSample
		for i, v := range f[1:] {
			if i >= 8 {
				break
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return cpuSample{}, false
			}
			s.total += n
			if i != 3 && i != 4 { // idle, iowait
				s.busy += n
			}
		}
		return s, true
	}
	return cpuSample{}, false
}

func cpuBetween(a, b cpuSample) (float64, bool) {
	if b.total <= a.total || b.busy < a.busy {
		return 0, false
	}
	return clampPercent(100 * float64(b.busy-a.busy) / float64(b.total-a.total)), true
}

func (h HostFS) cpuPercent() float64 {
	if a, ok := h.readCPU(); ok {
		time.Sleep(cpuSampleInterval)
		if b, ok := h.readCPU(); ok {
			if p, ok := cpuBetween(a, b); ok {
				return p
			}
		}
	}
	b, err := os.ReadFile(h.path("/proc/loadavg"))
	if err != nil {
		return 0
	}
	return loadavgPercent(b, runtime.NumCPU())
}

func loadavgPercent(b []byte, ncpu int) float64 {
	f := strings.Fields(string(b))
	if len(f) == 0 || ncpu <= 0 {
		return 0
	}
	l, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return clampPercent(100 * l / float64(ncpu))
}

func (h HostFS) memPercent() float64 {
	b, err := os.ReadFile(h.path("/proc/meminfo"))
	if err != nil {
		return 0
	}
	return parseMeminfo(b)
}

func parseMeminfo(b []byte) float64 {
	kv := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if n, err := strconv.ParseUint(f[0], 10, 64); err == nil {
			kv[k] = n
		}
	}
	total := kv["MemTotal"]
	if total == 0 {
		return 0
	}
	avail, ok := kv["MemAvailable"]
	if !ok {
		avail = kv["MemFree"] + kv["Buffers"] + kv["Cached"]
	}
	if avail > total {
		avail = total
	}
	return clampPercent(100 * float64(total-avail) / float64(total))
}

func clampPercent(p float64) float64 {
	switch {
	case p < 0:
		return 0
	case p > 100:
		return 100
	}
	return p
}
