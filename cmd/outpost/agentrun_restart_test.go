package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/relaytest"
)

// arStartSaved runs `outpost agent run --dir dir` with the test timing
// and only the flags given: no default --proxy, --key or --ca-sha256.
func arStartSaved(t *testing.T, dir string, extra ...string) *arAgent {
	t.Helper()
	args := append([]string{"agent", "run", "--dir", dir, "--inventory-every", "1s", "--event-every", "200ms", "--poll-wait", "2s"}, extra...)
	cmd := exec.Command(outpostBin, args...)
	cmd.Env = arEnv(t)
	return &arAgent{proc: startProc(t, cmd, "agent "+strings.Join(extra, " ")+" in "+filepath.Base(dir)), dir: dir}
}

// After enrolment the agent runs from its directory alone: relays, CA pin
// and identity are saved there (owner-only); a later --key is ignored with
// a note, a later --proxy replaces the saved list with a note.
func TestAgentRunRestartsFromItsDirectory(t *testing.T) {
	t.Parallel()
	m := arStartManager(t, "")
	dir := filepath.Join(t.TempDir(), "agent")
	a := arStartAgent(t, m, dir)
	id := arAgentID(t, a)
	waitCond(t, a.proc, 15*time.Second, "first check-in", func() bool { return !arGetAgent(t, m, id).LastCheckin.IsZero() })
	a.stop()

	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, agentsim.IdentityFile): 0o600} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: got %v (%v), want mode %v", path, st.Mode().Perm(), err, want)
		}
	}
	saved, ok, err := (&agentsim.DiskIdentity{Dir: dir}).Load()
	if !ok || err != nil || saved.CASHA256 != m.Pin || !slices.Contains(saved.Proxies, m.URL) {
		t.Fatalf("identity file: got %+v (%v), want the CA pin %s and relay %s", saved, err, m.Pin, m.URL)
	}

	checksIn := func(p *arAgent, what string) {
		t.Helper()
		before := arGetAgent(t, m, id).LastCheckin
		waitCond(t, p.proc, 15*time.Second, what, func() bool { return arGetAgent(t, m, id).LastCheckin.After(before) })
		if got := arAgentID(t, p); got != id {
			t.Fatalf("%s: agent id changed %s -> %s", what, id, got)
		}
		p.stop()
	}

	// --dir alone.
	checksIn(arStartSaved(t, dir), "check-in with --dir alone")

	// A key given to an enrolled agent is ignored, whatever it is.
	p := arStartSaved(t, dir, "--key", "ik_anything")
	checksIn(p, "check-in with an ignored --key")
	if !strings.Contains(p.stderr.String(), "note: --key ignored") {
		t.Errorf("no note about the ignored key:\n%s", p.stderr.String())
	}

	// A later --proxy replaces the saved list (first URL down: failover).
	dead := "https://" + relaytest.FreeAddr(t)
	p = arStartSaved(t, dir, "--proxy", dead+","+m.URL)
	checksIn(p, "check-in with a new --proxy list")
	if !strings.Contains(p.stderr.String(), "note: --proxy replaces the saved relay list") {
		t.Errorf("no note about the replaced list:\n%s", p.stderr.String())
	}
	if got, _, _ := (&agentsim.DiskIdentity{Dir: dir}).Load(); !slices.Equal(got.Proxies, []string{dead, m.URL}) || got.CASHA256 != m.Pin {
		t.Errorf("identity after --proxy: got proxies %v pin %q, want [%s %s] and the pin kept", got.Proxies, got.CASHA256, dead, m.URL)
	}
}

// A relay URL that refuses the agent is named with the reason in the log.
func TestAgentRunLogsWhyARelayRefused(t *testing.T) {
	t.Parallel()
	rm := relaytest.Start(t, relaytest.Options{})
	m := arStartManager(t, "")
	dir := filepath.Join(t.TempDir(), "agent")
	a := arStartAgent(t, m, dir)
	arAgentID(t, a)
	a.stop()
	// Only a plain listener of a TLS-only relay left: "refused: needs TLS".
	p := arStartSaved(t, dir, "--proxy", rm.PlainURL)
	waitCond(t, p.proc, 15*time.Second, "the refusal logged", func() bool {
		return strings.Contains(p.stderr.String(), "refused: needs TLS ("+rm.PlainURL+")")
	})
	p.stop()
}
