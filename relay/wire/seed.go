package wire

import (
	"fmt"
	"math"
)

// The seed's fixed numbers, words and units that both the management side
// (store) and the agent side (agentsim, its doctor) show. They live here
// because agentsim may import only relay/wire; store re-exports them.
const (
	MaxCacheBytes   = 10 * 1000 * 1000 * 1000 // cache cap, default and maximum: 10 GB (seed 000)
	DefaultCacheDir = "cache"                 // a cluster's cache directory, relative to the data directory

	// DuplicateFix is shown with a duplicated identity (seed 002, chapter 1).
	DuplicateFix = "the agent directory was copied or baked into an image: delete it on the clone and install the agent again (re-enrol)"
)

// FormatBytes renders a byte count the way the seed writes sizes (10 GB).
func FormatBytes(n int64) string { return scale(n, "B", "KB", "MB", "GB", "TB") }

// FormatBits renders a rate in bits/s (80 Mbit/s, 1.5 Kbit/s).
func FormatBits(bits int64) string { return scale(bits, "bit/s", "Kbit/s", "Mbit/s", "Gbit/s") }

// scale divides n by 1000 per unit (the seed's units are decimal) and keeps
// one decimal when the result is not whole.
func scale(n int64, units ...string) string {
	f, i := float64(n), 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f %s", f, units[i])
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// AllDigits reports whether s is one or more ASCII digits (a pid, a
// segment number, a numeric semver identifier).
func AllDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
