package main

// `outpost agent run` with its relay down: failover to the next --proxy, and
// events kept on disk until the relay is back (harness in agentrun_test.go).

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/relaytest"
)

// d) The first --proxy is down: the agent fails over to the next one and
// its events reach the collector.
func TestAgentRunFailover(t *testing.T) {
	t.Parallel()
	m := arStartManager(t, "")
	dead := "https://" + relaytest.FreeAddr(t)
	a := arStartAgent(t, m, filepath.Join(t.TempDir(), "agent"), "--proxy", dead+","+m.URL)
	id := arAgentID(t, a)
	waitCond(t, a.proc, 15*time.Second, "events at the collector", func() bool { return m.Col.Received(id) >= 3 })
	a.stop()
}

// arForwarder is a TCP forwarder that plays a relay which goes down and
// comes back on the same address: stop closes the listener and every
// connection.
type arForwarder struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
}

func (f *arForwarder) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for try := 0; try < 50; try++ {
		if ln, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("forwarder: %v", err)
	}
	f.mu.Lock()
	f.ln, f.conns = ln, map[net.Conn]bool{}
	f.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.pipe(c)
		}
	}()
}

func (f *arForwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		return false
	}
	for _, c := range cs {
		f.conns[c] = true
	}
	return true
}

func (f *arForwarder) pipe(c net.Conn) {
	up, err := net.Dial("tcp", f.target)
	if err != nil {
		c.Close()
		return
	}
	if !f.track(c, up) {
		c.Close()
		up.Close()
		return
	}
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

func (f *arForwarder) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		f.ln.Close()
	}
	for c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func arReadSeq(dir string) uint64 {
	b, _ := os.ReadFile(filepath.Join(dir, "buffer", "seq"))
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// d) The only relay is down for a while (and the agent restarts meanwhile):
// events are kept on disk and all arrive once it is back, without a gap.
func TestAgentRunBuffersWhileRelayDown(t *testing.T) {
	t.Parallel()
	addr := relaytest.FreeAddr(t)
	m := arStartManager(t, "https://"+addr)
	fwd := &arForwarder{addr: addr, target: strings.TrimPrefix(m.URL, "https://")}
	fwd.start(t)
	t.Cleanup(fwd.stop)
	dir := filepath.Join(t.TempDir(), "agent")
	a := arStartAgent(t, m, dir, "--proxy", "https://"+addr)
	id := arAgentID(t, a)
	waitCond(t, a.proc, 15*time.Second, "first events at the collector", func() bool { return m.Col.Received(id) > 0 })

	// The relay goes away; events pile up on disk, across a restart.
	fwd.stop()
	down := m.Col.Received(id)
	time.Sleep(1500 * time.Millisecond)
	a.stop()
	buf, err := agentsim.OpenDiskBuffer(filepath.Join(dir, "buffer"))
	if err != nil {
		t.Fatal(err)
	}
	waiting, issued := buf.Len(), buf.LastSeq()
	buf.Close()
	if waiting < 3 {
		t.Fatalf("%d events buffered on disk after 1.5s without a relay (seq %d), want several", waiting, issued)
	}
	a = arStartAgent(t, m, dir, "--proxy", "https://"+addr)
	waitCond(t, a.proc, 10*time.Second, "events generated after the restart", func() bool { return arReadSeq(dir) >= issued+3 })
	waitCond(t, a.proc, 10*time.Second, "the outage logged", func() bool { return strings.Contains(a.stderr.String(), "no relay reachable") })
	if got := m.Col.Received(id); got != down {
		t.Fatalf("collector received %d events while the relay was down (had %d)", got, down)
	}

	// The relay is back on the same address.
	fwd.start(t)
	waitCond(t, a.proc, 20*time.Second, "buffered events delivered", func() bool { return m.Col.Received(id) >= issued+3 })
	if !strings.Contains(a.stderr.String(), "events_on_disk=") {
		t.Errorf("the restart log does not mention the events on disk:\n%s", a.stderr.String())
	}
	a.stop()

	// Drain what is left without generating more: the collector then
	// holds exactly seqs 1..last, each once.
	buf, err = agentsim.OpenDiskBuffer(filepath.Join(dir, "buffer"))
	if err != nil {
		t.Fatal(err)
	}
	last := buf.LastSeq()
	buf.Close()
	a = arStartAgent(t, m, dir, "--proxy", "https://"+addr, "--event-every", "1h")
	waitCond(t, a.proc, 10*time.Second, "the drain run connected", func() bool { return strings.Contains(a.stderr.String(), "connected through") })
	waitCond(t, a.proc, 20*time.Second, fmt.Sprintf("all %d events at the collector", last), func() bool { return m.Col.Received(id) >= last })
	a.stop()
	if got := m.Col.Received(id); got != last {
		t.Fatalf("collector holds %d distinct events, agent issued %d", got, last)
	}
	buf, err = agentsim.OpenDiskBuffer(filepath.Join(dir, "buffer"))
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	if buf.Len() != 0 || buf.LastSeq() != last {
		t.Errorf("after delivery: %d on disk, last seq %d (want 0 and %d)", buf.Len(), buf.LastSeq(), last)
	}
}
