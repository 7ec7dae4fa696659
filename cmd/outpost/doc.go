// Command outpost is the single Outpost binary: the management store's
// command line, the relay, the collector, the dashboard and the agent.
//
// # Layout
//
//	main.go        main(), signal handling, building the cobra tree from the registry
//	app.go         what every command shares (app) and the command registry
//	exit.go        usage errors, exit codes and the one error line
//	appstore.go    data directory and store, audit actor, --account and cluster
//	               resolution, manager URL and CA pin for generated commands
//	flags.go       argument and flag helpers (nargs, parseDuration, parseID)
//	output.go      JSON, tables, clean (untrusted text), time formatting
//	account.go     outpost account create|list
//	cluster.go     outpost cluster create|list|show|delete|policy
//	proxy.go       outpost proxy deploy|list|show|deployments|delete
//	proxyupgrade.go outpost proxy upgrade ID...|--cluster N (rolling: ops.RollingUpgrade, a line per step)
//	agent.go       outpost agent unbind|list|show|uninstall (the "agent" group)
//	bind.go        outpost agent bind: paced batches, progress, SIGINT between batches
//	agentupgrade.go outpost agent upgrade HOST...|--cluster N|--all (paced: ops.PacedUpgrade)
//	installcmd.go  outpost installcmd create|list|revoke
//	settings.go    outpost settings show|set
//	audit.go       outpost audit
//	release.go     outpost release keygen [--rotate]|add|list|delete
//	version.go     outpost version (and the version variable, set with -ldflags "-X main.version=...")
//
// The services (up, relay, center, tui, agentsim, doctor, agent run) live in
// their own files and register themselves the same way.
//
// logging.go: --log-format text|json on the commands that log (relay, up,
// center, agent run, upgrade-watch), checked when the flag is parsed (a
// pflag.Value, so a bad value is exit 2 before anything runs);
// app.logger() is the one stderr logger (relay/logs builds it) handed to
// the relay, the collector, the watcher and the demo. agent run dates its
// lines and, during a trial, also writes them to the trial log in text
// (logs.Also over a logs.Switch).
//
// # Exit codes
//
//	0  success; stderr carries only notes and "warning: ..." lines
//	1  a refused or failed action: one line "outpost: MESSAGE" on stderr,
//	   MESSAGE being store.ErrorMessage of the error (the store's coded
//	   errors all map here); interrupted runs (agent bind) also exit 1
//	2  bad usage: unknown command or flag, missing argument, malformed value;
//	   one line "outpost: COMMAND: PROBLEM"
//
// Any error a command's RunE (or pre/post-run hook) returns exits 1 unless
// it is a usage error (usageErrorf) or carries its own status (exitError).
// Errors cobra raises while parsing (unknown flag, bad flag value, required
// flag not set) exit 2. Parse every flag value before the first write, so
// that bad input changes nothing: store writes are single transactions, and
// a command must not chain several writes when an early refusal is
// possible (proxy upgrade checks every ID first; agent bind --file resolves
// every host first).
//
// # Data directory
//
// dataDir resolves, in order: --data DIR, $OUTPOST_DATA, /var/lib/outpost
// when it is writable (or can be created, i.e. as root), $HOME/.outpost,
// ./outpost-data. The database is DATA/outpost.db (app.store opens it on
// first use; the caller does not close it). A running relay writes its
// addresses to DATA/run/relay.json ({"pid":N,"urls":[...]}) and its CA to
// DATA/tls/ca.pem; generated commands (proxy deploy --manual, installcmd
// create) read both, and DATA/tls/server.pem for the key their one-line
// installers pin (install_test.go runs those lines against a fake systemd:
// a systemctl that starts the unit's ExecStart with its EnvironmentFile).
//
// # Service units
//
// service.go renders the systemd units of `service install relay|agent`
// itself: the install script runs that command on the target host, so no
// other code needs the unit text. Secrets given after "--" (--join, --key)
// are moved to DIR/service.env (0600) and the unit passes them as
// ${VAR}, because unit files are world-readable. The systemd checks
// (systemctl on PATH, /run/systemd/system present; hidden --systemd-dir
// for tests) run before anything is written.
//
// # The reference agent: uninstall and upgrade
//
// agentuninstall.go: an uninstall command first runs Agent.OnUninstall
// (stop the relay deploy-proxy started, found by DIR/relay/relay.pid or its
// run file and signalled only while its command line names DIR/relay), then
// is acknowledged while the identity exists, then the directory goes
// (removeAgentDir removes only the entries the agent writes, agentEntries:
// add new ones there). Under the unit written for DIR (systemdUnit) the
// unit is removed by 'service uninstall agent' in a transient unit, since
// the sandbox cannot write /etc; removeUnit in service.go is the one place
// a unit is removed, for that command and for the agent's fallback.
//
// agentrun.go holds the flags and the run (open, then loop); its help text
// is in agentrunhelp.go, this machine's facts and the status event in
// agentfacts.go. agentrelay.go runs deploy-proxy: it starts the relay
// detached (its own session: detach_unix.go; detach_other.go does nothing
// where there are no sessions), saves its flags once it joined
// (DIR/relay/relay.args.json, no join token) and starts it again when the
// agent starts and finds it down.
//
// agentrunupgrade.go: the trusted release keys live in
// DIR/release-keys.json (first key first); Agent.OnReleaseKeys feeds every
// chain through store.VerifyKeyChain from that first key. The upgrade runs
// beside the check-in loop with Agent.Hurry on (short holds, so stages are
// seen at once) and reports "restarting" with Agent.Deliver before the
// restart. Without systemd the loop is stopped (agentUpgrader.run) and the
// main goroutine execs the new binary; selfupdate's watcher (from the
// previous binary) follows the PID. Agent.OnCheckin marks a version on
// trial healthy, and its outcome goes with the next check-in.
//
// # Measurement harnesses
//
// tuispeed_test.go (make perf-tui) and perf*_test.go (make perf) are
// env-gated tests that measure instead of asserting. TestPerf starts real
// processes on loopback (center, a management host, joined relays of a
// forward and a cache cluster, nginx from $PATH with its own config) and
// prints one markdown table for README "Performance". Its event load is a
// bare HTTP client posting pre-built batches (perfload_test.go: encoding
// each batch through agentsim.Client would cost the generator more CPU
// than the relay it measures); check-ins use agentsim.Client. Held agents
// run in child processes of the test binary (perfhelper_test.go, started
// from init before TestMain), 5,000 per process over 127.0.x.y sources.
// Memory figures restart the relay per sample so one sample's heap does
// not hide the next one's growth.
//
// # Adding a subcommand
//
// In a new file, register a constructor from init:
//
//	func init() { register("", newDoctorCmd) }        // outpost doctor
//	func init() { register("agent", newAgentRunCmd) } // outpost agent run
//
//	func newDoctorCmd(a *app) *cobra.Command {
//		return &cobra.Command{
//			Use:   "doctor [--proxy URL]",
//			Short: "...",
//			Args:  nargs(0, 0, ""),
//			RunE: func(cmd *cobra.Command, args []string) error {
//				db, err := a.store()  // only if it needs the store
//				...
//				return usageErrorf("invalid --proxy %q: ...", v) // exit 2
//				return err                                       // exit 1
//			},
//		}
//	}
//
// A command with more than a few flags keeps them in a struct whose Run
// method does the work, the constructor only declaring flags (as
// Litestream's commands do): clusterPolicy, proxyDeploy, installCreate,
// serviceInstall, agentList, agentRun, relayRun. Run parses every value first, then resolves and
// writes, in small methods (parse, apply, print).
//
// Use cmd.Context() for long-running work: it is cancelled by the first
// SIGINT or SIGTERM (a second one kills the process). For store calls use
// ctx(cmd), which adds the audit actor ($SUDO_USER or $USER, "@cli").
// Honour a.jsonOut (--json, a persistent flag) by printing exactly one
// document with a.printJSON; print tables with a.printTable (display-width
// aligned, safe for CJK host names) and notes with a.notef (stderr).
// group(use, short) makes a command that only holds subcommands.
package main
