package wire

import (
	"encoding/json"
	"testing"
)

func TestParseMode(t *testing.T) {
	cases := []struct {
		in      string
		want    Mode
		wantErr string
	}{
		{"forward", ModeForward, ""},
		{"cache", ModeCache, ""},
		{"", "", `mode "": want forward or cache`},
		{"Forward", "", `mode "Forward": want forward or cache`},
		{"relay", "", `mode "relay": want forward or cache`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseMode(c.in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if got != c.want || gotErr != c.wantErr {
				t.Errorf("ParseMode(%q): got %q, %q; want %q, %q", c.in, got, gotErr, c.want, c.wantErr)
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
