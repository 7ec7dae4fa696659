package main

// Uninstalling the reference agent, by the management host's command or by
// 'outpost service uninstall agent': the relay a quick deployment started is
// stopped, the agent directory removed, and under systemd the unit too, so
// nothing of the agent is left running or on disk.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"outpost/agentsim"
)

// relayPIDFile (in DIR/relay) names the relay deploy-proxy started, so it
// can be stopped before it wrote its run file (still joining) or after.
const relayPIDFile = "relay.pid"

// relayStopGrace is how long a deployed relay gets to stop on SIGTERM
// (flush its spool, close its listeners) before SIGKILL.
var relayStopGrace = 10 * time.Second

// agentEntries are what the agent writes in its directory; only these are
// removed, so a --dir pointed at a directory holding other files (a home
// directory) loses nothing else.
var agentEntries = []string{agentsim.IdentityFile, agentBufferDir, agentRelayDir, serviceEnvFile, agentUpgradeDir, agentKeysFile}

// beforeUninstall is Agent.OnUninstall: the deployed relay is stopped
// before the uninstall is acknowledged; an error is reported instead.
func (r *agentRun) beforeUninstall(dir string) error {
	if r.up.isBusy() {
		// Its restart would bring back what the uninstall removes.
		return errors.New("uninstall: an upgrade is under way on this agent: send the uninstall again once it ended")
	}
	did, err := stopDeployedRelay(dir)
	for _, d := range did {
		r.log.Info("uninstall", "did", d)
	}
	return err
}

// removeAgent stops the relay deployed from dir and, when removeDir is set,
// removes the agent directory. It says what it did.
func removeAgent(dir string, removeDir bool) ([]string, error) {
	did, err := stopDeployedRelay(dir)
	if err != nil || !removeDir {
		return did, err
	}
	d, err := removeAgentDir(dir)
	return append(did, d...), err
}

// stopDeployedRelay stops the relay a quick deployment started from
// DIR/relay (SIGTERM, then SIGKILL after 10 s) and waits until it is gone.
// A pid is signalled only while its command line names that data
// directory, so a reused pid is never hit.
func stopDeployedRelay(dir string) ([]string, error) {
	data := filepath.Join(dir, agentRelayDir)
	var did []string
	for _, pid := range relayPIDs(data) {
		if !relayRuns(pid, data) {
			continue
		}
		if err := terminate(pid, relayStopGrace); err != nil {
			return did, fmt.Errorf("stop the relay deployed in %s (pid %d): %w", data, pid, err)
		}
		did = append(did, fmt.Sprintf("stopped the relay deployed in %s (pid %d)", data, pid))
	}
	return did, nil
}

// relayRuns reports whether pid is a live (not zombie) process whose
// command line has data as an argument. Without /proc the command line
// cannot be read and a live pid counts.
func relayRuns(pid int, data string) bool {
	if !processRunning(pid) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return !procMounted() || !errors.Is(err, os.ErrNotExist)
	}
	return slices.Contains(strings.Split(string(b), "\x00"), data)
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// processRunning is processAlive without zombies: a child that exited but
// was not reaped yet (or was reparented to an init that is slow to reap) no
// longer runs.
func processRunning(pid int) bool {
	if !processAlive(pid) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) || !procMounted()
	}
	// pid (comm) STATE ...: comm may hold spaces and parentheses.
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// terminate sends SIGTERM, then SIGKILL once grace has passed, and waits
// until the process is gone.
func terminate(pid int, grace time.Duration) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	if err := p.Signal(syscall.SIGTERM); err != nil && processRunning(pid) {
		return err
	}
	if waitGone(pid, grace) {
		return nil
	}
	if err := p.Signal(syscall.SIGKILL); err != nil && processRunning(pid) {
		return err
	}
	if waitGone(pid, 5*time.Second) {
		return nil
	}
	return errors.New("still running 5s after SIGKILL")
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for processRunning(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// removeAgentDir removes what the agent wrote in dir (its temporary files
// included), then dir itself when nothing else is left in it.
func removeAgentDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var others []string
	for _, e := range ents {
		if !agentEntry(e.Name()) {
			others = append(others, e.Name())
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return nil, err
		}
	}
	if len(others) > 0 {
		return []string{fmt.Sprintf("removed the agent's files from %s; kept the directory: it also holds %s", dir, strings.Join(others, ", "))}, nil
	}
	if err := os.Remove(dir); err != nil {
		// A sandboxed unit sees dir as a mount point (ReadWritePaths=):
		// it is empty now, and 'service uninstall' removes it.
		return []string{"emptied " + dir}, fmt.Errorf("remove %s: %w", dir, err)
	}
	return []string{"removed " + dir}, nil
}

func agentEntry(name string) bool {
	for _, e := range agentEntries {
		if name == e || name == e+".tmp" || strings.HasPrefix(name, "."+e+".tmp") { // wire.WriteFileAtomic, CreateTemp
			return true
		}
	}
	return false
}

// systemdUnit reports whether this agent runs as the unit 'service install
// agent' wrote for dir: systemd started it (INVOCATION_ID), systemd runs
// the host, and the unit file runs an agent on this very directory (an
// agent started by hand from a service's environment, or on another
// directory, leaves the unit alone).
func (r *agentRun) systemdUnit(dir string) (ctl string, ok bool) {
	if os.Getenv("INVOCATION_ID") == "" {
		return "", false
	}
	o := serviceOpts{unitDir: r.unitDir, systemdDir: r.systemdDir}
	ctl, err := o.checkSystemd()
	if err != nil {
		return "", false
	}
	b, err := os.ReadFile(filepath.Join(r.unitDir, serviceKinds["agent"].unit()))
	if err != nil {
		return "", false
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // as 'service install' wrote it
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "ExecStart=") && strings.Contains(l+" ", " --dir "+unitQuote(dir)+" ") {
			return ctl, true
		}
	}
	return "", false
}

// removeOwnUnit removes this agent's unit after an uninstall. The hardened
// unit cannot write /etc (ProtectSystem=strict) nor remove its directory
// (a mount point in its sandbox), so the work goes to a transient unit
// outside it: 'outpost service uninstall agent', which also stops this
// process. Without systemd-run the agent removes the unit itself and exits 0.
func (r *agentRun) removeOwnUnit(ctl, dir string) {
	exe, err := os.Executable()
	if err == nil {
		var run string
		if run, err = exec.LookPath("systemd-run"); err == nil {
			argv := []string{"--unit", "outpost-agent-uninstall", "--description", "Outpost agent uninstall",
				"--collect", "--no-block", "--quiet", "--", exe, "service", "uninstall", "agent",
				"--dir", dir, "--unit-dir", r.unitDir, "--systemd-dir", r.systemdDir}
			var out []byte
			if out, err = exec.Command(run, argv...).CombinedOutput(); err == nil {
				r.log.Info("uninstall: the unit is removed by a transient unit", "command", "systemd-run "+shellJoin(argv))
				return
			}
			err = fmt.Errorf("systemd-run: %v: %s", err, strings.Join(strings.Fields(string(out)), " "))
		}
	}
	r.log.Warn("uninstall: removing the unit from this process", "err", err)
	did, err := removeUnit(ctl, r.unitDir, serviceKinds["agent"], dir, false)
	for _, d := range did {
		r.log.Info("uninstall", "did", d)
	}
	if err != nil {
		r.log.Error("uninstall: the unit is left: remove it as root", "err", err, "command", "outpost service uninstall agent --dir "+shellJoin([]string{dir}))
	}
}
