package wire

import (
	"encoding/json"
	"testing"
)

// TestParseWords: the words an operator types are read into their type;
// anything else is refused with the allowed values.
func TestParseWords(t *testing.T) {
	mode := func(s string) (string, error) { m, err := ParseMode(s); return string(m), err }
	os := func(s string) (string, error) { o, err := ParseOS(s); return string(o), err }
	cases := []struct {
		name          string
		parse         func(string) (string, error)
		in, want, err string
	}{
		{"mode forward", mode, "forward", "forward", ""},
		{"mode cache", mode, "cache", "cache", ""},
		{"mode empty", mode, "", "", `mode "": want forward or cache`},
		{"mode case", mode, "Forward", "", `mode "Forward": want forward or cache`},
		{"mode unknown", mode, "relay", "", `mode "relay": want forward or cache`},
		{"os linux", os, "linux", "linux", ""},
		{"os windows", os, "windows", "windows", ""},
		{"os empty", os, "", "", `os "": want linux or windows`},
		{"os case", os, "Linux", "", `os "Linux": want linux or windows`},
		{"os unknown", os, "plan9", "", `os "plan9": want linux or windows`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.parse(c.in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if got != c.want || gotErr != c.err {
				t.Errorf("parse %q: got %q, %q; want %q, %q", c.in, got, gotErr, c.want, c.err)
			}
		})
	}
}

func TestStateSets(t *testing.T) {
	cases := []struct {
		s               State
		reported, ended bool
	}{
		{StateQueued, false, false},
		{StateDelivered, false, false},
		{StateRunning, true, false},
		{StateDone, true, true},
		{StateFailed, true, true},
		{StateRolledBack, true, true},
		{"exploded", false, false},
	}
	for _, c := range cases {
		t.Run(string(c.s), func(t *testing.T) {
			if got := c.s.Reported(); got != c.reported {
				t.Errorf("Reported: got %v, want %v", got, c.reported)
			}
			if got := c.s.Ended(); got != c.ended {
				t.Errorf("Ended: got %v, want %v", got, c.ended)
			}
		})
	}
}

func TestStageValid(t *testing.T) {
	for _, c := range []struct {
		s    Stage
		want bool
	}{{StageDownloading, true}, {StageVerifying, true}, {StageRestarting, true}, {"", false}, {"Downloading", false}} {
		if got := c.s.Valid(); got != c.want {
			t.Errorf("Stage(%q).Valid: got %v, want %v", c.s, got, c.want)
		}
	}
}

// TestEnumsEncodeAsStrings: the named types are on the wire the plain
// strings they were before.
func TestEnumsEncodeAsStrings(t *testing.T) {
	b, err := json.Marshal(CommandResult{ID: 7, State: StateRunning, Stage: StageVerifying})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"id":7,"state":"running","stage":"verifying"}`; got != want {
		t.Errorf("CommandResult: got %s, want %s", got, want)
	}
	var p Policy
	if err := json.Unmarshal([]byte(`{"mode":"cache","bandwidth_bps":0,"frequency_rps":0}`), &p); err != nil || p.Mode != ModeCache {
		t.Errorf("Policy: got %q (%v), want %q", p.Mode, err, ModeCache)
	}
}
