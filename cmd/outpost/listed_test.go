package main

import (
	"strings"
	"testing"
)

// TestEmptyLists: on an empty store every list command prints its note on
// stderr and nothing on stdout, and [] with --json.
func TestEmptyLists(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	tests := []struct {
		args []string
		note string
	}{
		{[]string{"account", "list"}, "no account yet: create one with 'outpost account create NAME'"},
		{[]string{"audit"}, "the audit log is empty"},
		{[]string{"cluster", "list"}, "no cluster yet: create one with 'outpost cluster create --name N --address A'"},
		{[]string{"installcmd", "list"}, "no install command yet: create one with 'outpost installcmd create --cluster N'"},
		{[]string{"proxy", "deployments"}, "no quick deployment yet: outpost proxy deploy --cluster N --asset HOST"},
		{[]string{"release", "list"}, "no release published yet: outpost release add VERSION --file PATH --key FILE"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := c.ok(tt.args...)
			if r.stdout != "" || r.stderr != tt.note+"\n" {
				t.Errorf("got stdout %q, stderr %q; want no stdout, stderr %q", r.stdout, r.stderr, tt.note+"\n")
			}
			r = c.ok(append(tt.args, "--json")...)
			if got := strings.TrimSpace(r.stdout); got != "[]" || r.stderr != "" {
				t.Errorf("--json: got stdout %q, stderr %q; want [] and no stderr", got, r.stderr)
			}
		})
	}
}
