package main

import (
	"path/filepath"
	"testing"
)

func TestPickDir(t *testing.T) {
	sys := t.TempDir()
	home := t.TempDir()
	t.Setenv("HOME", home)
	tests := []struct {
		name, flag, env, sys, want string
	}{
		{"flag first", "f", "e", sys, "f"},
		{"then the environment", "", "e", sys, "e"},
		{"then a writable system directory", "", "", sys, sys},
		{"then the home directory", "", "", "/proc/outpost-none/dir", filepath.Join(home, ".x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("OUTPOST_PICKDIR_TEST", tt.env)
			if got := pickDir(tt.flag, "OUTPOST_PICKDIR_TEST", tt.sys, ".x", "fallback"); got != tt.want {
				t.Errorf("pickDir() = %q, want %q", got, tt.want)
			}
		})
	}
}
