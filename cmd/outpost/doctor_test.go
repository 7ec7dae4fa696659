package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/agentsim/doctor"
	"outpost/relay"
	"outpost/relay/relaytest"
	"outpost/relay/wire"
	"outpost/store"
)

// dtManager is a management-host relay served by the test process on
// 127.0.0.1:0 (TLS) over the store in DATA of c, with DATA/run/relay.json
// written as `outpost relay` does.
type dtManager struct {
	db  *store.DB
	srv *relay.Server
	url string
}

func dtStartManager(t *testing.T, c *cli) *dtManager {
	t.Helper()
	rm := relaytest.Start(t, relaytest.Options{Dir: c.data, NoCollector: true, Config: func(cfg *relay.Config) {
		cfg.PollTimeout = 2 * time.Second
	}})
	m := &dtManager{db: rm.DB, srv: rm.Relay, url: rm.TLSURL}
	if err := relay.WriteRunFile(c.data, "relay", relay.RunInfo{URLs: []string{m.url}, CASHA256: rm.Pin()}); err != nil {
		t.Fatal(err)
	}
	return m
}

// dtMachine writes a machine id file (what OUTPOST_MACHINE_ID_FILE points
// the agent and the doctor at) and returns it with its fingerprint.
func dtMachine(t *testing.T, id string) (path, fingerprint string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "machine-id")
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(id))
	return path, hex.EncodeToString(sum[:])
}

var dtSummary = regexp.MustCompile(`^(\d+) checks: (\d+) ok, (\d+) warnings, (\d+) failures$`)

// dtLastLine is the last line of stdout.
func dtLastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestDoctorEndToEnd runs the binary on the management host against a live
// relay: an enrolled agent's directory, its install key and a cluster with
// limits pass; the same directory on another machine is a duplicate.
func TestDoctorEndToEnd(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	m := dtStartManager(t, c)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "gz", "--address", "10.0.0.5")
	c.ok("cluster", "policy", "gz", "--bandwidth", "2Mbit", "--link", "100Mbit")
	var ic struct {
		Key string `json:"key"`
	}
	c.json(&ic, "installcmd", "create")

	// The agent of this machine enrols and keeps its identity in a directory.
	machine, fp := dtMachine(t, "doctor-e2e-machine")
	client := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{m.url}, CASHA256: m.srv.CAFingerprint(), Timeout: 5 * time.Second})
	resp, err := client.Enrol(context.Background(), ic.Key, wire.Host{Hostname: "doctor-e2e", OS: "linux", Arch: "amd64", Fingerprint: fp, Version: "1.0.0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	agentDir := filepath.Join(t.TempDir(), "agent")
	ids, err := agentsim.OpenDiskIdentity(agentDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ids.Save(agentsim.Identity{AgentID: resp.AgentID, Secret: resp.Secret, Proxies: []string{m.url}}); err != nil {
		t.Fatal(err)
	}

	// Host load depends on whatever else the machine runs (go test runs
	// packages in parallel): it has its own unit test with a fake reader.
	args := []string{"doctor", "--proxy", m.url, "--ca-sha256", m.srv.CAFingerprint(), "--key", ic.Key, "--dir", agentDir, "--skip", "load"}
	c.env = append(c.env, "OUTPOST_MACHINE_ID_FILE="+machine)
	r := c.run(args...)
	if r.code != 0 {
		t.Fatalf("doctor: want exit 0, got\n%s", r)
	}
	if got := dtLastLine(r.stdout); got != "7 checks: 7 ok, 0 warnings, 0 failures" {
		t.Errorf("summary line %q\n%s", got, r)
	}
	for _, want := range []string{
		"port 127.0.0.1:", "tls-pin " + m.url, "health " + m.url, "clock " + m.url,
		"identity " + agentDir, "install-key " + ic.Key[:10], "link-limits gz",
	} {
		found := false
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(l, want) && strings.Contains(l, "  ok  ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no ok row for %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Fixes:") || r.stderr != "" {
		t.Errorf("a clean run prints fixes or errors:\n%s", r)
	}

	// Without flags the doctor finds the relay (DATA/run/relay.json) and
	// its pin; --json prints one document.
	var doc struct {
		Checks  []doctor.Check `json:"checks"`
		Summary doctor.Summary `json:"summary"`
	}
	c.json(&doc, "doctor", "--skip", "load")
	verdicts := map[string]doctor.Verdict{}
	for _, ch := range doc.Checks {
		verdicts[ch.Name] = ch.Verdict
	}
	for _, n := range []string{doctor.CheckPort, doctor.CheckTLS, doctor.CheckHealth, doctor.CheckClock, doctor.CheckIdentity, doctor.CheckLink} {
		if verdicts[n] != doctor.VerdictOK {
			t.Errorf("doctor --json: %s is %q: %+v", n, verdicts[n], doc.Checks)
		}
	}
	if doc.Summary.Failures != 0 || doc.Summary.Checks != doc.Summary.OK {
		t.Errorf("doctor --json summary %+v", doc.Summary)
	}

	// The agent directory copied to another machine: the relay reports a
	// duplicate identity, with the fix.
	other, _ := dtMachine(t, "a-cloned-machine")
	c.env = append(c.env, "OUTPOST_MACHINE_ID_FILE="+other)
	r = c.run(args...)
	if r.code != 1 {
		t.Fatalf("doctor on a clone: want exit 1, got\n%s", r)
	}
	if !strings.Contains(r.stdout, "identity "+agentDir+": the agent directory was copied or baked into an image") ||
		!dtSummary.MatchString(dtLastLine(r.stdout)) || r.stderr != "outpost: 1 of 7 checks failed\n" {
		t.Errorf("doctor on a clone:\n%s", r)
	}
}

// TestDoctorFailure checks a relay that does not answer: exit 1, the fix
// line, the summary, and nothing created in the data directory.
func TestDoctorFailure(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	addr := relaytest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)

	r := c.run("doctor", "--proxy", "https://"+addr, "--skip", "load")
	if r.code != 1 {
		t.Fatalf("want exit 1, got\n%s", r)
	}
	fix := "  port " + addr + ": open TCP port " + port + " on 127.0.0.1 in the firewall ACL / security group"
	if !strings.Contains(r.stdout, "\nFixes:\n"+fix) {
		t.Errorf("no fix line %q in\n%s", fix, r.stdout)
	}
	if got := dtLastLine(r.stdout); got != "1 checks: 0 ok, 0 warnings, 1 failures" {
		t.Errorf("summary line %q", got)
	}
	if r.stderr != "outpost: 1 of 1 checks failed\n" {
		t.Errorf("stderr %q", r.stderr)
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "health https://"+addr) && !strings.Contains(l, "skip") {
			t.Errorf("health should be skipped behind a closed port: %q", l)
		}
	}
	if entries, _ := os.ReadDir(c.data); len(entries) != 0 {
		t.Errorf("doctor wrote into the data directory: %v", entries)
	}

	var doc struct {
		Checks []doctor.Check `json:"checks"`
	}
	r = c.run("doctor", "--proxy", "https://"+addr, "--skip", "load", "--json")
	mustOneJSON(t, r.stdout, &doc)
	if r.code != 1 || len(doc.Checks) == 0 {
		t.Errorf("doctor --json: %s", r)
	}
	for _, ch := range doc.Checks {
		if ch.Name == doctor.CheckPort && (ch.Verdict != doctor.VerdictFail || !strings.Contains(ch.Fix, "open TCP port "+port)) {
			t.Errorf("port check %+v", ch)
		}
	}

	c.fails(2, "invalid --ca-sha256", "doctor", "--ca-sha256", "abc")
	c.fails(2, "invalid --skip \"bogus\"", "doctor", "--skip", "bogus")
	c.fails(2, "invalid --proxy", "doctor", "--proxy", "relay:8443")
}
