package relay_test

import (
	"context"
	"testing"
	"time"

	"outpost/relay"
	"outpost/relay/wire"
	"outpost/store"
)

// TestSettingsReachHeldCheckins: settings changed by another process (the
// CLI) are reloaded by the running management host and answered to held
// check-ins at once, directly and through a joined relay, which passes
// them through as they are.
func TestSettingsReachHeldCheckins(t *testing.T) {
	t.Parallel()
	m := startManager(t, func(cfg *relay.Config) { cfg.PollTimeout = 20 * time.Second })
	ctx := context.Background()
	f0 := newFleet(t, m, "acme", 0)
	cl := newCluster(t, m, f0.Account.ID, "edge", "edge.example")
	f := newFleet(t, m, "acme", cl.ID)
	_, joinedURL, err := joinRelay(t, m, cl.ID)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := store.Open(m.DB.Path, nil) // the CLI: another process
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	hc := httpClient(m)

	for i, tc := range []struct {
		name, url, key string
		inventory      time.Duration
	}{
		{"direct", m.TLSURL, f0.Key, 2 * time.Second},
		{"through a joined relay", joinedURL, f.Key, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(m, tc.url)
			enrol(t, c, tc.key, i)
			h, _ := host(i)
			type answer struct {
				resp wire.CheckinResponse
				err  error
				at   time.Time
			}
			got := make(chan answer, 1)
			go func() {
				resp, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint, Wait: wire.Duration(20 * time.Second)})
				got <- answer{resp, err, time.Now()}
			}()
			waitFor(t, 10*time.Second, "the check-in held by the management host", func() bool {
				return metric(t, hc, m.PlainURL, "outpost_checkins_held") == 1
			})
			s := cli.Settings()
			s.InventoryInterval, s.OfflineAfter = tc.inventory, time.Minute
			if err := cli.SetSettings(ctx, s); err != nil {
				t.Fatal(err)
			}
			changed := time.Now()
			select {
			case a := <-got:
				if a.err != nil {
					t.Fatalf("held check-in: %v", a.err)
				}
				// Reloaded within a second; 10 s leaves room for a loaded
				// machine and is still half the 20 s hold.
				if d := a.at.Sub(changed); d > 10*time.Second {
					t.Errorf("answered %s after the change, want within 10s", d)
				}
				if g := a.resp.Settings; g.InventoryInterval != tc.inventory || g.OfflineAfter != time.Minute {
					t.Errorf("settings in the answer: got inventory %s offline %s, want %s and 1m", g.InventoryInterval, g.OfflineAfter, tc.inventory)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("held check-in not answered within 15s of the settings change")
			}
		})
	}
}
