package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// TestUpgradeStageThroughHeartbeat: the stage a relay reports with its
// heartbeat is what 'proxy list' shows (through the store's proxy
// commands), a rollback arrives with its reason, an unknown stage is
// refused with 400, and every heartbeat, enrolment and check-in answer
// carries the release key chain.
func TestUpgradeStageThroughHeartbeat(t *testing.T) {
	m := startManager(t)
	ctx := context.Background()
	f, cl := clusterFleet(t, m, "acme", "edge", "relay.edge.example")
	jt, err := m.DB.CreateJoinToken(ctx, cl.ID, store.DeployManual, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, secret, err := m.DB.JoinProxy(ctx, store.JoinInput{Token: jt.Token, Hostname: "px-1", IP: "127.0.0.1", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k1, k2 := filepath.Join(dir, "k1"), filepath.Join(dir, "k2")
	if _, err := m.DB.CreateReleaseKey(ctx, k1); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DB.RotateReleaseKey(ctx, k1, k2); err != nil {
		t.Fatal(err)
	}
	want, err := m.DB.ReleaseKeyChain(ctx)
	if err != nil || len(want) != 2 {
		t.Fatalf("chain: %v %v", want, err)
	}
	pkg := filepath.Join(dir, "pkg")
	os.WriteFile(pkg, []byte("package 1.1.0"), 0o600)
	if _, err := m.DB.PublishSignedRelease(ctx, store.Release{Version: "1.1.0"}, pkg, k2); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DB.UpgradeProxy(ctx, p.ID); err != nil {
		t.Fatal(err)
	}

	hc := httpClient(m)
	beat := func(t *testing.T, results ...wire.CommandResult) (wire.HeartbeatResponse, int) {
		t.Helper()
		body, _ := json.Marshal(wire.HeartbeatRequest{Version: "1.0.0", Results: results})
		req, _ := http.NewRequest("POST", m.TLSURL+wire.PathHeartbeat, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(wire.HeaderRelay, fmt.Sprintf("%d:%s", p.ID, secret))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var hb wire.HeartbeatResponse
		if resp.StatusCode == http.StatusOK {
			json.NewDecoder(resp.Body).Decode(&hb)
		}
		resp.Body.Close()
		return hb, resp.StatusCode
	}
	shown := func(t *testing.T) string {
		t.Helper()
		ps, err := m.DB.ListProxies(ctx, cl.ID)
		if err != nil || len(ps) != 1 {
			t.Fatalf("ListProxies: %v %v", ps, err)
		}
		c, ok := ps[0].UpgradeCommand()
		if !ok {
			t.Fatal("no upgrade command listed")
		}
		return c.Describe()
	}

	hb, code := beat(t)
	if code != http.StatusOK || len(hb.Commands) != 1 || hb.Commands[0].Type != wire.CmdUpgrade {
		t.Fatalf("first heartbeat: got %d %+v, want the upgrade command", code, hb.Commands)
	}
	id := hb.Commands[0].ID
	if fmt.Sprint(hb.ReleaseKeys) != fmt.Sprint(want) || hb.ReleaseKey != want[1].Key {
		t.Errorf("heartbeat keys: got %v (key %s), want the chain %v and the newest key", hb.ReleaseKeys, hb.ReleaseKey, want)
	}
	for _, tt := range []struct {
		name string
		r    wire.CommandResult
		want string
	}{
		{"downloading", wire.CommandResult{ID: id, State: wire.StateRunning, Stage: wire.StageDownloading}, "downloading"},
		{"verifying", wire.CommandResult{ID: id, State: wire.StateRunning, Stage: wire.StageVerifying}, "verifying"},
		{"restarting", wire.CommandResult{ID: id, State: wire.StateRunning, Stage: wire.StageRestarting}, "restarting"},
		{"rolled back", wire.CommandResult{ID: id, State: wire.StateRolledBack, Error: "no healthy heartbeat within 2m0s"}, "rolled back: no healthy heartbeat within 2m0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, code := beat(t, tt.r); code != http.StatusOK {
				t.Fatalf("heartbeat: got %d, want 200", code)
			}
			if got := shown(t); got != tt.want {
				t.Errorf("listed: got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("unknown stage", func(t *testing.T) {
		if _, code := beat(t, wire.CommandResult{ID: id, State: wire.StateRunning, Stage: "exploding"}); code != http.StatusBadRequest {
			t.Errorf("got %d, want 400", code)
		}
	})
	t.Run("enrol carries the chain, a check-in without an upgrade does not", func(t *testing.T) {
		c := agentClient(t, m, m.TLSURL)
		en := enrolLinux(t, c, f.Key, 7)
		if fmt.Sprint(en.ReleaseKeys) != fmt.Sprint(want) {
			t.Errorf("enrol: got %v, want %v", en.ReleaseKeys, want)
		}
		h, _ := linuxHost(7)
		resp, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint})
		if err != nil || resp.ReleaseKeys != nil {
			t.Errorf("check-in: got %v (%v), want no chain (it rides with upgrade commands)", resp.ReleaseKeys, err)
		}
	})
}
