package relay

import (
	"fmt"
	"io"
	"time"
)

// Logf returns the timestamped logger every outpost process writes its
// lines with: "15:04:05 " + prefix + the formatted message, one write per
// line so lines from several goroutines do not interleave.
func Logf(w io.Writer, prefix string) func(format string, args ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(w, "%s %s%s\n", time.Now().Format("15:04:05"), prefix, fmt.Sprintf(format, args...))
	}
}
