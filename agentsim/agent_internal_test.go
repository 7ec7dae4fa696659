package agentsim

import (
	"context"
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
