package main

// `outpost up` with the demo fleet, run as an operator runs it (helpers in
// serve_test.go).

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// svDemoPorts are the fixed loopback ports of the demo relays (demo.go);
// only TestUpDemo uses them.
var svDemoPorts = []int{18443, 18444, 18445, 18446}

var (
	svAgentsLine  = regexp.MustCompile(`(?m)^agents: (\d+) enrolled`)
	svClusterLine = regexp.MustCompile(`(?m)^cluster (\S+)\s+(\S+)\s`)
)

// svDemoReady reports whether one summary block shows the three demo
// clusters online and some agents enrolled.
func svDemoReady(block string) bool {
	m := svAgentsLine.FindStringSubmatch(block)
	if m == nil {
		return false
	}
	if n, _ := strconv.Atoi(m[1]); n <= 0 {
		return false
	}
	online := map[string]bool{}
	for _, c := range svClusterLine.FindAllStringSubmatch(block, -1) {
		online[c[1]] = c[2] == "online"
	}
	return online["beijing-idc"] && online["hangzhou-vpc"] && online["shanghai-cache"]
}

// TestUpDemo runs the all-in-one host with the demo fleet and its plain
// live summary, reads the shared store from a second process, and stops it
// with SIGINT.
func TestUpDemo(t *testing.T) {
	t.Parallel()
	demoPorts.Lock() // the demo's fixed ports (TestDashboardInTmux)
	defer demoPorts.Unlock()
	for _, port := range svDemoPorts {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Skipf("demo relay port %d is not free: %v", port, err)
		}
		ln.Close()
	}
	c := newCLI(t)
	p := svStart(t, c, append([]string{"up", "--demo", "--no-tui", "--demo-agents", "40"}, svRelayListen...)...)
	svRunFile(t, p, c.data, "relay")

	deadline := time.Now().Add(25 * time.Second)
	for {
		ready := false
		for _, block := range strings.Split(p.stdout.String(), "\n== outpost ") {
			ready = ready || svDemoReady(block)
		}
		if ready {
			break
		}
		if p.exited() {
			if strings.Contains(p.stderr.String(), "is in use") {
				t.Skipf("a demo relay port was taken meanwhile: %s", strings.TrimSpace(p.stderr.String()))
			}
			t.Fatalf("up exited before the summary showed the demo fleet: %v", p.state)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no summary with the three demo clusters online and agents enrolled within 25s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	var cs []clusterJSON
	c.json(&cs, "cluster", "list")
	names := map[string]bool{}
	for _, cl := range cs {
		names[cl.Name] = true
	}
	if got, want := len(cs), 3; got != want || !names["beijing-idc"] || !names["hangzhou-vpc"] || !names["shanghai-cache"] {
		t.Errorf("cluster list from a second process: got %d clusters %v, want the 3 demo clusters", got, names)
	}

	sent := time.Now()
	p.signal(syscall.SIGINT)
	p.wantExit0(10 * time.Second)
	t.Logf("up stopped %s after SIGINT", time.Since(sent).Round(time.Millisecond))
	svRunFileGone(t, c.data, "relay")
}
