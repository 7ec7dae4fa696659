package agentsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/relaytest"
	"outpost/relay/wire"
	"outpost/store"
)

func simOnce(t *testing.T, cfg agentsim.SimConfig) agentsim.Report {
	t.Helper()
	if cfg.Duration == 0 {
		cfg.Duration = time.Second
	}
	cfg.Wait, cfg.Linger, cfg.DrainTimeout, cfg.Version = time.Second, 100*time.Millisecond, 3*time.Second, "1.0.0"
	rep, err := agentsim.RunSim(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// Without a collector nothing was checked: the report says so (null in
// JSON) instead of "lost 0".
func TestSimReportSaysWhatWasChecked(t *testing.T) {
	m := relaytest.Start(t, relaytest.Options{})
	_, key, err := m.DB.CreateAccount(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		collector string
		checked   bool
	}{
		{"no collector", "", false},
		{"collector", m.TLSURL, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := simOnce(t, agentsim.SimConfig{Proxies: []string{m.TLSURL}, CASHA256: m.Pin(), Key: key, Agents: 3,
				EventsPerSec: 5, CollectorURL: tt.collector, CollectorToken: m.Relay.StatsToken(), Seed: 2})
			b, _ := json.Marshal(rep)
			var raw map[string]any
			json.Unmarshal(b, &raw)
			if tt.checked {
				if rep.Lost == nil || *rep.Lost != 0 || rep.Received == nil || *rep.Received != rep.EventsAcked {
					t.Errorf("got lost %v received %v, want 0 and %d", raw["lost"], raw["received_by_collector"], rep.EventsAcked)
				}
			} else {
				if v, ok := raw["lost"]; !ok || v != nil {
					t.Errorf("JSON lost: got %v (present %v), want null", v, ok)
				}
				if !strings.Contains(rep.String(), "not checked") {
					t.Errorf("report does not say loss was not checked:\n%s", rep)
				}
			}
			if len(rep.Problems) != 0 {
				t.Errorf("problems: got %q, want none", rep.Problems)
			}
		})
	}
}

// Events a relay never acknowledges make the run a failure with the count.
func TestSimFailsWithEventsUnacknowledged(t *testing.T) {
	url, _ := loopback(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case wire.PathEnrol:
			enrolling(w, r)
		case wire.PathCheckin:
			time.Sleep(50 * time.Millisecond)
			json.NewEncoder(w).Encode(wire.CheckinResponse{})
		default:
			answering(http.StatusServiceUnavailable, "unavailable", "")(w, r)
		}
	})
	rep := simOnce(t, agentsim.SimConfig{Proxies: []string{url}, Key: "k", Agents: 2, EventsPerSec: 10, Seed: 4, DrainTimeout: time.Second})
	if rep.Unacked == 0 || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "events still unacknowledged") {
		t.Errorf("got %d unacknowledged, problems %q; want them counted as the failure", rep.Unacked, rep.Problems)
	}
	if !strings.Contains(rep.String(), "FAILED") {
		t.Errorf("text report does not show the failure:\n%s", rep)
	}
}

// Install commands are per OS: the simulated hosts take the OS of the keys
// given, and agents refused for good are counted by reason.
func TestSimHostsTakeTheKeysOS(t *testing.T) {
	m := relaytest.Start(t, relaytest.Options{})
	ctx := context.Background()
	for i, tt := range []struct {
		name           string
		keys           []string // OS=kind: kind linux, windows or revoked-windows; OS "" for a bare key
		linux, windows bool     // OSes wanted among the enrolled hosts
		failedWhy      string   // "" = no agent fails
	}{
		{"bare Linux key", []string{"=linux"}, true, false, ""},
		{"bare Windows key: learnt from the refusal", []string{"=windows"}, false, true, ""},
		{"Windows key only", []string{"windows=windows"}, false, true, ""},
		{"both keys: the usual mix", []string{"linux=linux", "windows=windows"}, true, true, ""},
		{"revoked Windows key", []string{"linux=linux", "windows=revoked-windows"}, true, false, "refused: install key was revoked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			acct, _, err := m.DB.CreateAccount(ctx, fmt.Sprintf("acct-%d", i))
			if err != nil {
				t.Fatal(err)
			}
			keys := map[wire.OS]string{}
			for _, k := range tt.keys {
				os, kind, _ := strings.Cut(k, "=")
				ic, err := m.DB.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID, OS: wire.OS(strings.TrimPrefix(kind, "revoked-"))})
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(kind, "revoked-") {
					if err := m.DB.RevokeInstallCommand(ctx, acct.ID, ic.ID); err != nil {
						t.Fatal(err)
					}
				}
				keys[wire.OS(os)] = ic.Key
			}
			rep := simOnce(t, agentsim.SimConfig{Proxies: []string{m.TLSURL}, CASHA256: m.Pin(), Keys: keys, Agents: 20,
				FirstIndex: 1000 * (i + 1), Seed: 11, Duration: 3 * time.Second})
			page, err := m.DB.ListAgents(ctx, store.AgentFilter{AccountID: acct.ID, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			oses := map[wire.OS]int{}
			for _, a := range page.Agents {
				oses[a.OS]++
			}
			if got := oses["linux"] > 0; got != tt.linux {
				t.Errorf("Linux hosts enrolled: got %v (%v), want %v", got, oses, tt.linux)
			}
			if got := oses["windows"] > 0; got != tt.windows {
				t.Errorf("Windows hosts enrolled: got %v (%v), want %v", got, oses, tt.windows)
			}
			if tt.failedWhy == "" {
				if rep.AgentsFailed != 0 || rep.Enrolled != 20 || len(rep.Problems) != 0 {
					t.Errorf("got %d enrolled, %d failed (%v), problems %q; want 20, 0, none", rep.Enrolled, rep.AgentsFailed, rep.FailedBy, rep.Problems)
				}
				return
			}
			n := int64(0)
			for why, c := range rep.FailedBy {
				if strings.Contains(why, tt.failedWhy) {
					n += c
				}
			}
			if rep.AgentsFailed == 0 || n != rep.AgentsFailed || len(rep.Problems) != 1 ||
				!strings.Contains(rep.Problems[0], "agents failed for good") || !strings.Contains(rep.Problems[0], tt.failedWhy) {
				t.Errorf("got %d failed by %v, problems %q; want every failure counted as %q", rep.AgentsFailed, rep.FailedBy, rep.Problems, tt.failedWhy)
			}
		})
	}
}
