package main

// The relay of a quick deployment (deploy-proxy), run from DIR/relay:
// started detached (detach_unix.go: its own session), and started again when the agent starts and finds it not running. Under
// systemd the relay runs in the agent's unit, so a restart of the unit (an
// agent upgrade, a reboot) stops it; without this the proxy server stayed
// down until someone started it by hand.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"outpost/agentsim"
	"outpost/relay"
	"outpost/relay/wire"
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
		r.log.Warn("deploy-proxy: pid file not written: uninstall may not find this relay before it joined", "err", err)
	}
	ch := make(chan error, 1)
	go func() {
		// Reap the child if it ends while the agent runs.
		err := proc.Wait()
		r.log.Warn("deploy-proxy: relay exited", "pid", pid, "err", exitText(err), "log", logPath)
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
		r.log.Warn("deploy-proxy: the relay will not be started again with the agent", "err", err)
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
		r.log.Warn("deploy-proxy: the relay's saved arguments are damaged: it is not started again", "file", relayArgsFile, "dir", data)
		return
	}
	if pid := runningRelay(data); pid != 0 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		r.log.Warn("deploy-proxy: the deployed relay is not started again", "dir", data, "err", err)
		return
	}
	pid, logPath, _, _, err := r.startRelay(exe, data, argv)
	if err != nil {
		r.log.Warn("deploy-proxy: starting the deployed relay again failed", "dir", data, "err", err)
		return
	}
	r.log.Info("deploy-proxy: the deployed relay was not running: started it again", "pid", pid, "dir", data, "args", strings.Join(argv[1:], " "), "log", logPath)
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

// deployWait is how long the agent waits for the relay it started to join
// (done) or exit (failed) before it reports the command running and goes on
// checking in; the outcome is then reported with a later check-in.
const deployWait = 20 * time.Second

// deployProxy is the quick deployment of a proxy server onto this asset:
// a relay that joins the management host with the one-time token. It
// returns nil once the relay joined and listens (its run file names its
// pid), the relay's own error when it exited first (for example a port
// already in use), or agentsim.ErrCommandRunning when neither happened
// within deployWait.
func (r *agentRun) deployProxy(ag *agentsim.Agent, client *agentsim.Client, dir string, c wire.Command) error {
	var args struct {
		Token   string   `json:"token"`
		Cluster string   `json:"cluster"`
		Listen  []string `json:"listen"`
		Public  []string `json:"public"`
		Manager string   `json:"manager"`
	}
	if err := json.Unmarshal(c.Args, &args); err != nil || args.Token == "" {
		return fmt.Errorf("deploy-proxy: no join token in the command (it was used or has expired: deploy again)")
	}
	data := filepath.Join(dir, agentRelayDir)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("deploy-proxy: %w", err)
	}
	if info, err := relay.ReadRunFile(data, "relay"); err == nil && processAlive(info.PID) {
		r.log.Info("deploy-proxy: a relay already runs: nothing to do", "cluster", args.Cluster, "dir", data, "pid", info.PID)
		return nil
	}
	// The management host's URL comes with the command; older management
	// hosts sent none, and then the relay in use is the best guess.
	manager := args.Manager
	if p := client.Proxies(); manager == "" && len(p) > 0 {
		manager = p[0]
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("deploy-proxy: %w", err)
	}
	argv := []string{"relay", "--data", data, "--manager", manager, "--join", args.Token}
	if r.caPin != "" {
		argv = append(argv, "--ca-sha256", r.caPin)
	}
	listen := args.Listen
	if len(listen) == 0 {
		listen = r.deployListen
	}
	for _, l := range listen {
		argv = append(argv, "--listen", l)
	}
	for _, u := range args.Public {
		argv = append(argv, "--public", u)
	}
	pid, logPath, offset, exited, err := r.startRelay(exe, data, argv)
	if err != nil {
		return fmt.Errorf("deploy-proxy: %w", err)
	}
	r.log.Info("deploy-proxy: started relay", "pid", pid, "cluster", args.Cluster, "manager", manager, "dir", data, "log", logPath)
	outcome := func(timeout <-chan time.Time) (error, bool) {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case err := <-exited:
				return fmt.Errorf("relay exited (%s): %s", exitText(err), relayFailure(logPath, offset)), true
			case <-tick.C:
				if info, err := relay.ReadRunFile(data, "relay"); err == nil && info.PID == pid {
					r.log.Info("deploy-proxy: relay joined its cluster", "pid", pid, "cluster", args.Cluster, "urls", info.URLs)
					r.saveRelayArgs(data, argv)
					return nil, true
				}
			case <-timeout:
				return nil, false
			}
		}
	}
	if err, ok := outcome(time.After(deployWait)); ok {
		return err
	}
	go func() {
		err, _ := outcome(nil)
		res := wire.CommandResult{ID: c.ID, State: wire.StateDone}
		if err != nil {
			res = wire.CommandResult{ID: c.ID, State: wire.StateFailed, Error: err.Error()}
		}
		ag.Report(res)
	}()
	return agentsim.ErrCommandRunning
}

var listenInUse = regexp.MustCompile(`listen tcp ([^ ]+): bind: address already in use`)

// relayFailure is why the relay started by deploy-proxy stopped: its last
// error line in the log written since offset, a port in use said plainly.
func relayFailure(logPath string, offset int64) string {
	b, err := os.ReadFile(logPath)
	if err != nil || int64(len(b)) < offset {
		return "see " + logPath
	}
	var last string
	for _, l := range strings.Split(string(b[offset:]), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			last = l
		}
	}
	if m := listenInUse.FindStringSubmatch(last); m != nil {
		return fmt.Sprintf("port %s already in use on this host: deploy again with other --listen values", m[1])
	}
	if last == "" {
		return "no error in " + logPath
	}
	return strings.TrimPrefix(last, "outpost: ")
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// processAlive reports whether pid names a running process.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil
}
