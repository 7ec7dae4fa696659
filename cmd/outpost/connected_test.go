package main

// Connected now and "proxy down" between real processes: a management
// host, one joined relay, the reference agent bound through it; the relay
// is killed with kill -9 and the listings must stop saying the agent is
// connected through it while it stays online (the 12 h rule).

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestConnectedNowFollowsRelayKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "edge", "--address", "edge.invalid")
	// Connected now = last check-in within poll_timeout + 15 s: 16 s here.
	c.ok("settings", "set", "poll_timeout=1s", "proxy_offline_after=3s")

	mgr := svStart(t, c, append([]string{"relay"}, svRelayListen...)...)
	info := svRunFile(t, mgr, c.data, "relay")
	mgrURL := svURL(t, info, "https")
	var jt struct {
		Token string `json:"token"`
	}
	c.json(&jt, "proxy", "deploy", "--cluster", "edge", "--manual", "--manager", mgrURL)
	edge := &fleetRelay{c: &cli{t: t, data: t.TempDir(), env: c.env}, tls: freeAddrOn(t, "127.0.0.2"), plain: freeAddrOn(t, "127.0.0.2")}
	edge.start(t, "--manager", mgrURL, "--join", jt.Token, "--ca-sha256", info.CASHA256, "--hostname", "edge-2", "--heartbeat", "500ms")

	var ic struct {
		Command string `json:"command"`
	}
	c.json(&ic, "installcmd", "create", "--cluster", "edge")
	proxies, key, pin := installArgs(t, ic.Command)
	cmd := exec.Command(outpostBin, "agent", "run", "--proxy", proxies, "--key", key, "--ca-sha256", pin,
		"--dir", filepath.Join(t.TempDir(), "agent"), "--poll-wait", "1s", "--event-every", "0")
	cmd.Env = arEnv(t)
	agent := startProc(t, cmd, "outpost agent run")

	type row struct {
		Hostname  string `json:"hostname"`
		Online    bool   `json:"online"`
		Connected bool   `json:"connected"`
		Via       string `json:"via"`
	}
	list := func() []row {
		var page struct {
			Agents []row `json:"agents"`
		}
		r := c.run("agent", "list", "--cluster", "edge", "--json")
		if r.code != 0 {
			return nil
		}
		mustOneJSON(t, r.stdout, &page)
		return page.Agents
	}
	waitCond(t, agent, 30*time.Second, "the agent connected through edge-2", func() bool {
		rs := list()
		return len(rs) == 1 && rs[0].Connected && rs[0].Via == "edge-2"
	})
	if out := c.ok("agent", "list", "--cluster", "edge").stdout; !strings.Contains(out, "yes via edge-2") {
		t.Errorf("agent list: want CONNECTED yes via edge-2 in\n%s", out)
	}
	if out := c.ok("cluster", "list").stdout; !strings.Contains(out, "1/1 online, 1 connected now") {
		t.Errorf("cluster list: want 1/1 online, 1 connected now in\n%s", out)
	}

	edge.p.signal(syscall.SIGKILL)
	edge.p.waitExit(10 * time.Second)
	killed := time.Now()
	var last row
	waitCond(t, agent, 40*time.Second, "the agent no longer shown connected through the killed relay", func() bool {
		rs := list()
		if len(rs) == 1 {
			last = rs[0]
		}
		return len(rs) == 1 && !(rs[0].Connected && rs[0].Via == "edge-2")
	})
	t.Logf("%s after the kill: %+v", time.Since(killed).Round(time.Second), last)
	if !last.Online {
		t.Errorf("after the relay kill: got offline, want online (last contact is seconds old, the rule is 12 h)")
	}
	out := c.ok("cluster", "show", "edge").stdout
	if !strings.Contains(out, "proxy down: all 1 proxy server(s) offline: agents cannot connect through this cluster") || strings.Contains(out, "exceed") {
		t.Errorf("cluster show after the relay kill: want the proxy-down warning, no capacity warning:\n%s", out)
	}
	if !last.Connected && !strings.Contains(c.ok("cluster", "list").stdout, "1/1 online, 0 connected now") {
		t.Errorf("cluster list after the relay kill: want 1/1 online, 0 connected now")
	}
}
