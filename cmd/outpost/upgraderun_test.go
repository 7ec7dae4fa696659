package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/relay"
	"outpost/relay/wire"
)

// TestRelayUpgradeRefusals: a package that does not match its signed
// SHA-256, a release whose signature does not verify, and a package that
// is not a program for this host are refused by the relay with the reason
// in 'proxy list', and nothing changes on the relay; an older release is
// refused by 'proxy upgrade' itself.
func TestRelayUpgradeRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("process upgrade test")
	}
	t.Parallel()
	f := newUpFleet(t)
	pkg := filepath.Join(t.TempDir(), "pkg")
	if err := os.WriteFile(pkg, []byte("outpost release package"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, version string
		spoil         func(t *testing.T)
		want          string
	}{
		{"tampered package", "1.0.5", func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(f.c.data, "releases", "1.0.5"), []byte("outpost release package, backdoored"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "package 1.0.5 does not match its signed SHA-256"},
		{"bad signature", "1.0.6", func(t *testing.T) {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(f.c.data, "outpost.db")+"?_pragma=busy_timeout(10000)") // the relay writes meanwhile
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			// Another version's valid signature: right key, wrong message.
			if _, err := db.Exec(`UPDATE releases SET signature = (SELECT signature FROM releases WHERE version = '1.0.5') WHERE version = '1.0.6'`); err != nil {
				t.Fatal(err)
			}
		}, "signature does not verify"},
		{"not a program", "1.0.7", func(*testing.T) {}, "self-test of the new binary: it does not run on this host"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.publish(t, tt.version, pkg)
			tt.spoil(t)
			f.c.ok("proxy", "upgrade", fmt.Sprint(f.id))
			p := f.waitProxy(t, 15*time.Second, "the upgrade to "+tt.version+" to end", func(p upProxy) bool {
				st, _ := p.upgrade()
				return st == "failed" || st == "done" || st == "rolled_back"
			})
			if st, reason := p.upgrade(); st != "failed" || !strings.Contains(reason, tt.want) {
				t.Errorf("upgrade: got %s %q, want failed with %q", st, reason, tt.want)
			}
			if want := "to " + tt.version + ": failed: "; !strings.HasPrefix(p.UpgradeState, want) {
				t.Errorf("upgrade_state: got %q, want it to start %q", p.UpgradeState, want)
			}
			if p.Version != "1.0.0" || p.Status != "online" {
				t.Errorf("proxy: got %s %s, want online at 1.0.0", p.Status, p.Version)
			}
			f.unchanged(t)
		})
	}
	t.Run("downgrade", func(t *testing.T) {
		for _, v := range []string{"1.0.5", "1.0.6", "1.0.7"} {
			f.c.ok("release", "delete", v)
		}
		f.publish(t, "0.9.0", pkg)
		r := f.c.run("proxy", "upgrade", fmt.Sprint(f.id))
		if want := "runs 1.0.0, newer than the latest release 0.9.0"; r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("proxy upgrade to an older release: got %s, want refused with %q", r, want)
		}
		f.unchanged(t)
	})
}

// TestRelayUpgradeNoEventLost: 'proxy upgrade' takes a running relay from
// 1.0.0 to 1.1.0 in place: 'proxy list' shows the new version online and
// the upgrade done, the same process (PID) serves, the previous binary is
// kept as .prev, and every event the agents had acknowledged reaches the
// collector.
func TestRelayUpgradeNoEventLost(t *testing.T) {
	if testing.Short() {
		t.Skip("process upgrade test")
	}
	t.Parallel()
	f := newUpFleet(t)
	v2 := upBuild(t, "1.1.0")
	f.publish(t, "1.1.0", v2)
	var ic struct {
		Command string `json:"command"`
	}
	f.c.json(&ic, "installcmd", "create", "--cluster", "edge")
	_, key, _ := installArgs(t, ic.Command)
	sim := svStart(t, f.c, "agentsim", "--json", "--proxy", f.relayURL, "--key", key, "--ca-sha256", f.pin,
		"--agents", "20", "--events-per-sec", "5", "--duration", "10s", "--seed", "5",
		"--collector", f.mgrURL, "--drain-timeout", "30s")
	waitCond(t, sim, 10*time.Second, "agents checked in through the relay", func() bool { return viaCounts(t, f.c)[f.id] > 0 })

	start := time.Now()
	f.c.ok("proxy", "upgrade", fmt.Sprint(f.id))
	f.waitProxy(t, 30*time.Second, "edge-1 online at 1.1.0", func(p upProxy) bool { return p.Status == "online" && p.Version == "1.1.0" })
	online := time.Since(start)
	p := f.waitProxy(t, 10*time.Second, "the upgrade done", func(p upProxy) bool { st, _ := p.upgrade(); return st == "done" })
	t.Logf("proxy upgrade -> 1.1.0 online in proxy list: %s (done reported after %s)", online.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if p.UpgradeState != "" && !strings.Contains(p.UpgradeState, "done") {
		t.Errorf("upgrade_state: got %q, want none or done once done", p.UpgradeState)
	}

	info, err := relay.ReadRunFile(f.rc.data, "relay")
	if err != nil || info.PID != f.relay.cmd.Process.Pid || f.relay.exited() {
		t.Errorf("relay process: run file pid %d (%v), exited %v; want the same process %d serving", info.PID, err, f.relay.exited(), f.relay.cmd.Process.Pid)
	}
	code, body := svGet(t, svPinned(t, f.pin), f.relayURL+wire.PathHealth)
	if code != 200 || !strings.Contains(body, `"version":"1.1.0"`) {
		t.Errorf("relay /healthz: got %d %s, want version 1.1.0", code, body)
	}
	if b, _ := os.ReadFile(f.bin); !bytes.Equal(b, mustRead(t, v2)) {
		t.Errorf("binary: got %d bytes, want the 1.1.0 build", len(b))
	}
	if b, _ := os.ReadFile(f.bin + ".prev"); !bytes.Equal(b, f.v1) {
		t.Errorf("binary.prev: got %d bytes, want the 1.0.0 build kept", len(b))
	}
	// The trial's argv is the relay's without the (spent) join token.
	if b, err := os.ReadFile(filepath.Join(f.rc.data, "upgrade", "last.json")); err != nil || bytes.Contains(b, []byte(f.token)) ||
		!bytes.Contains(b, []byte(`"--upgrade-grace"`)) {
		t.Errorf("upgrade/last.json: got %s (%v), want the relay's argv without its join token", b, err)
	}

	sim.waitExit(60 * time.Second)
	var rep struct {
		Enrolled     int64  `json:"enrolled"`
		AgentsFailed int64  `json:"agents_failed"`
		EventsAcked  int64  `json:"events_acked"`
		Unacked      int64  `json:"events_unacked"`
		Received     *int64 `json:"received_by_collector"`
		Lost         *int64 `json:"lost"`
		FirstError   string `json:"first_error"`
	}
	mustOneJSON(t, sim.stdout.String(), &rep)
	t.Logf("agentsim report: %+v (lost %v received %v)", rep, deref(rep.Lost), deref(rep.Received))
	if rep.Enrolled != 20 || rep.AgentsFailed != 0 {
		t.Errorf("enrolled/failed: got %d/%d, want 20/0 (first error %q)", rep.Enrolled, rep.AgentsFailed, rep.FirstError)
	}
	if rep.Lost == nil || *rep.Lost != 0 || rep.Unacked != 0 || rep.EventsAcked == 0 {
		t.Errorf("events: got acked %d unacked %d lost %v, want >0, 0 and 0 (checked against the collector)", rep.EventsAcked, rep.Unacked, deref(rep.Lost))
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRelayUpgradeRollsBack: a release that passes its self-test but
// exits at once when run is started again by the watcher, and after the
// third exit within a minute rolled back; one that runs but never reports
// is rolled back when the grace period ends. Either way 1.0.0 is back in
// place and online, and 'proxy list' says "rolled back" with the reason
// (and the new version's last log lines when it wrote any to the trial
// log).
func TestRelayUpgradeRollsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("process upgrade test")
	}
	for _, tt := range []struct {
		name, version string
		want          []string
	}{
		{"exits at once", "1.2.0", []string{"1.2.0 exited 3 times within 1m0s; 1.0.0 runs again", "last log lines: ",
			"badbuild 1.2.0: cannot start: the configuration format is unknown"}},
		{"never reports", "1.2.1", []string{"1.2.1 did not report healthy within 3s; 1.0.0 runs again"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newUpFleetGrace(t, "3s")
			f.publish(t, tt.version, upBuild(t, tt.version))
			f.c.ok("proxy", "upgrade", fmt.Sprint(f.id))
			p := f.waitProxy(t, 40*time.Second, "the upgrade rolled back", func(p upProxy) bool { st, _ := p.upgrade(); return st == "rolled_back" })
			_, reason := p.upgrade()
			for _, want := range tt.want {
				if !strings.Contains(reason, want) {
					t.Errorf("reason: got %q, want it to contain %q", reason, want)
				}
			}
			if want := "to " + tt.version + ": rolled back: "; !strings.HasPrefix(p.UpgradeState, want) {
				t.Errorf("upgrade_state: got %q, want it to start %q", p.UpgradeState, want)
			}
			f.waitProxy(t, 10*time.Second, "edge-1 online at 1.0.0 again", func(p upProxy) bool { return p.Status == "online" && p.Version == "1.0.0" })
			if b, _ := os.ReadFile(f.bin); !bytes.Equal(b, f.v1) {
				t.Errorf("binary: got %d bytes, want 1.0.0 put back", len(b))
			}
			if _, err := os.Stat(f.bin + ".prev"); err == nil {
				t.Errorf("binary.prev: still there, want it renamed back over the binary")
			}
			info, err := relay.ReadRunFile(f.rc.data, "relay")
			if err != nil || info.PID == f.relay.cmd.Process.Pid {
				t.Errorf("relay run file: got pid %d (%v), want the 1.0.0 the watcher started", info.PID, err)
			}
			waitCond(t, nil, 30*time.Second, "the new version's process to end", func() bool { return f.relay.exited() })
			code, body := svGet(t, svPinned(t, f.pin), f.relayURL+wire.PathHealth)
			if code != 200 || !strings.Contains(body, `"version":"1.0.0"`) {
				t.Errorf("relay /healthz: got %d %s, want version 1.0.0 serving again", code, body)
			}
			r := f.c.ok("proxy", "list")
			if !strings.Contains(r.stdout, "rolled back") {
				t.Errorf("proxy list: got\n%s\nwant the upgrade shown rolled back", r.stdout)
			}
		})
	}
}
