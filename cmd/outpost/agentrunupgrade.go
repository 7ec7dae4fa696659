package main

// The reference agent's side of an upgrade: it keeps the release keys it
// trusts (the chain it got at enrolment, followed only through links signed
// by a key it already trusts), and on an "upgrade" command downloads the
// release through its relay, verifies signature and SHA-256, self-tests the
// new binary, installs it (BINARY.prev kept) and restarts into it with
// relay/selfupdate, whose watcher rolls back a version that does not come
// up healthy. The stages are reported as they happen.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"outpost/agentsim"
	"outpost/relay/selfupdate"
	"outpost/relay/wire"
	"outpost/store"
)

// maxPackage bounds a downloaded release package.
const maxPackage = 512 << 20

// agentUpgrader carries out upgrades for one agent process.
type agentUpgrader struct {
	r      *agentRun
	dir    string
	ag     *agentsim.Agent
	client *agentsim.Client
	grace  time.Duration // health grace of a new version (0 = selfupdate's default)

	mu        sync.Mutex
	keys      []string // trusted release keys, the first one taken first, newest last
	lastChain []wire.ReleaseKeyLink
	busy      bool
	stop      func() // ends the current ag.Run (run)

	trial *selfupdate.Trial // this process on trial, until healthy (check-in loop only)
	// restart hands a plan to the agent's main loop, which stops the
	// agent's loops and replaces the process (no systemd).
	restart chan selfupdate.Plan
}

// releaseTrust is DIR/release-keys.json.
type releaseTrust struct {
	Keys []string `json:"keys"`
}

func (u *agentUpgrader) keysPath() string { return filepath.Join(u.dir, agentKeysFile) }

// loadKeys reads the trusted keys (none before the first chain arrived).
func (u *agentUpgrader) loadKeys() error {
	b, err := os.ReadFile(u.keysPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var t releaseTrust
	if err := json.Unmarshal(b, &t); err != nil {
		return fmt.Errorf("%s is damaged (%v): delete it to take the management host's release keys again", u.keysPath(), err)
	}
	u.keys = t.Keys
	return nil
}

// takeChain is Agent.OnReleaseKeys. Without a trusted key yet, the first
// key of the chain is taken (it comes over the pinned connection, at
// enrolment or, for an agent enrolled before a key was made, at a check-in,
// as a relay takes its key at join); after that a key is added only when
// store.VerifyKeyChain reaches it from the first one, so nobody can slip in
// another key.
func (u *agentUpgrader) takeChain(chain []wire.ReleaseKeyLink) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if slices.Equal(chain, u.lastChain) {
		return
	}
	u.lastChain = slices.Clone(chain)
	anchor := chain[0].Key
	if len(u.keys) > 0 {
		anchor = u.keys[0]
	}
	reached, err := store.VerifyKeyChain(anchor, chain)
	if err != nil {
		u.r.log.Warn("release keys: the chain from the management host is refused: still trusting the keys before", "err", store.ErrorMessage(err), "keys", len(u.keys))
	}
	keys := slices.Clone(u.keys)
	for _, k := range reached {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == len(u.keys) {
		return
	}
	b, _ := json.MarshalIndent(releaseTrust{Keys: keys}, "", "  ")
	if err := writeFileAtomic(u.keysPath(), append(b, '\n'), 0o600); err != nil {
		u.r.log.Error("release keys: not saved", "err", err)
		return
	}
	u.keys = keys
	u.r.log.Info("release keys: trusting", "keys", len(keys), "newest", shortKey(keys[len(keys)-1]))
}

func shortKey(k string) string {
	if len(k) > 16 {
		return k[:16] + "…"
	}
	return k
}

// command starts an upgrade: refusals that need no download (no version,
// a downgrade without force, no trusted key, one under way) fail at once;
// otherwise it reports "downloading" and goes on in the background.
func (u *agentUpgrader) command(ctx context.Context, c wire.Command) error {
	var a wire.UpgradeArgs
	if err := json.Unmarshal(c.Args, &a); err != nil || a.Version == "" {
		return errors.New("upgrade: the command names no version")
	}
	if err := checkUpgrade(a, version); err != nil {
		return err
	}
	u.mu.Lock()
	keys, busy := slices.Clone(u.keys), u.busy
	if len(keys) > 0 && !busy {
		u.busy = true
	}
	u.mu.Unlock()
	switch {
	case busy:
		return errors.New("upgrade: another upgrade is under way on this agent")
	case len(keys) == 0:
		return fmt.Errorf("upgrade: this agent trusts no release key yet, so %s cannot be verified: make one with 'outpost release keygen'", a.Version)
	}
	if t, err := selfupdate.Load(u.dir); err == nil && t.Outcome == nil {
		u.setBusy(false)
		return fmt.Errorf("upgrade: the upgrade to %s (command %d) is still on trial", t.To, t.Command)
	}
	hurry := u.ag.Hurry()
	u.ag.Report(wire.CommandResult{ID: c.ID, State: wire.StateRunning, Stage: wire.StageDownloading})
	u.r.log.Info("upgrade: downloading", "from", version, "version", a.Version, "command", c.ID)
	go func() {
		defer hurry()
		defer u.setBusy(false)
		uctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		if err := u.upgrade(uctx, c.ID, a, keys); err != nil {
			u.r.log.Error("upgrade failed", "version", a.Version, "err", err)
			u.ag.Report(wire.CommandResult{ID: c.ID, State: wire.StateFailed, Error: err.Error()})
		}
	}()
	return agentsim.ErrCommandRunning
}

func (u *agentUpgrader) isBusy() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.busy
}

func (u *agentUpgrader) setBusy(b bool) {
	u.mu.Lock()
	u.busy = b
	u.mu.Unlock()
}

// checkUpgrade refuses a release that is not newer than the running one
// unless the operator forced it.
func checkUpgrade(a wire.UpgradeArgs, running string) error {
	if !a.Force && store.CompareVersions(a.Version, running) <= 0 {
		return fmt.Errorf("upgrade: release %s is not newer than this agent's %s: a downgrade needs 'outpost agent upgrade --force'", a.Version, running)
	}
	return nil
}

// verifyPackage checks the release's signature against the trusted keys
// and the package against the signed SHA-256.
func verifyPackage(keys []string, rel wire.Release, pkg []byte) error {
	if err := store.VerifyReleaseAny(keys, rel.Version, rel.SHA256, rel.Signature); err != nil {
		return fmt.Errorf("upgrade: %s", store.ErrorMessage(err))
	}
	if got := wire.Fingerprint(pkg); !strings.EqualFold(got, rel.SHA256) {
		return fmt.Errorf("upgrade: the package of %s does not match its signed SHA-256 (%s, got %s)", rel.Version, shortKey(rel.SHA256), shortKey(got))
	}
	return nil
}

// upgrade downloads, verifies and self-tests the release, then installs
// and restarts into it. On an error before the restart nothing is changed.
func (u *agentUpgrader) upgrade(ctx context.Context, id int64, a wire.UpgradeArgs, keys []string) error {
	m, err := u.client.Manifest(ctx)
	if err != nil {
		return fmt.Errorf("upgrade: manifest: %s", agentsim.Describe(err))
	}
	i := slices.IndexFunc(m.Releases, func(r wire.Release) bool { return r.Version == a.Version })
	if i < 0 {
		return fmt.Errorf("upgrade: release %s is not published by the management host", a.Version)
	}
	rel := m.Releases[i]
	pkg, err := u.client.Package(ctx, a.Version, maxPackage, 5*time.Minute)
	if err != nil {
		return fmt.Errorf("upgrade: download %s: %s", a.Version, agentsim.Describe(err))
	}
	u.ag.Report(wire.CommandResult{ID: id, State: wire.StateRunning, Stage: wire.StageVerifying})
	u.r.log.Info("upgrade: downloaded: verifying", "version", a.Version, "bytes", len(pkg))
	if err := verifyPackage(keys, rel, pkg); err != nil {
		return err
	}
	binary, err := os.Executable()
	if err == nil {
		binary, err = filepath.EvalSymlinks(binary)
	}
	if err != nil {
		return fmt.Errorf("upgrade: find this binary: %w", err)
	}
	unit := selfupdate.Unit()
	staged := selfupdate.NewPath(binary)
	if unit != "" {
		// The unit's sandbox keeps the binary's directory read-only: the
		// watcher, outside it, installs from DIR.
		staged = filepath.Join(u.dir, agentUpgradeDir, "outpost.new")
		if err := os.MkdirAll(filepath.Dir(staged), 0o700); err != nil {
			return fmt.Errorf("upgrade: %w", err)
		}
	}
	if err := selfupdate.Stage(staged, pkg); err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	if err := selfupdate.SelfTest(staged, a.Version); err != nil {
		os.Remove(staged)
		return fmt.Errorf("upgrade: %w", err)
	}
	return u.install(ctx, id, a, binary, staged, unit)
}

// install begins the trial, installs the binary (without systemd; under
// systemd the watcher does), reports "restarting" and starts the watcher;
// without systemd it then hands the plan to the main loop for the exec.
func (u *agentUpgrader) install(ctx context.Context, id int64, a wire.UpgradeArgs, binary, staged, unit string) error {
	// The enrolled agent runs from its identity: the spent install key
	// stays out of the trial file and the new process's argv.
	p, err := selfupdate.Begin(u.dir, selfupdate.Plan{Command: id, From: version, To: a.Version,
		Binary: binary, Staged: staged, Unit: unit, Grace: wire.Duration(u.grace), Argv: dropFlag(os.Args, "--key")})
	if err != nil {
		os.Remove(staged)
		return err
	}
	installed := false
	undo := func(err error) error {
		if installed {
			if rerr := selfupdate.Restore(binary, p.Prev); rerr != nil {
				err = fmt.Errorf("%w (and %v)", err, rerr)
			}
		}
		os.Remove(staged)
		selfupdate.Abandon(u.dir)
		return fmt.Errorf("upgrade: %w", err)
	}
	if unit == "" {
		if p.Prev, err = selfupdate.Install(binary, staged); err != nil {
			return undo(err)
		}
		installed = true
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	if err := u.ag.Deliver(dctx, wire.CommandResult{ID: id, State: wire.StateRunning, Stage: wire.StageRestarting}); err != nil {
		u.r.log.Warn("upgrade: the \"restarting\" report did not get through: restarting anyway", "err", err)
	}
	cancel()
	if err := selfupdate.StartWatcher(p); err != nil {
		return undo(err)
	}
	if unit != "" {
		u.r.log.Info("upgrade: verified and self-tested: the watcher installs it and restarts the unit", "version", a.Version, "unit", unit)
		return nil
	}
	u.r.log.Info("upgrade: installed: restarting", "version", a.Version, "binary", binary, "previous", p.Prev)
	u.restart <- p
	u.mu.Lock()
	stop := u.stop
	u.mu.Unlock()
	stop()
	return nil
}

// run is one ag.Run that an upgrade can end; it returns the plan to
// restart into when that is why it ended.
func (u *agentUpgrader) run(ctx context.Context) (*selfupdate.Plan, error) {
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	u.mu.Lock()
	u.stop = stop
	u.mu.Unlock()
	err := u.ag.Run(rctx)
	select {
	case p := <-u.restart:
		return &p, err
	default:
		return nil, err
	}
}

// execRestart replaces this process with the new binary once the agent's
// loops stopped. It returns only when the exec failed, or without trying
// when the agent is being stopped (ctx ended); the previous binary is then
// back and the failure reported.
func (u *agentUpgrader) execRestart(ctx context.Context, p selfupdate.Plan) {
	err := errors.New("the agent was stopped before the restart")
	if ctx.Err() == nil {
		err = selfupdate.Exec(p)
	}
	if rerr := selfupdate.Restore(p.Binary, p.Prev); rerr != nil {
		err = fmt.Errorf("%w (and %v)", err, rerr)
	}
	selfupdate.Abandon(u.dir)
	u.r.log.Error("upgrade failed", "version", p.To, "err", err)
	u.ag.Report(wire.CommandResult{ID: p.Command, State: wire.StateFailed, Error: "upgrade: " + err.Error()})
}

// begin runs at the start of the agent: it records this start when an
// upgrade is on trial (the log then also goes to the trial log, whose last
// lines a rollback reports) and reports the outcome of a finished one.
func (u *agentUpgrader) begin() {
	t, err := selfupdate.Start(u.dir)
	if err != nil {
		u.r.log.Error("upgrade: trial", "err", err)
	}
	if t != nil {
		if f, err := t.Log(); err == nil {
			u.r.trialLog.Set(f)
		}
		u.trial = t
		u.r.log.Info("upgrade: running on trial: healthy after the first check-in", "version", version, "from", t.From, "command", t.Command)
	}
	u.reportOutcome()
}

// checkedIn is Agent.OnCheckin: the first successful check-in of a version
// on trial marks it healthy, and the outcome goes with the next check-in.
func (u *agentUpgrader) checkedIn() {
	t := u.trial
	if t == nil {
		return
	}
	u.trial = nil
	if err := t.Healthy(); err != nil {
		u.r.log.Error("upgrade: trial", "err", err)
		return
	}
	u.r.log.Info("upgrade: healthy: upgrade done", "version", version)
	u.r.trialLog.Set(nil)
	u.reportOutcome()
}

func (u *agentUpgrader) reportOutcome() {
	if res, ok := selfupdate.TakeOutcome(u.dir); ok {
		u.r.log.Info("upgrade: reporting the outcome", "command", res.ID, "state", res.State, "reason", res.Error)
		u.ag.Report(res)
	}
}

// dropFlag returns argv without the flag name and its value ("--key K" or
// "--key=K").
func dropFlag(argv []string, name string) []string {
	var out []string
	for i := 0; i < len(argv); i++ {
		switch {
		case argv[i] == name:
			i++
		case strings.HasPrefix(argv[i], name+"="):
		default:
			out = append(out, argv[i])
		}
	}
	return out
}
