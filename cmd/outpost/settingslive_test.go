package main

// Settings changed with the CLI while `outpost up` runs: the running
// management host reloads them, its live summary counts with them, and a
// running agent applies them from its next check-in answer.

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var slAgentsLine = regexp.MustCompile(`(?m)^agents: (\d+) enrolled, (\d+) online`)

// slLastSummary is the online count of the newest complete summary block
// printed after since (-1 when there is none yet).
func slLastSummary(p *proc, since time.Time) int {
	out := p.stdout.String()
	blocks := strings.Split(out, "\n== outpost ")
	for i := len(blocks) - 1; i >= 0; i-- {
		b := blocks[i]
		// "VERSION  15:04:05 ==" heads each block.
		head, _, _ := strings.Cut(b, "\n")
		f := strings.Fields(head)
		if len(f) < 2 {
			continue
		}
		at, err := time.ParseInLocation("15:04:05", f[1], time.Local)
		if err != nil {
			continue
		}
		now := time.Now()
		at = time.Date(now.Year(), now.Month(), now.Day(), at.Hour(), at.Minute(), at.Second(), 0, time.Local)
		if at.Before(since.Truncate(time.Second)) {
			return -1
		}
		if m := slAgentsLine.FindStringSubmatch(b); m != nil {
			n, _ := strconv.Atoi(m[2])
			return n
		}
	}
	return -1
}

type slAgent struct {
	ID            string    `json:"id"`
	Online        bool      `json:"online"`
	LastInventory time.Time `json:"last_inventory"`
}

func slGetAgent(t *testing.T, c *cli) (slAgent, bool) {
	t.Helper()
	r := c.run("agent", "list", "--json")
	if r.code != 0 {
		return slAgent{}, false
	}
	var page struct {
		Agents []slAgent `json:"agents"`
	}
	mustOneJSON(t, r.stdout, &page)
	if len(page.Agents) != 1 {
		return slAgent{}, false
	}
	return page.Agents[0], true
}

func TestSettingsReachRunningProcesses(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	key := c.createAccount("acme")
	up := svStart(t, c, append([]string{"up", "--no-tui"}, svRelayListen...)...)
	info := svRunFile(t, up, c.data, "relay")

	// The agent follows the management host's inventory interval (no
	// --inventory-every) and asks for the default 30 s hold.
	dir := t.TempDir()
	cmd := exec.Command(outpostBin, "agent", "run", "--proxy", svURL(t, info, "https"), "--key", key,
		"--ca-sha256", info.CASHA256, "--dir", dir, "--event-every", "0")
	cmd.Env = arEnv(t)
	agent := startProc(t, cmd, "outpost agent run")

	waitCond(t, agent, 20*time.Second, "the agent's first inventory", func() bool {
		a, ok := slGetAgent(t, c)
		return ok && !a.LastInventory.IsZero()
	})
	waitCond(t, up, 10*time.Second, "the summary counting the agent online", func() bool {
		return slLastSummary(up, time.Now().Add(-3*time.Second)) == 1
	})

	// inventory_interval 5h -> 2s while the agent holds a 30 s check-in:
	// from then on its inventories come every 2 s.
	before, _ := slGetAgent(t, c)
	c.ok("settings", "set", "inventory_interval=2s")
	var seen []time.Time
	last := before.LastInventory
	waitCond(t, agent, 15*time.Second, "three inventories after the change", func() bool {
		a, ok := slGetAgent(t, c)
		if ok && a.LastInventory.After(last) {
			last = a.LastInventory
			seen = append(seen, last)
		}
		return len(seen) >= 3
	})
	for i := 1; i < len(seen); i++ {
		if gap := seen[i].Sub(seen[i-1]); gap < time.Second || gap > 6*time.Second {
			t.Errorf("gap between inventories %d and %d: got %s, want about 2s (all: %v)", i, i+1, gap, seen)
		}
	}

	// offline_after 12h -> 3s with the agent gone: the running summary
	// counts it offline, as `agent list` from another process does.
	agent.cmd.Process.Kill()
	agent.waitExit(5 * time.Second)
	c.ok("settings", "set", "offline_after=3s")
	changed := time.Now()
	waitCond(t, up, 15*time.Second, "the summary counting the agent offline", func() bool {
		return slLastSummary(up, changed) == 0
	})
	if a, ok := slGetAgent(t, c); !ok || a.Online {
		t.Errorf("agent list: got %+v, want the agent offline", a)
	}
	if !strings.Contains(up.stderr.String(), "settings changed") {
		t.Errorf("up log: no note of the settings change:\n%s", up.stderr.String())
	}
	// The note names what changed, from what to what, and nothing else.
	noted := false
	for _, line := range strings.Split(up.stderr.String(), "\n") {
		if !strings.Contains(line, "settings changed") || !strings.Contains(line, "offline_after") {
			continue
		}
		noted = true
		if want := "offline_after.to=3s"; !strings.Contains(line, want) || strings.Contains(line, "poll_timeout") {
			t.Errorf("up log: got %q, want %s and no unchanged setting", line, want)
		}
	}
	if !noted {
		t.Errorf("up log: no settings-changed line naming offline_after:\n%s", up.stderr.String())
	}
}
