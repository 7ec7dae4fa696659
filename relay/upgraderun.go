package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"outpost/relay/selfupdate"
	"outpost/relay/wire"
	"outpost/store"
)

// upgrade carries out one upgrade command, reporting its stages:
// downloading (manifest and package through the management host),
// verifying (signature by a trusted release key, the signed SHA-256, the
// new binary's --self-test), restarting (installed, the watcher started,
// the restart asked of the command line). A refusal returns the reason
// with nothing changed on disk.
func (j *joinedRole) upgrade(c wire.Command) error {
	var a wire.UpgradeArgs
	if err := json.Unmarshal(c.Args, &a); err != nil || a.Version == "" {
		return fmt.Errorf("upgrade: no version in the command")
	}
	if !a.Force && store.CompareVersions(a.Version, j.s.cfg.Version) <= 0 {
		return fmt.Errorf("upgrade: release %s is not newer than this relay's %s: a downgrade needs 'outpost proxy upgrade --force'", a.Version, j.s.cfg.Version)
	}
	keys := j.releaseKeys()
	if len(keys) == 0 {
		return fmt.Errorf("upgrade: this relay has no release public key to verify %s with: make one with 'outpost release keygen' and publish signed releases", a.Version)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-j.s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	j.post(wire.CommandResult{ID: c.ID, State: wire.StateRunning, Stage: wire.StageDownloading})
	rel, pkg, err := j.fetchRelease(ctx, a.Version)
	if err != nil {
		return err
	}
	j.post(wire.CommandResult{ID: c.ID, State: wire.StateRunning, Stage: wire.StageVerifying})
	// The signature covers the version and the SHA-256, and the package
	// must match that SHA-256: a tampered package or manifest, or one
	// signed by a key this relay does not trust, is refused before
	// anything is written.
	if err := store.VerifyReleaseAny(keys, a.Version, rel.SHA256, rel.Signature); err != nil {
		return fmt.Errorf("upgrade: %s", store.ErrorMessage(err))
	}
	if wire.Fingerprint(pkg) != rel.SHA256 {
		return fmt.Errorf("upgrade: package %s does not match its signed SHA-256", a.Version)
	}
	p, err := j.install(c.ID, a.Version, pkg)
	if err != nil {
		return err
	}
	// The operator sees "restarting" before the relay goes (under systemd
	// the watcher restarts the unit as soon as it runs).
	sent := j.post(wire.CommandResult{ID: c.ID, State: wire.StateRunning, Stage: wire.StageRestarting})
	select {
	case <-sent:
	case <-j.s.closing:
	case <-time.After(10 * time.Second):
	}
	if err := selfupdate.StartWatcher(p); err != nil {
		return j.s.undoInstall(p, err)
	}
	if p.Unit != "" {
		j.s.log.Info("relay: installed by the watcher: systemd restarts the unit into it", "version", a.Version, "unit", p.Unit)
		return nil
	}
	j.s.log.Info("relay: installed: restarting into it", "version", a.Version, "binary", p.Binary, "previous", p.Prev)
	select {
	case <-j.s.closing:
		return j.s.undoInstall(p, errors.New("the relay was stopped before the restart"))
	default:
	}
	// Never blocks: one upgrade at a time, and Begin refuses a second
	// trial. A Close racing this finds the plan and abandons it
	// (AbandonRestart).
	j.up.restart <- p
	return nil
}

// fetchRelease reads the release's manifest entry and downloads its
// package through the management host.
func (j *joinedRole) fetchRelease(ctx context.Context, version string) (wire.Release, []byte, error) {
	var m wire.Manifest
	if status, err := j.callManager(ctx, wire.PathManifest, nil, &m); status != http.StatusOK {
		return wire.Release{}, nil, fmt.Errorf("upgrade: manifest: status %d %v", status, err)
	}
	for _, r := range m.Releases {
		if r.Version == version {
			body, err := j.download(ctx, wire.PathPackage+version)
			if err != nil {
				if ctx.Err() != nil && j.s.closed.Load() {
					return r, nil, errClosing
				}
				return r, nil, fmt.Errorf("upgrade: download %s: %w", version, err)
			}
			return r, body, nil
		}
	}
	return wire.Release{}, nil, fmt.Errorf("upgrade: release %s is not in the manifest", version)
}

// install stages and self-tests the verified package, records the trial
// and installs it (without systemd; the watcher does under systemd). Each
// failure undoes what was done: the binary stays the running one.
func (j *joinedRole) install(id int64, version string, pkg []byte) (selfupdate.Plan, error) {
	bin, unit := j.s.cfg.Binary, j.s.cfg.Unit
	if bin == "" {
		return selfupdate.Plan{}, fmt.Errorf("upgrade: this relay runs inside another program and has no binary of its own to replace")
	}
	staged := j.stagedPath(bin, unit)
	if err := ensureDir(staged); err != nil {
		return selfupdate.Plan{}, fmt.Errorf("upgrade: %w", err)
	}
	if err := selfupdate.Stage(staged, pkg); err != nil {
		return selfupdate.Plan{}, fmt.Errorf("upgrade: %w", err)
	}
	if err := selfupdate.SelfTest(staged, version); err != nil {
		os.Remove(staged)
		return selfupdate.Plan{}, fmt.Errorf("upgrade: %w", err)
	}
	p, err := selfupdate.Begin(j.s.cfg.DataDir, selfupdate.Plan{Command: id, From: j.s.cfg.Version, To: version, Binary: bin,
		Staged: staged, Argv: j.s.cfg.Argv, Unit: unit, Grace: wire.Duration(j.s.cfg.UpgradeGrace)})
	if err != nil {
		os.Remove(staged)
		return p, err
	}
	if unit == "" {
		if _, err := selfupdate.Install(bin, staged); err != nil {
			selfupdate.Abandon(j.s.cfg.DataDir)
			return p, fmt.Errorf("upgrade: %w", err)
		}
	}
	return p, nil
}

// undoInstall puts the previous binary back (or drops the staged one)
// and ends the trial after a restart that did not happen.
func (s *Server) undoInstall(p selfupdate.Plan, err error) error {
	undo := "nothing was replaced"
	if p.Unit == "" {
		undo = "the previous binary is back"
		if rerr := selfupdate.Restore(p.Binary, p.Prev); rerr != nil {
			undo = rerr.Error()
		}
	} else {
		os.Remove(p.Staged)
	}
	selfupdate.Abandon(s.cfg.DataDir)
	return fmt.Errorf("upgrade: %v (%s)", err, undo)
}

// AbandonRestart undoes an upgrade whose restart will not happen (the
// relay is being stopped): the previous binary is put back and the trial
// ended, so the watcher stops and the next start runs the version that
// was running.
func (s *Server) AbandonRestart(p selfupdate.Plan, why string) {
	s.log.Warn("relay: restart abandoned", "version", p.To, "err", s.undoInstall(p, errors.New(why)))
}
