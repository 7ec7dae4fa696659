package relay_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"outpost/relay"
	"outpost/store"
)

// TestJoinErrorsReadAsSentences checks that a refused join says why in
// words: no raw HTTP status from the management host.
func TestJoinErrorsReadAsSentences(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	ctx := context.Background()
	acct, _, err := m.DB.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ip := newCluster(t, m, acct.ID, "ipc", "10.0.0.5")
	first, err := m.DB.CreateJoinToken(ctx, ip.ID, store.DeployManual, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	second, err := m.DB.CreateJoinToken(ctx, ip.ID, store.DeployManual, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := startJoined(t, m, first.Token, t.TempDir()); err != nil {
		t.Fatalf("first join: %v", err)
	}
	t.Run("no CA pin", func(t *testing.T) {
		jt, err := m.DB.CreateJoinToken(ctx, newCluster(t, m, acct.ID, "edge", "edge.example").ID, store.DeployManual, "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cfg := relay.DefaultConfig()
		cfg.DataDir, cfg.Manager, cfg.JoinToken = t.TempDir(), m.TLSURL, jt.Token
		_, err = relay.New(cfg)
		if err == nil || !strings.Contains(err.Error(), "pass the --ca-sha256 printed by 'outpost proxy deploy --manual'") {
			t.Errorf("join without a pin: got %v, want the hint to pass --ca-sha256", err)
		}
	})
	status := regexp.MustCompile(`\b[1-5][0-9][0-9]\b`)
	for _, tc := range []struct {
		name, token, want string
	}{
		{"unknown token", "jt_" + strings.Repeat("0", 48), "join token not recognised"},
		{"used token", first.Token, "join token was already used"},
		{"IP cluster full", second.Token, `cluster "ipc" uses an IP address and already has its one proxy server`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := startJoined(t, m, tc.token, t.TempDir())
			if err == nil {
				t.Fatal("join: got success, want a refusal")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("join error: got %q, want it to contain %q", msg, tc.want)
			}
			if loc := status.FindStringIndex(strings.ReplaceAll(msg, m.TLSURL, "URL")); loc != nil {
				t.Errorf("join error: got %q, want no HTTP status in it", msg)
			}
		})
	}
}
