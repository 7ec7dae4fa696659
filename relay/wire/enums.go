package wire

import (
	"fmt"
	"strings"
)

// The closed sets of words the protocol and the store share. Each is a
// named string type so the compiler catches a value from another set;
// JSON and SQLite carry them as the plain strings they always were.

// Mode is a cluster's transmission mode (seed 000, policy step 4).
type Mode string

// Transmission modes.
const (
	ModeForward Mode = "forward" // to the management centre, under the limits
	ModeCache   Mode = "cache"   // to a capped ring in the cache directory
)

// Modes lists the modes in the order they are offered.
var Modes = []Mode{ModeForward, ModeCache}

// Valid reports whether m is one of Modes.
func (m Mode) Valid() bool { return m == ModeForward || m == ModeCache }

// ParseMode reads a mode as an operator types it (a flag, a form field).
// The error names the value and lists the allowed ones (`mode "x": want
// forward or cache`), for the caller to prefix with where it came from.
func ParseMode(s string) (Mode, error) {
	if m := Mode(s); m.Valid() {
		return m, nil
	}
	return "", fmt.Errorf("mode %q: want %s", s, joinWords(Modes))
}

// OS is the operating system of a host (Host.OS) and of an install command:
// an agent enrols only with a key of its own OS.
type OS string

// Operating systems.
const (
	OSLinux   OS = "linux"
	OSWindows OS = "windows"
)

// OSes lists the operating systems install commands are made for.
var OSes = []OS{OSLinux, OSWindows}

// ParseOS reads an OS as an operator types it; the error (`os "x": want
// linux or windows`) lists the allowed ones, for the caller to prefix.
func ParseOS(s string) (OS, error) {
	if o := OS(s); o == OSLinux || o == OSWindows {
		return o, nil
	}
	return "", fmt.Errorf("os %q: want %s", s, joinWords(OSes))
}

// CommandType is what a command asks of its target (Command.Type).
type CommandType string

// Command types delivered to agents and relays.
const (
	CmdBind        CommandType = "bind"         // switch to the cluster's proxies
	CmdUnbind      CommandType = "unbind"       // back to direct connection
	CmdUninstall   CommandType = "uninstall"    // stop and remove the agent
	CmdDeployProxy CommandType = "deploy-proxy" // quick deployment: start a relay here
	CmdUpgrade     CommandType = "upgrade"      // relay or agent: fetch and run a newer release
	CmdPolicy      CommandType = "policy"       // relay: apply the cluster policy
)

// State is where a command stands; every command an operator starts shows
// one (DESIGN.md, "States an operator sees").
type State string

// Command states: queued (not yet handed over), delivered, running (the
// target said it started), done, failed (with a reason).
const (
	StateQueued    State = "queued"
	StateDelivered State = "delivered"
	StateRunning   State = "running"
	StateDone      State = "done"
	StateFailed    State = "failed"
	// StateRolledBack ends an upgrade whose new version did not come up
	// healthy: the previous binary runs again; Error says why (with the
	// new version's last log lines). Terminal like failed.
	StateRolledBack State = "rolled_back"
)

// Reported reports whether a target may report s about a command it was
// handed (CommandResult.State): queued and delivered are the sender's.
func (s State) Reported() bool {
	return s == StateRunning || s == StateDone || s == StateFailed || s == StateRolledBack
}

// Ended reports whether s is terminal: done, failed or rolled back.
func (s State) Ended() bool { return s == StateDone || s == StateFailed || s == StateRolledBack }

// Stage is where a running upgrade is, reported with StateRunning so the
// operator sees it; a stage that hears nothing more times out into failed.
type Stage string

// Stages of a running upgrade, in order.
const (
	StageDownloading Stage = "downloading"
	StageVerifying   Stage = "verifying"
	StageRestarting  Stage = "restarting"
)

// Valid reports whether s is one of the stages.
func (s Stage) Valid() bool {
	return s == StageDownloading || s == StageVerifying || s == StageRestarting
}

func joinWords[T ~string](ws []T) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = string(w)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
