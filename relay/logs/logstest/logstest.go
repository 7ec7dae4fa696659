// Package logstest gives tests a *slog.Logger in the text format that
// writes to t.Log, and stops when the test ends: servers under test may
// log a moment after it, which testing does not allow. Record also keeps
// the lines, for tests that assert on what was logged.
package logstest

import (
	"log/slog"
	"strings"
	"sync"
	"testing"

	"outpost/relay/logs"
)

// New returns a logger writing to t.Log until t ends.
func New(t testing.TB) *slog.Logger {
	l, _ := Record(t)
	return l
}

// Record returns a logger writing to t.Log until t ends, and the lines it
// wrote (time of day included).
func Record(t testing.TB) (*slog.Logger, *Lines) {
	w := &Lines{t: t}
	t.Cleanup(w.stop)
	return slog.New(logs.NewTextHandler(w, logs.Options{})), w
}

// Lines is what a Record logger wrote.
type Lines struct {
	mu    sync.Mutex
	t     testing.TB
	done  bool
	lines []string
}

// Write takes one line from the handler.
func (w *Lines) Write(p []byte) (int, error) {
	line := strings.TrimSuffix(string(p), "\n")
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, line)
	if !w.done {
		w.t.Log(line)
	}
	return len(p), nil
}

// All returns a copy of the lines so far.
func (w *Lines) All() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// Count returns how many lines hold sub.
func (w *Lines) Count(sub string) int {
	n := 0
	for _, l := range w.All() {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// Has reports whether a line holds sub.
func (w *Lines) Has(sub string) bool { return w.Count(sub) > 0 }

func (w *Lines) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
