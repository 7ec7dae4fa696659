//go:build unix

package selfupdate

import (
	"errors"
	"testing"
)

func TestUnitOf(t *testing.T) {
	const v2 = "0::/system.slice/outpost-relay.service\n"
	const v1 = "12:pids:/system.slice/outpost-agent.service\n1:name=systemd:/system.slice/outpost-agent.service\n"
	for _, tt := range []struct {
		name    string
		cgroup  string
		mainPID string
		err     error
		want    string
	}{
		{"main process of its unit", v2, "4242", nil, "outpost-relay.service"},
		{"cgroup v1", v1, "4242", nil, "outpost-agent.service"},
		{"child of another unit's main process", v1, "17", nil, ""},
		{"systemctl cannot say", v2, "", errors.New("no systemctl"), "outpost-relay.service"},
		{"no service", "0::/user.slice/session-3.scope\n", "4242", nil, ""},
		{"no cgroup file", "", "4242", nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := unitOf([]byte(tt.cgroup), 4242, func(string) (string, error) { return tt.mainPID, tt.err })
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
