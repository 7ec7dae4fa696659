package main

// The relay a quick deployment started from DIR/relay: started detached,
// and started again when the agent starts and finds it not running. Under
// systemd the relay runs in the agent's unit, so a restart of the unit (an
// agent upgrade, a reboot) stops it; without this the proxy server stayed
// down until someone started it by hand.

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"outpost/relay"
)

// relayArgsFile (in DIR/relay) is the joined relay's command line without
// its one-time join token, written once it joined.
const relayArgsFile = "relay.args.json"

// startRelay starts `outpost ARGV` detached in data with its output
// appended to data/relay.log, records its pid (relayPIDFile) and reaps it
// when it ends, sending its exit on the returned channel.
func (r *agentRun) startRelay(exe, data string, argv []string) (pid int, logPath string, offset int64, exited <-chan error, err error) {
	logPath = filepath.Join(data, "relay.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, logPath, 0, nil, err
	}
	defer logFile.Close()
	offset, _ = logFile.Seek(0, io.SeekEnd)
	proc := exec.Command(exe, argv...)
	proc.Dir = data
	proc.Stdout, proc.Stderr = logFile, logFile
	detach(proc)
	if err := proc.Start(); err != nil {
		return 0, logPath, offset, nil, err
	}
	pid = proc.Process.Pid
	if err := os.WriteFile(filepath.Join(data, relayPIDFile), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		r.logf("deploy-proxy: %v (uninstall may not find this relay before it joined)", err)
	}
	ch := make(chan error, 1)
	go func() {
		// Reap the child if it ends while the agent runs.
		err := proc.Wait()
		r.logf("deploy-proxy: relay (pid %d) exited: %v (see %s)", pid, exitText(err), logPath)
		ch <- err
	}()
	return pid, logPath, offset, ch, nil
}

// saveRelayArgs keeps argv without "--join TOKEN" for restartDeployedRelay.
func (r *agentRun) saveRelayArgs(data string, argv []string) {
	var keep []string
	for i := 0; i < len(argv); i++ {
		if argv[i] == "--join" {
			i++
			continue
		}
		keep = append(keep, argv[i])
	}
	b, _ := json.Marshal(keep)
	if err := writeFileAtomic(filepath.Join(data, relayArgsFile), append(b, '\n'), 0o600); err != nil {
		r.logf("deploy-proxy: %v (the relay will not be started again with the agent)", err)
	}
}

// restartDeployedRelay starts the deployed relay again when it joined and
// is not running (the agent's unit was restarted, the host rebooted).
func (r *agentRun) restartDeployedRelay(dir string) {
	data := filepath.Join(dir, agentRelayDir)
	b, err := os.ReadFile(filepath.Join(data, relayArgsFile))
	if err != nil || !relay.Joined(data) {
		return
	}
	var argv []string
	if err := json.Unmarshal(b, &argv); err != nil || len(argv) == 0 || argv[0] != "relay" || !slices.Contains(argv, data) {
		r.logf("deploy-proxy: %s is damaged: the relay deployed in %s is not started again", relayArgsFile, data)
		return
	}
	if pid := runningRelay(data); pid != 0 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		r.logf("deploy-proxy: %v: the relay deployed in %s is not started again", err, data)
		return
	}
	pid, logPath, _, _, err := r.startRelay(exe, data, argv)
	if err != nil {
		r.logf("deploy-proxy: start the relay deployed in %s again: %v", data, err)
		return
	}
	r.logf("deploy-proxy: the relay deployed in %s was not running: started it again (pid %d, %s; log %s)", data, pid, strings.Join(argv[1:], " "), logPath)
}

// runningRelay is the pid of the relay deployed in data that runs, 0 when
// none does (see relayRuns).
func runningRelay(data string) int {
	for _, pid := range relayPIDs(data) {
		if relayRuns(pid, data) {
			return pid
		}
	}
	return 0
}

// relayPIDs are the pids the relay deployed in data may have: the one the
// agent started (relayPIDFile) and the one of its run file.
func relayPIDs(data string) []int {
	var pids []int
	if b, err := os.ReadFile(filepath.Join(data, relayPIDFile)); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pids = append(pids, pid)
		}
	}
	if info, err := relay.ReadRunFile(data, "relay"); err == nil && !slices.Contains(pids, info.PID) {
		pids = append(pids, info.PID)
	}
	return pids
}
