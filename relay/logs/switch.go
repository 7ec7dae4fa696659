package logs

import (
	"io"
	"log/slog"
	"sync"
)

// Switch is a writer that can be pointed at a file and back at nothing:
// a new version on trial also writes its log to the trial's log file
// (selfupdate), which the watcher quotes when it rolls back. Writes while
// nothing is set are dropped.
type Switch struct {
	mu sync.Mutex
	w  io.WriteCloser
}

// Write writes p to the current file, if any.
func (s *Switch) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return len(p), nil
	}
	return s.w.Write(p)
}

// Set writes to w from now on (nil: nowhere), closing the one before.
func (s *Switch) Set(w io.WriteCloser) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		s.w.Close()
	}
	s.w = w
}

// Also returns l that also writes each record to s in the text format
// (the trial log stays readable whatever --log-format says).
func Also(l *slog.Logger, s *Switch, o Options) *slog.Logger {
	return slog.New(slog.NewMultiHandler(l.Handler(), NewTextHandler(s, o)))
}
