//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"outpost/relay"
	"outpost/relay/relaytest"
	"outpost/store"
)

// startFakeRelay starts a process whose command line names data as the
// deployed relay's does (--data DATA), records its pid in
// DATA/relay.pid, and returns the pid. With ignoreTerm it ignores SIGTERM
// and ends only with SIGKILL.
func startFakeRelay(t *testing.T, data string, ignoreTerm ...bool) int {
	t.Helper()
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	trap := `trap "exit 0" TERM;`
	if len(ignoreTerm) > 0 && ignoreTerm[0] {
		trap = `trap "" TERM;`
	}
	cmd := exec.Command("sh", "-c", trap+" while :; do sleep 0.05; done", "outpost-relay", "--data", data)
	pid := startReaped(t, cmd)
	if err := os.WriteFile(filepath.Join(data, relayPIDFile), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return pid
}

// startReaped starts cmd, reaps it when it ends and kills it at the end
// of the test if it still runs.
func startReaped(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd.Process.Pid
}

// TestStopDeployedRelay: the relay named by DIR/relay/relay.pid or its run
// file is stopped (SIGKILL when it ignores SIGTERM), a pid now used by
// another program is left alone.
func TestStopDeployedRelay(t *testing.T) {
	old := relayStopGrace
	relayStopGrace = 300 * time.Millisecond
	t.Cleanup(func() { relayStopGrace = old })
	for _, tc := range []struct {
		name      string
		setup     func(t *testing.T, data string) int
		wantAlive bool
	}{
		{"pid file", func(t *testing.T, data string) int { return startFakeRelay(t, data) }, false},
		{"ignores SIGTERM", func(t *testing.T, data string) int { return startFakeRelay(t, data, true) }, false},
		{"run file only", func(t *testing.T, data string) int {
			pid := startFakeRelay(t, data)
			os.Remove(filepath.Join(data, relayPIDFile))
			b, _ := json.Marshal(relay.RunInfo{PID: pid})
			os.MkdirAll(filepath.Join(data, "run"), 0o700)
			if err := os.WriteFile(filepath.Join(data, "run", "relay.json"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			return pid
		}, false},
		{"pid reused by another program", func(t *testing.T, data string) int {
			os.MkdirAll(data, 0o700)
			pid := startReaped(t, exec.Command("sleep", "30"))
			os.WriteFile(filepath.Join(data, relayPIDFile), []byte(strconv.Itoa(pid)), 0o600)
			return pid
		}, true},
		{"no relay", func(t *testing.T, data string) int { return 0 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pid := tc.setup(t, filepath.Join(dir, agentRelayDir))
			time.Sleep(100 * time.Millisecond) // the trap is set
			did, err := stopDeployedRelay(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := pid != 0 && processRunning(pid); got != tc.wantAlive {
				t.Errorf("pid %d running: got %v, want %v", pid, got, tc.wantAlive)
			}
			if got, want := len(did), map[bool]int{true: 0, false: 1}[tc.wantAlive || pid == 0]; got != want {
				t.Errorf("did: got %q, want %d line(s)", did, want)
			}
		})
	}
}

// TestRemoveAgentDir: only what the agent wrote goes; a directory holding
// other files is kept with them.
func TestRemoveAgentDir(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    []string
		wantGone bool
		wantLeft []string
	}{
		{"agent files", []string{"identity.json", ".identity.json.tmp-1", "buffer/events.log", "relay/relay.log", "service.env", "upgrade/trial.json", "release-keys.json"}, true, nil},
		{"temp files a crash left", []string{"identity.json", "release-keys.json.tmp", "service.env.tmp", ".service.env.tmp123"}, true, nil},
		{"temp file of a foreign file", []string{"identity.json", "notes.txt.tmp"}, false, []string{"notes.txt.tmp"}},
		{"foreign file", []string{"identity.json", "buffer/seq", "notes.txt"}, false, []string{"notes.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "agent")
			for _, f := range tc.files {
				os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o700)
				if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := removeAgentDir(dir); err != nil {
				t.Fatal(err)
			}
			ents, err := os.ReadDir(dir)
			if gone := os.IsNotExist(err); gone != tc.wantGone {
				t.Fatalf("directory gone: got %v, want %v", gone, tc.wantGone)
			}
			var left []string
			for _, e := range ents {
				left = append(left, e.Name())
			}
			if got, want := strings.Join(left, ","), strings.Join(tc.wantLeft, ","); got != want {
				t.Errorf("left: got %q, want %q", got, want)
			}
		})
	}
}

// TestAgentUninstall: a real agent process, uninstalled with 'agent
// uninstall' on the management host, stops the relay it deployed, reports
// the uninstall, removes its directory and exits 0; no process of either is
// left (checked by pid). Run as the unit 'service install agent' wrote
// (fake systemctl and systemd-run on PATH), it also has the unit removed:
// through a transient unit running 'service uninstall agent', or itself
// without systemd-run. Started by hand from a service's environment, it
// leaves a unit of the same name alone.
func TestAgentUninstall(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the reference agent reads Linux host facts")
	}
	for _, tc := range []struct {
		name                        string
		invocation, systemdRun, dep bool
		wantCalls                   func(dir, unitDir, sdDir string) []string
		wantUnitGone                bool
	}{
		{"systemd unit with a deployed relay", true, true, true, func(dir, unitDir, sdDir string) []string {
			return []string{"systemd-run --unit outpost-agent-uninstall --description Outpost agent uninstall --collect --no-block --quiet -- " +
				outpostBin + " service uninstall agent --dir " + dir + " --unit-dir " + unitDir + " --systemd-dir " + sdDir,
				"disable --now outpost-agent.service", "daemon-reload"}
		}, true},
		{"systemd unit without systemd-run", true, false, false, func(string, string, string) []string {
			return []string{"disable outpost-agent.service", "daemon-reload"}
		}, true},
		{"started by hand", false, false, false, func(string, string, string) []string { return []string{""} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			f := newFakeSystemd(t, c)
			transientPID := ""
			if tc.systemdRun {
				transientPID = f.withSystemdRun(t)
			}
			m := auStartManager(t, c)
			dir := filepath.Join(t.TempDir(), "agent")
			c.ok(f.with("service", "install", "agent", "--dir", dir, "--bin", outpostBin, "--", "--proxy", m.URL, "--ca-sha256", m.Pin)...)
			os.Truncate(f.log, 0)
			env := []string{"PATH=" + f.bin + string(os.PathListSeparator) + os.Getenv("PATH")}
			if tc.invocation {
				env = append(env, "INVOCATION_ID=0123456789abcdef0123456789abcdef")
			}
			a := auStartAgent(t, m, dir, env, "--unit-dir", f.unitDir, "--systemd-dir", f.sdDir)
			id := arAgentID(t, a)
			waitCond(t, a.proc, 15*time.Second, "agent online", func() bool { return arGetAgent(t, m, id).Online })

			relayPID := 0
			if tc.dep {
				relayPID = auDeploy(t, c, a, id)
			}
			c.ok("agent", "uninstall", id)
			if st := a.waitExit(30 * time.Second); st.ExitCode() != 0 {
				t.Fatalf("agent after uninstall: got %v, want exit 0; stderr:\n%s", st, a.stderr.String())
			}
			if !strings.Contains(a.stdout.String(), "uninstalled by the management host") {
				t.Errorf("agent stdout: got %q, want it to say it was uninstalled", a.stdout.String())
			}
			if transientPID != "" {
				waitCond(t, nil, 15*time.Second, "the transient unit's command to end", func() bool {
					b, err := os.ReadFile(transientPID)
					pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
					return err == nil && pid > 0 && !processRunning(pid)
				})
			}
			auCheckGone(t, dir, a.cmd.Process.Pid, relayPID)
			_, err := os.Stat(filepath.Join(f.unitDir, "outpost-agent.service"))
			if gone := os.IsNotExist(err); gone != tc.wantUnitGone {
				t.Errorf("unit file gone: got %v, want %v", gone, tc.wantUnitGone)
			}
			abs, _ := filepath.Abs(dir)
			if got, want := strings.Join(f.calls(t), "\n"), strings.Join(tc.wantCalls(abs, f.unitDir, f.sdDir), "\n"); got != want {
				t.Errorf("systemctl calls:\ngot  %q\nwant %q", got, want)
			}
			var g store.Agent
			c.json(&g, "agent", "show", id)
			if g.Status != store.StatusUninstalled || g.UninstalledAt.IsZero() {
				t.Errorf("agent show: status %q uninstalled at %v, want uninstalled, acknowledged", g.Status, g.UninstalledAt)
			}
		})
	}
}

// auCheckGone: no process of the agent or of its relay runs (by pid) and
// the agent directory is gone.
func auCheckGone(t *testing.T, dir string, agentPID, relayPID int) {
	t.Helper()
	for what, pid := range map[string]int{"agent": agentPID, "deployed relay": relayPID} {
		if pid != 0 && processRunning(pid) {
			t.Errorf("%s (pid %d) still runs after the uninstall", what, pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("agent directory still there after the uninstall (%v)", err)
	}
}

// auStartManager is a management host on the CLI's data directory with an
// account, an install key and a cluster to deploy a relay into.
func auStartManager(t *testing.T, c *cli) *arManager {
	t.Helper()
	rm := relaytest.Start(t, relaytest.Options{Dir: c.data, Config: func(cfg *relay.Config) {
		cfg.PollTimeout = 2 * time.Second
		cfg.HeartbeatInterval = 200 * time.Millisecond
	}})
	ctx := store.WithActor(context.Background(), "tester@test")
	acct, _, err := rm.DB.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ic, err := rm.DB.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rm.DB.CreateCluster(ctx, store.ClusterInput{AccountID: acct.ID, Name: "edge", Address: "edge.example.test"}); err != nil {
		t.Fatal(err)
	}
	return &arManager{DB: rm.DB, Col: rm.Collector, Srv: rm.Relay, URL: rm.TLSURL, Pin: rm.Pin(), Account: acct, Key: ic.Key}
}

// auStartAgent is arStartAgent with extra environment (a later entry wins;
// INVOCATION_ID of the test's own environment is dropped).
func auStartAgent(t *testing.T, m *arManager, dir string, env []string, extra ...string) *arAgent {
	t.Helper()
	args := append([]string{"agent", "run", "--key", m.Key, "--ca-sha256", m.Pin, "--dir", dir, "--proxy", m.URL,
		"--inventory-every", "1s", "--event-every", "200ms", "--poll-wait", "2s"}, extra...)
	cmd := exec.Command(outpostBin, args...)
	for _, kv := range arEnv(t) {
		if !strings.HasPrefix(kv, "INVOCATION_ID=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return &arAgent{proc: startProc(t, cmd, "agent in "+filepath.Base(dir)), dir: dir}
}

// auDeploy deploys a relay onto the agent's host and returns its pid once
// it joined and listens; the relay is killed at the end of the test if it
// still runs.
func auDeploy(t *testing.T, c *cli, a *arAgent, id string) int {
	t.Helper()
	var jt store.JoinToken
	c.json(&jt, "proxy", "deploy", "--cluster", "edge", "--asset", id, "--listen", "https://"+relaytest.FreeAddr(t))
	data := filepath.Join(a.dir, agentRelayDir)
	pid := 0
	waitCond(t, a.proc, 30*time.Second, "the deployed relay to listen", func() bool {
		info, err := relay.ReadRunFile(data, "relay")
		if err == nil && processRunning(info.PID) {
			pid = info.PID
		}
		return pid != 0
	})
	t.Cleanup(func() {
		if processRunning(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if !strings.Contains(a.stderr.String(), fmt.Sprintf("started relay pid=%d", pid)) {
		t.Errorf("the agent's log does not name relay pid %d:\n%s", pid, a.stderr.String())
	}
	return pid
}

// TestDeployedRelayStartsAgainWithTheAgent: the relay of a quick
// deployment stopped with the agent (as systemd stops the agent's unit,
// relay included, on a restart or an upgrade) is started again by the
// next start of the agent, from its joined identity and with its listen
// addresses.
func TestDeployedRelayStartsAgainWithTheAgent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the reference agent reads Linux host facts")
	}
	c := newCLI(t)
	m := auStartManager(t, c)
	dir := filepath.Join(t.TempDir(), "agent")
	a := auStartAgent(t, m, dir, nil)
	id := arAgentID(t, a)
	waitCond(t, a.proc, 15*time.Second, "agent online", func() bool { return arGetAgent(t, m, id).Online })
	first := auDeploy(t, c, a, id)
	data := filepath.Join(dir, agentRelayDir)
	before, err := relay.ReadRunFile(data, "relay")
	if err != nil {
		t.Fatal(err)
	}
	waitCond(t, a.proc, 10*time.Second, "the relay's arguments saved", func() bool {
		_, err := os.Stat(filepath.Join(data, relayArgsFile))
		return err == nil
	})
	a.stop()
	if err := terminate(first, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	a = auStartAgent(t, m, dir, nil)
	var again relay.RunInfo
	waitCond(t, a.proc, 30*time.Second, "the relay started again and listening", func() bool {
		again, err = relay.ReadRunFile(data, "relay")
		return err == nil && again.PID != first && processRunning(again.PID)
	})
	t.Cleanup(func() { terminate(again.PID, 5*time.Second) })
	if got, want := strings.Join(again.URLs, " "), strings.Join(before.URLs, " "); got != want {
		t.Errorf("relay URLs after the restart: got %s, want %s", got, want)
	}
	if !strings.Contains(a.stderr.String(), fmt.Sprintf("started it again pid=%d", again.PID)) {
		t.Errorf("the agent's log does not say it started the relay again:\n%s", a.stderr.String())
	}
	b, _ := os.ReadFile(filepath.Join(data, relayArgsFile))
	if strings.Contains(string(b), "--join") {
		t.Errorf("%s keeps the join token: %s", relayArgsFile, b)
	}
	a.stop()
}
