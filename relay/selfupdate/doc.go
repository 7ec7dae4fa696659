// Package selfupdate replaces a running relay or agent with a new release
// and rolls it back when the new version does not come up healthy. It
// imports only the standard library and relay/wire; the caller verifies
// the package (signature, checksum, version) before handing it here.
//
// An upgrade, in the order the caller runs it:
//
//	staged := selfupdate.NewPath(binary)          // or DIR/upgrade/outpost.new under systemd
//	selfupdate.Stage(staged, pkg)                  // 0755, synced
//	selfupdate.SelfTest(staged, version)           // `staged --self-test`: one JSON line, exit 0
//	p, _ := selfupdate.Begin(dir, selfupdate.Plan{Command: id, From: cur, To: version,
//		Binary: binary, Staged: staged, Unit: selfupdate.Unit(), Grace: g})
//	selfupdate.Install(binary, staged)             // no systemd: BINARY.prev kept, one rename, dir synced
//	selfupdate.StartWatcher(p)                     // the watcher runs before anything stops
//	... report "restarting", close listeners and files ...
//	selfupdate.Exec(p)                             // no systemd: same PID, same argv
//
// Restart(p) is StartWatcher then Exec. A failure before Exec changes
// nothing the caller cannot undo: remove the staged file (refusals leave
// the binary as it was), and after Install put BINARY.prev back (Restore)
// and Abandon the trial.
//
// The trial, DIR/upgrade/trial.json (0600, written atomically under an
// flock of DIR/upgrade/lock): the Plan (command id, from, to, binary,
// prev, staged, argv, working directory, unit, grace), the PID that
// restarts, when it started, whether the binary is installed, each start
// of the new version, when it reported healthy, and the outcome.
//
// In the new process, at start: t, _ := selfupdate.Start(dir) records a
// start (nil when nothing is on trial); its log should also go to t.Log()
// (DIR/upgrade/new.log, whose last lines a rollback reports). After its
// first successful heartbeat (relay) or check-in (agent) it calls
// t.Healthy(), which ends the trial done (ErrRolledBack if the watcher
// decided first). Every process, each heartbeat or check-in, reports a
// finished trial's outcome: done, rolled_back or failed with the reason,
// for the command id of the trial. TakeOutcome(dir) returns it once (the
// trial file moves to DIR/upgrade/last.json; keep the result in memory
// until the management host has it); PendingOutcome(dir) returns it on
// every call until Reported(dir, id), called once a report went through,
// so a crash in between loses nothing (the relay does this).
//
// The watcher is the hidden command `outpost upgrade-watch --dir DIR`
// (WatchCommand), run from the previous binary:
//   - Without systemd, StartWatcher runs BINARY.prev upgrade-watch --detach,
//     which starts the real watcher in its own session (output in
//     DIR/upgrade/watch.log) and returns, so no process keeps it as a
//     child; the caller then execs the new binary in place. The watcher
//     follows the PID: when the new version exits it starts it again
//     itself (same argv and working directory, output to new.log).
//   - Under systemd (Plan.Unit, from $OUTPOST_UNIT or $INVOCATION_ID and
//     /proc/self/cgroup), StartWatcher runs the watcher as a transient unit
//     (systemd-run --collect) so it survives the restart and is outside
//     the service's sandbox (ProtectSystem=strict leaves the binary's
//     directory read-only to the service): the watcher installs
//     Plan.Staged, then `systemctl restart --no-block UNIT`; systemd
//     restarts a crashed new version (Restart=on-failure) and the watcher
//     counts NRestarts and starts.
//
// Rollback: more than CrashLimit (2) exits within CrashWindow (a minute),
// or no healthy mark within the grace period (DefaultGrace, 2 minutes,
// from Begin): the watcher records rolled_back first (so a late Healthy
// loses), stops the new version (SIGTERM, SIGKILL after 10 s), renames
// BINARY.prev back over BINARY and starts it again: without systemd
// detached, same argv, output to DIR/upgrade/rollback.log; under systemd
// systemctl reset-failed and restart. The reason names what happened and
// ends with the new version's last three log lines (new.log, else the
// unit's journal). The previous version reports it with its first
// heartbeat.
//
// Logs: Watch takes a *slog.Logger (nil: none); the watcher's lines start
// "upgrade-watch:" and carry version, pid and reason.
package selfupdate
