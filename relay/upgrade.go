package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"outpost/relay/logs"
	"outpost/relay/selfupdate"
	"outpost/relay/wire"
	"outpost/store"
)

// upgrades is a joined relay's upgrade state: results waiting for the next
// heartbeat, the trial this process runs under, and the restart it asks
// the command line for. The zero value is ready once wake and restart are
// made (startTrial).
type upgrades struct {
	mu      sync.Mutex
	pending []report // results not yet taken by a heartbeat answered 200
	busy    bool     // an upgrade is under way in this process
	busyID  int64    // its command id: a redelivery of it is not a second upgrade
	trial   *selfupdate.Trial
	trialID int64 // the command the trial (or its outcome) answers
	healthy bool  // the trial was told (first heartbeat answered)
	keys    []string
	keysErr string // the key chain problem last logged
	// outcomeLogged: the outcome of trialID was logged (it is sent until
	// a heartbeat delivers it).
	outcomeLogged bool
	wake          chan struct{}
	restart       chan selfupdate.Plan
	trialLog      logs.Switch // the log also goes here while on trial
}

// report is one command result and, when someone waits for it to reach
// the management host, the channel closed then.
type report struct {
	r       wire.CommandResult
	sent    chan struct{}
	outcome bool // a trial's outcome, read from DATA/upgrade until delivered
}

// startTrial looks for an upgrade on trial (this process being the new
// version) before anything logs: its log then also goes to the trial log.
func (j *joinedRole) startTrial() {
	j.up.wake = make(chan struct{}, 1)
	j.up.restart = make(chan selfupdate.Plan, 1)
	t, err := selfupdate.Start(j.s.cfg.DataDir)
	if err != nil {
		j.s.log.Error("relay: upgrade trial", "err", err)
		return
	}
	if t == nil {
		return
	}
	j.up.trial, j.up.trialID = t, t.Command
	if f, err := t.Log(); err == nil {
		j.up.trialLog.Set(f)
		j.s.log = logs.Also(j.s.log, &j.up.trialLog, logs.Options{})
	}
	j.s.log.Info("relay: on trial: healthy once the management host answers", "version", t.To, "from", t.From, "command", t.Command)
}

// RestartRequested delivers the plan of an upgrade ready to restart into
// its new binary: the caller closes the server, then calls
// selfupdate.Exec. Nothing arrives under systemd (the watcher restarts
// the unit) or while Config.Binary is unset.
func (s *Server) RestartRequested() <-chan selfupdate.Plan {
	if s.joined == nil {
		return nil // the management host is never upgraded by a command
	}
	return s.joined.up.restart
}

// post queues a result for the next heartbeat, which is sent at once.
func (j *joinedRole) post(r wire.CommandResult) chan struct{} {
	sent := make(chan struct{})
	j.up.mu.Lock()
	j.up.pending = append(j.up.pending, report{r: r, sent: sent})
	j.up.mu.Unlock()
	select {
	case j.up.wake <- struct{}{}:
	default:
	}
	return sent
}

// takeResults returns the results to send with a heartbeat: a finished
// trial's outcome first, until a heartbeat delivered it, then those posted.
func (j *joinedRole) takeResults() []report {
	var out []report
	if r, ok := selfupdate.PendingOutcome(j.s.cfg.DataDir); ok {
		j.up.mu.Lock()
		if j.up.trialID != r.ID || !j.up.outcomeLogged {
			j.s.log.Info("relay: upgrade command ended", "command", r.ID, "state", r.State, "reason", r.Error)
		}
		j.up.trialID, j.up.outcomeLogged = r.ID, true
		j.up.mu.Unlock()
		out = append(out, report{r: r, outcome: true})
	}
	j.up.mu.Lock()
	defer j.up.mu.Unlock()
	return append(out, j.up.pending...)
}

// delivered drops the results a 200 answer took and wakes their waiters;
// a trial's outcome delivered ends the trial (selfupdate.Reported).
func (j *joinedRole) delivered(rs []report) {
	n := 0
	for _, r := range rs {
		if r.outcome {
			selfupdate.Reported(j.s.cfg.DataDir, r.r.ID)
			continue
		}
		n++
		if r.sent != nil {
			close(r.sent)
		}
	}
	j.up.mu.Lock()
	j.up.pending = j.up.pending[n:]
	j.up.mu.Unlock()
}

// answered is called after each heartbeat answered 200: the first one
// ends this process's trial healthy. It reports whether an outcome is now
// waiting (the heartbeat loop then goes again at once).
func (j *joinedRole) answered() bool {
	j.up.mu.Lock()
	t := j.up.trial
	if t == nil || j.up.healthy {
		j.up.mu.Unlock()
		return false
	}
	j.up.healthy = true
	j.up.mu.Unlock()
	defer func() { // the trial is over: the log goes on only where it always went
		j.up.trialLog.Set(nil)
	}()
	if err := t.Healthy(); err != nil {
		j.s.log.Error("relay: trial", "version", t.To, "err", err)
		return false
	}
	j.s.log.Info("relay: healthy: upgrade done", "version", t.To, "from", t.From)
	return true
}

// handled reports whether command id is the upgrade this process's trial
// answers: delivered again (its running report was lost), it is answered
// by the trial's outcome, not carried out a second time.
func (j *joinedRole) handled(id int64) bool {
	j.up.mu.Lock()
	defer j.up.mu.Unlock()
	return id != 0 && id == j.up.trialID
}

// keepReleaseKey saves the release public key a heartbeat brings when the
// relay has none yet (the key was made after it joined). A different key
// than the one kept is not taken here: the key the relay trusts changes
// only through the chain (followKeyChain).
func (j *joinedRole) keepReleaseKey(k string) {
	j.identMu.Lock()
	defer j.identMu.Unlock()
	if k == "" || j.ident.ReleaseKey != "" {
		return
	}
	id := *j.ident
	id.ReleaseKey = k
	if err := j.saveIdentity(&id); err != nil {
		j.s.log.Error("relay: saving the release key", "err", err)
		return
	}
	j.ident.ReleaseKey = k
}

// followKeyChain takes the release keys a heartbeat's chain leads to from
// the key this relay trusts: a rotated key is accepted only through links
// each signed by the key before it (store.VerifyKeyChain). newest is the
// key the management host signs with now; one not reached is logged.
func (j *joinedRole) followKeyChain(newest string, chain []wire.ReleaseKeyLink) {
	trusted := j.releaseKey()
	if trusted == "" {
		return
	}
	keys, err := store.VerifyKeyChain(trusted, chain)
	j.up.mu.Lock()
	defer j.up.mu.Unlock()
	j.up.keys = keys
	msg := ""
	if err != nil {
		msg = store.ErrorMessage(err)
	} else if newest != "" && !slices.Contains(keys, strings.ToLower(newest)) {
		msg = fmt.Sprintf("the management host signs with release key %s, which the key this relay trusts (%s) does not lead to", short(newest), short(trusted))
	}
	if msg != j.up.keysErr {
		if msg != "" {
			j.s.log.Warn("relay: release key chain: trusting the keys reached", "problem", msg, "keys", len(keys))
		}
		j.up.keysErr = msg
	}
}

// releaseKeys are the keys release signatures are checked against: those
// the chain leads to, else the one kept at join.
func (j *joinedRole) releaseKeys() []string {
	j.up.mu.Lock()
	keys := j.up.keys
	j.up.mu.Unlock()
	if len(keys) > 0 {
		return keys
	}
	if k := j.releaseKey(); k != "" {
		return []string{k}
	}
	return nil
}

// releaseKey is the release public key this relay trusts, "" when none.
func (j *joinedRole) releaseKey() string {
	j.identMu.Lock()
	defer j.identMu.Unlock()
	if j.ident == nil {
		return ""
	}
	return j.ident.ReleaseKey
}

// runRelayCommand carries out a command from the management host other
// than an upgrade (startUpgrade). Policy changes are applied by every
// heartbeat anyway. It returns an error when the command could not be
// carried out; the failure is then reported with the reason.
func (j *joinedRole) runRelayCommand(c wire.Command) error {
	switch c.Type {
	case wire.CmdPolicy:
		var p wire.Policy
		if err := json.Unmarshal(c.Args, &p); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		return j.s.sink.apply(p)
	}
	j.s.log.Warn("relay: unknown command ignored", "type", c.Type)
	return nil
}

// startUpgrade runs an upgrade command in the background, its stages
// reported as it goes; one at a time.
func (j *joinedRole) startUpgrade(c wire.Command) {
	j.up.mu.Lock()
	busy, same := j.up.busy, j.up.busyID == c.ID
	if !busy {
		j.up.busy, j.up.busyID = true, c.ID
	}
	j.up.mu.Unlock()
	if busy && same {
		return // handed over again while it runs: the run reports its stages
	}
	if busy {
		j.post(wire.CommandResult{ID: c.ID, State: wire.StateFailed, Error: "upgrade: another upgrade is under way on this relay"})
		return
	}
	j.s.bg.Add(1)
	go func() {
		defer j.s.bg.Done()
		defer func() {
			j.up.mu.Lock()
			j.up.busy, j.up.busyID = false, 0
			j.up.mu.Unlock()
		}()
		if err := j.upgrade(c); err != nil {
			j.s.log.Error("relay: upgrade command failed", "command", c.ID, "err", err)
			j.post(wire.CommandResult{ID: c.ID, State: wire.StateFailed, Error: err.Error()})
		}
	}()
}

// download GETs a file from the management host (at most 512 MiB).
func (j *joinedRole) download(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(j.s.cfg.Manager, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(wire.HeaderRelay, j.ident.header())
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 512<<20))
}

// errClosing ends an upgrade the relay's shutdown interrupted.
var errClosing = errors.New("upgrade: the relay is shutting down")

// stagedPath is where the new binary is written before it is tested:
// beside the binary (one rename installs it), or under systemd in
// DATA/upgrade, the watcher installing it outside the unit's sandbox.
func (j *joinedRole) stagedPath(binary, unit string) string {
	if unit != "" {
		return filepath.Join(j.s.cfg.DataDir, "upgrade", "outpost.new")
	}
	return selfupdate.NewPath(binary)
}

func ensureDir(path string) error { return os.MkdirAll(filepath.Dir(path), 0o700) }
