package main

// `outpost service install|uninstall relay|agent`: systemd units for the
// relay and the reference agent. The unit text is built here rather than in
// a package: the install script runs this command on the target host (the
// binary is there by then), so nothing else needs to render units.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"outpost/relay/wire"
)

func init() {
	register("", newServiceCmd)
	register("service", newServiceInstallCmd)
	register("service", newServiceUninstallCmd)
}

const (
	defaultUnitDir    = "/etc/systemd/system"
	defaultSystemdDir = "/run/systemd/system" // exists only when systemd is PID 1
	serviceEnvFile    = "service.env"         // in the data directory, 0600
)

// serviceKind is what each kind runs and which pass-through flag is a secret.
type serviceKind struct {
	name    string // relay, agent
	command []string
	dirFlag string // --data or --dir
	secret  string // flag whose value must not land in the 0644 unit
	envVar  string // EnvironmentFile variable carrying it
	desc    string
}

var serviceKinds = map[string]serviceKind{
	"relay": {name: "relay", command: []string{"relay"}, dirFlag: "--data", secret: "--join", envVar: "OUTPOST_JOIN_TOKEN", desc: "Outpost relay"},
	"agent": {name: "agent", command: []string{"agent", "run"}, dirFlag: "--dir", secret: "--key", envVar: "OUTPOST_INSTALL_KEY", desc: "Outpost agent"},
}

func (k serviceKind) unit() string { return "outpost-" + k.name + ".service" }

func parseServiceKind(args []string) (serviceKind, error) {
	if len(args) == 0 {
		return serviceKind{}, usageErrorf("missing KIND: want relay or agent")
	}
	k, ok := serviceKinds[args[0]]
	if !ok {
		return serviceKind{}, usageErrorf("unknown service %q: want relay or agent", args[0])
	}
	return k, nil
}

// serviceOpts are the flags install and uninstall share.
type serviceOpts struct {
	unitDir    string
	systemdDir string
	dir        string // agent directory (--dir)
}

func (o *serviceOpts) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.unitDir, "unit-dir", defaultUnitDir, "directory the unit file goes in")
	f.StringVar(&o.dir, "dir", "", "agent directory (agent only; default as for 'agent run')")
	f.StringVar(&o.systemdDir, "systemd-dir", defaultSystemdDir, "directory whose presence means systemd runs this host")
	f.MarkHidden("systemd-dir")
}

// dataDir is the directory the service writes: the relay's --data, the
// agent's --dir, as an absolute path (the unit runs from /).
func (o *serviceOpts) dataDir(a *app, k serviceKind) (string, error) {
	d := a.dataDir()
	if k.name == "agent" {
		d = agentDir(o.dir)
	} else if o.dir != "" {
		return "", usageErrorf("--dir is for the agent; the relay's directory is --data")
	}
	return filepath.Abs(d)
}

// checkSystemd says why this host cannot take a unit, or nil.
func (o *serviceOpts) checkSystemd() (string, error) {
	ctl, err := exec.LookPath("systemctl")
	if err != nil {
		return "", errors.New("no systemctl on PATH")
	}
	if st, err := os.Stat(o.systemdDir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("%s missing", o.systemdDir)
	}
	return ctl, nil
}

func newServiceCmd(a *app) *cobra.Command {
	c := group("service", "Install or remove the systemd unit of the relay or the agent")
	c.Long = `Install or remove the systemd unit of the relay or the agent on this host.

'service install relay|agent [-- FLAGS]' writes outpost-relay.service or
outpost-agent.service, reloads systemd and enables and starts the unit;
'service uninstall relay|agent' stops, disables and removes it (and, for
the agent, its directory and the relay a quick deployment started there).`
	return c
}

// serviceInstall holds the flags of `service install`.
type serviceInstall struct {
	a         *app
	o         serviceOpts
	bin, user string
}

func newServiceInstallCmd(a *app) *cobra.Command {
	r := &serviceInstall{a: a}
	cmd := &cobra.Command{
		Use:   "install relay|agent [--data DIR | --dir DIR] [--bin PATH] [--user NAME] [-- FLAGS...]",
		Short: "Write, enable and start the systemd unit of the relay or the agent",
		Long: `Write, enable and start the systemd unit of the relay or the agent.

The unit runs this binary (--bin overrides; an absolute path) as
'outpost --data DIR relay FLAGS' or 'outpost agent run --dir DIR FLAGS',
FLAGS being everything after '--'. It is hardened: NoNewPrivileges,
ProtectSystem=strict with ReadWritePaths= DIR only, ProtectHome (read-only
when DIR is under a home directory), PrivateTmp, Restart=on-failure after
5s. It runs as root unless --user names an account (DIR is then given to
it); the agent needs root for a full inventory.

A relay's --join token or an agent's --key is a secret: the unit file is
world-readable, so the value goes to DIR/service.env (0600) and the unit
reads it from there. It is used only at the first start (later starts run
from the saved identity) and is removed by 'service uninstall'.

Without systemd (no systemctl on PATH, or /run/systemd/system missing) it
writes nothing and prints the command to run under another supervisor
(exit 1).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() > 1 || (cmd.ArgsLenAtDash() < 0 && len(args) > 1) {
				return usageErrorf("too many arguments: want KIND, then -- and the service's flags")
			}
			_, err := parseServiceKind(args)
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error { return r.Run(cmd, args) },
	}
	r.o.flags(cmd)
	cmd.Flags().StringVar(&r.bin, "bin", "", "binary the unit runs (default this one)")
	cmd.Flags().StringVar(&r.user, "user", "", "account the service runs as (default root)")
	return cmd
}

// Run writes the unit of the kind in args (and DIR/service.env for a
// secret), then enables and starts it.
func (r *serviceInstall) Run(cmd *cobra.Command, args []string) error {
	k, _ := parseServiceKind(args)
	var pass []string
	if n := cmd.ArgsLenAtDash(); n >= 0 {
		pass = args[n:]
	}
	for _, p := range pass {
		if name, _, _ := strings.Cut(p, "="); name == k.dirFlag || name == "--data" && k.name == "relay" {
			return usageErrorf("give %s before '--', not after", name)
		}
	}
	dir, err := r.o.dataDir(r.a, k)
	if err != nil {
		return err
	}
	bin := r.bin
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return fmt.Errorf("find this binary: %w (give --bin)", err)
		}
	}
	if !filepath.IsAbs(bin) {
		return usageErrorf("--bin %q: want an absolute path", bin)
	}
	pass, secret := extractSecret(pass, k)
	argv := append([]string{bin}, serviceArgv(k, dir, pass)...)
	ctl, err := r.o.checkSystemd()
	if err != nil {
		if secret != "" {
			argv = append(argv, k.secret, secret)
		}
		return failf("no systemd on this host (%v); run under your supervisor: %s", err, shellJoin(argv))
	}
	unitPath, did, err := r.writeUnit(k, dir, argv, secret)
	if err != nil {
		return err
	}
	for _, c := range [][]string{{"daemon-reload"}, {"enable", "--now", k.unit()}} {
		if err := runSystemctl(ctl, c...); err != nil {
			return err
		}
		did = append(did, "ran systemctl "+strings.Join(c, " "))
	}
	return r.a.printDone(k, unitPath, did)
}

// writeUnit creates dir (given to --user), writes the secret to
// DIR/service.env and the unit, and says what it wrote.
func (r *serviceInstall) writeUnit(k serviceKind, dir string, argv []string, secret string) (unitPath string, did []string, err error) {
	uid, gid := -1, -1
	if r.user != "" {
		u, err := osuser.Lookup(r.user)
		if err != nil {
			return "", nil, failf("--user %q: no such account on this host", r.user)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	// The service account writes DIR; service.env stays root's
	// (systemd reads it before dropping to User=).
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", nil, fmt.Errorf("give %s to %s: %w", dir, r.user, err)
		}
	}
	envPath := ""
	if secret != "" {
		envPath = filepath.Join(dir, serviceEnvFile)
		if err := writeFileAtomic(envPath, []byte(k.envVar+"="+secret+"\n"), 0o600); err != nil {
			return "", nil, err
		}
		argv = append(argv, k.secret, "${"+k.envVar+"}")
	}
	unitPath = filepath.Join(r.o.unitDir, k.unit())
	text := renderUnit(k, argv, dir, r.user, envPath)
	if err := writeFileAtomic(unitPath, []byte(text), 0o644); err != nil {
		return "", nil, err
	}
	did = []string{"wrote " + unitPath}
	if envPath != "" {
		did = append(did, "wrote "+envPath+" (0600, holds "+k.secret+")")
	}
	return unitPath, did, nil
}

func newServiceUninstallCmd(a *app) *cobra.Command {
	var o serviceOpts
	var keepDir bool
	cmd := &cobra.Command{
		Use:   "uninstall relay|agent [--data DIR | --dir DIR] [--keep-dir]",
		Short: "Stop, disable and remove the systemd unit of the relay or the agent",
		Long: `Stop, disable and remove the systemd unit of the relay or the agent, and
DIR/service.env if install wrote one. For the agent it also stops the relay
a quick deployment started from DIR/relay and removes the agent directory
(identity, event buffer, that relay's data), as an uninstall sent from the
management host does; --keep-dir keeps the directory. The relay's data
directory (its identity and undelivered events) is kept.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := nargs(1, 1, "KIND (relay or agent)")(cmd, args); err != nil {
				return err
			}
			_, err := parseServiceKind(args)
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			k, _ := parseServiceKind(args)
			if keepDir && k.name != "agent" {
				return usageErrorf("--keep-dir is for the agent only (the relay's directory is always kept)")
			}
			dir, err := o.dataDir(a, k)
			if err != nil {
				return err
			}
			ctl, err := o.checkSystemd()
			if err != nil {
				return failf("no systemd on this host (%v); stop the service under your supervisor", err)
			}
			did, err := removeUnit(ctl, o.unitDir, k, dir, true)
			if err == nil && k.name == "agent" {
				var more []string
				more, err = removeAgent(dir, !keepDir)
				did = append(did, more...)
			}
			if err != nil {
				for _, d := range did {
					a.printf("%s\n", d)
				}
				return err
			}
			return a.printDone(k, filepath.Join(o.unitDir, k.unit()), did)
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVar(&keepDir, "keep-dir", false, "keep the agent directory (identity and event buffer)")
	return cmd
}

// removeUnit disables the kind's unit (stopping it first when stop is set:
// disable --now stops the whole cgroup, so no process is left behind),
// removes the unit file and DIR/service.env, and reloads systemd. It is the
// one place units are removed: 'service uninstall' and an agent obeying an
// uninstall command (which cannot stop itself mid-call: it exits 0 after,
// and Restart=on-failure does not start it again) both call it.
func removeUnit(ctl, unitDir string, k serviceKind, dir string, stop bool) ([]string, error) {
	var did []string
	disable := []string{"disable", k.unit()}
	if stop {
		disable = []string{"disable", "--now", k.unit()}
	}
	if err := runSystemctl(ctl, disable...); err != nil {
		return did, err
	}
	did = append(did, "ran systemctl "+strings.Join(disable, " "))
	for _, p := range []string{filepath.Join(unitDir, k.unit()), filepath.Join(dir, serviceEnvFile)} {
		if err := os.Remove(p); err == nil {
			did = append(did, "removed "+p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return did, err
		}
	}
	if err := runSystemctl(ctl, "daemon-reload"); err != nil {
		return did, err
	}
	return append(did, "ran systemctl daemon-reload"), nil
}

func (a *app) printDone(k serviceKind, unitPath string, did []string) error {
	if a.jsonOut {
		return a.printJSON(map[string]any{"unit": k.unit(), "path": unitPath, "done": did})
	}
	for _, d := range did {
		a.printf("%s\n", d)
	}
	return nil
}

// serviceArgv is the command line after the binary.
func serviceArgv(k serviceKind, dir string, pass []string) []string {
	var argv []string
	if k.name == "relay" {
		argv = append([]string{"--data", dir}, k.command...)
	} else {
		argv = append(append([]string{}, k.command...), "--dir", dir)
	}
	return append(argv, pass...)
}

// extractSecret takes the kind's secret flag (--join T or --join=T) out of
// the pass-through flags.
func extractSecret(pass []string, k serviceKind) (rest []string, secret string) {
	for i := 0; i < len(pass); i++ {
		switch p := pass[i]; {
		case p == k.secret && i+1 < len(pass):
			secret = pass[i+1]
			i++
		case strings.HasPrefix(p, k.secret+"="):
			secret = strings.TrimPrefix(p, k.secret+"=")
		default:
			rest = append(rest, p)
		}
	}
	return rest, secret
}

// renderUnit is the unit file text. argv is already resolved; an element
// "${VAR}" naming the kind's variable is left for systemd to fill from the
// EnvironmentFile.
func renderUnit(k serviceKind, argv []string, dir, user, envPath string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by 'outpost service install %s'; remove with 'outpost service uninstall %s'.", k.name, k.name)
	w("[Unit]")
	w("Description=%s", k.desc)
	w("Wants=network-online.target")
	w("After=network-online.target")
	w("")
	w("[Service]")
	w("Type=simple")
	if user != "" {
		w("User=%s", user)
	}
	if envPath != "" {
		// The rest of the line is the file name: no quotes, only specifiers.
		w("EnvironmentFile=%s", strings.ReplaceAll(envPath, "%", "%%"))
	}
	q := make([]string, len(argv))
	for i, s := range argv {
		if s == "${"+k.envVar+"}" {
			q[i] = s
		} else {
			q[i] = unitQuote(s)
		}
	}
	w("ExecStart=%s", strings.Join(q, " "))
	w("Restart=on-failure")
	w("RestartSec=5s")
	w("NoNewPrivileges=yes")
	w("ProtectSystem=strict")
	// A directory under a home directory must stay visible to be writable.
	protectHome := "yes"
	for _, h := range []string{"/home/", "/root/", "/run/user/"} {
		if strings.HasPrefix(dir+"/", h) {
			protectHome = "read-only"
		}
	}
	w("ProtectHome=%s", protectHome)
	w("PrivateTmp=yes")
	w("ReadWritePaths=%s", pathQuote(dir))
	w("")
	w("[Install]")
	w("WantedBy=multi-user.target")
	return b.String()
}

// unitQuote quotes one word for a unit file: specifiers (%) and variable
// expansion ($) are escaped, words with spaces or quotes double-quoted.
func unitQuote(s string) string {
	return pathQuote(strings.ReplaceAll(s, "$", "$$"))
}

// pathQuote quotes one word of a path list (ReadWritePaths=), where $ is
// not expanded.
func pathQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + s + `"`
}

// shellJoin renders argv for a POSIX shell.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, s := range argv {
		if s != "" && strings.IndexFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@+", r))
		}) < 0 {
			q[i] = s
		} else {
			q[i] = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func runSystemctl(ctl string, args ...string) error {
	out, err := exec.Command(ctl, args...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("systemctl %s: %s", strings.Join(args, " "), msg)
	}
	return nil
}

// writeFileAtomic replaces a file so that a failed write leaves the old one
// (or none), never half of one; the temp file is path+".tmp".
var writeFileAtomic = wire.WriteFileAtomic
