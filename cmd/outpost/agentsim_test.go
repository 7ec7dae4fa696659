package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"outpost/relay/relaytest"
	"outpost/relay/wire"
	"outpost/store"
)

// agentsim exits 1 when agents failed for good, with the reasons counted;
// one install key makes every simulated host that key's OS (seed 42 draws
// 2 Windows hosts among 10, which a Linux key refused before); without
// --collector the loss is "not checked" (null).
func TestAgentsimKeysAndExitStatus(t *testing.T) {
	t.Parallel()
	m := relaytest.Start(t, relaytest.Options{})
	ctx := context.Background()
	acct, _, err := m.DB.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	key := func(os wire.OS, revoke bool) string {
		ic, err := m.DB.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID, OS: os})
		if err != nil {
			t.Fatal(err)
		}
		if revoke {
			if err := m.DB.RevokeInstallCommand(ctx, acct.ID, ic.ID); err != nil {
				t.Fatal(err)
			}
		}
		return ic.Key
	}
	linux, revoked := key("linux", false), key("windows", true)
	for _, tt := range []struct {
		name   string
		keys   []string
		code   int
		stderr string
	}{
		{"one Linux key: every host Linux", []string{"--key", linux}, 0, ""},
		{"revoked Windows key: agents failed for good", []string{"--key", "linux=" + linux, "--key", "windows=" + revoked}, 1,
			"agents failed for good (%d refused: install key was revoked"},
		{"unknown OS", []string{"--key", "macos=" + linux}, 2, "want KEY, linux=KEY or windows=KEY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			args := append([]string{"agentsim", "--json", "--proxy", m.TLSURL, "--ca-sha256", m.Pin(), "--agents", "10", "--seed", "42",
				"--duration", "2s", "--events-per-sec", "2", "--wait", "1s"}, tt.keys...)
			r := c.run(args...)
			if r.code != tt.code {
				t.Fatalf("exit: got %d, want %d\n%s", r.code, tt.code, r)
			}
			if tt.code == 2 {
				if !strings.Contains(r.stderr, tt.stderr) {
					t.Errorf("stderr: got %q, want %q", r.stderr, tt.stderr)
				}
				return
			}
			var rep struct {
				Enrolled int64            `json:"enrolled"`
				Failed   int64            `json:"agents_failed"`
				FailedBy map[string]int64 `json:"agents_failed_by_reason"`
				Lost     *int64           `json:"lost"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("report: %v\n%s", err, r.stdout)
			}
			if !strings.Contains(r.stdout, `"lost": null`) {
				t.Errorf("report: want \"lost\": null without --collector\n%s", r.stdout)
			}
			if tt.code == 0 {
				if rep.Enrolled != 10 || rep.Failed != 0 {
					t.Errorf("got %d enrolled, %d failed (%v); want 10, 0", rep.Enrolled, rep.Failed, rep.FailedBy)
				}
				return
			}
			want := fmt.Sprintf(tt.stderr, rep.Failed)
			if rep.Failed == 0 || !strings.HasPrefix(r.stderr, "outpost: ") || !strings.Contains(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("got %d failed, stderr %q; want one line saying %q", rep.Failed, r.stderr, want)
			}
		})
	}
}
