package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay"
	"outpost/relay/collector"
	"outpost/relay/logs"
	"outpost/relay/logs/logstest"
	"outpost/relay/relaytest"
	"outpost/store"
)

// Environment of the relay child process (TestHelperRelayProcess).
const (
	envHelper   = "OUTPOST_TEST_RELAY_CHILD"
	envData     = "OUTPOST_TEST_RELAY_DATA"
	envUpstream = "OUTPOST_TEST_RELAY_UPSTREAM"
)

// TestHelperRelayProcess is not a test: run as a child by the fault test, it
// serves a management-host relay (store in OUTPOST_TEST_RELAY_DATA, plain
// HTTP allowed, forwarding to OUTPOST_TEST_RELAY_UPSTREAM) on 127.0.0.1:0,
// prints "LISTEN <url>" and serves until killed or until its stdin closes
// (the parent died).
func TestHelperRelayProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		return
	}
	dir := os.Getenv(envData)
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...) }
	db, err := store.Open(filepath.Join(dir, "outpost.db"), nil)
	if err != nil {
		logf("open store: %v", err)
		os.Exit(2)
	}
	cfg := relay.DefaultConfig()
	cfg.DataDir = dir
	cfg.Store = db
	cfg.Upstream = os.Getenv(envUpstream)
	cfg.AllowPlain = true
	cfg.PollTimeout = 5 * time.Second
	cfg.CheckinFlush = 50 * time.Millisecond
	cfg.Log = slog.New(logs.NewTextHandler(os.Stderr, logs.Options{})).With("child", true)
	srv, err := relay.New(cfg)
	if err != nil {
		logf("relay: %v", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		logf("listen: %v", err)
		os.Exit(2)
	}
	go srv.Serve(ln, false)
	fmt.Printf("LISTEN http://%s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	os.Exit(3)
}

// relayChild is a relay running in a child process.
type relayChild struct {
	cmd   *exec.Cmd
	stdin io.Closer
	URL   string
	log   *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startRelayChild(t *testing.T, dir, upstream string) *relayChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRelayProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"=1", envData+"="+dir, envUpstream+"="+upstream)
	c := &relayChild{cmd: cmd, log: &lockedBuffer{}}
	cmd.Stderr = c.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.kill() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
				found <- u
			}
		}
		close(found)
	}()
	select {
	case u, ok := <-found:
		if !ok {
			c.kill()
			t.Fatalf("relay child exited before listening:\n%s", c.log.String())
		}
		c.URL = u
	case <-time.After(30 * time.Second):
		c.kill()
		t.Fatalf("relay child did not start within 30s:\n%s", c.log.String())
	}
	return c
}

// kill sends SIGKILL (kill -9) and reaps the child; safe to call twice.
func (c *relayChild) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
	c.stdin.Close()
}

// Criterion 3: kill -9 of the relay while agents send, with the upstream
// down, loses no acknowledged event; duplicates are counted by the
// collector.
func TestFaultKill9LosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs relay child processes")
	}
	t.Parallel()
	const agents = 20
	ctx := context.Background()
	dataDir := t.TempDir()

	// Enrol the agents directly in the store the child will open.
	db, err := store.Open(filepath.Join(dataDir, "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	acct, _, err := db.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ic, err := db.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID})
	if err != nil {
		t.Fatal(err)
	}
	type ident struct{ id, secret string }
	var ids []ident
	for i := range agents {
		h, _ := linuxHost(i + 1)
		en, err := db.Enrol(ctx, store.EnrolInput{Key: ic.Key, Host: store.HostFacts{Hostname: h.Hostname, OS: h.OS, Arch: h.Arch, Fingerprint: h.Fingerprint}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ident{en.Agent.ID, en.Secret})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Reserve the collector's port; it stays closed (upstream down) for now.
	colAddr := relaytest.FreeAddr(t)

	child := startRelayChild(t, dataDir, "http://"+colAddr)
	t.Logf("relay child %d on %s", child.cmd.Process.Pid, child.URL)

	tr := agentsim.NewTransport(agentsim.ClientOptions{})
	t.Cleanup(tr.CloseIdleConnections)
	var senders []*sender
	for _, id := range ids {
		c := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{child.URL}, Transport: tr, Timeout: 3 * time.Second})
		c.SetCredentials(id.id, id.secret)
		senders = append(senders, &sender{C: c, Agent: id.id, Batch: 5})
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(runCtx, 50*time.Millisecond)
		}()
	}
	totalAcked := func() (n uint64) {
		for _, s := range senders {
			n += s.Acked()
		}
		return n
	}

	time.Sleep(time.Second)
	beforeKill := totalAcked()
	child.kill() // kill -9 while they are sending
	t.Logf("killed the relay (SIGKILL) after %d acked events; exit: %v", beforeKill, child.cmd.ProcessState)
	if beforeKill == 0 {
		t.Fatalf("no event was acknowledged before the kill:\n%s", child.log.String())
	}
	time.Sleep(200 * time.Millisecond) // agents fail and keep their data

	child2 := startRelayChild(t, dataDir, "http://"+colAddr)
	t.Logf("restarted relay child %d on %s", child2.cmd.Process.Pid, child2.URL)
	for _, s := range senders {
		s.C.SetProxies([]string{child2.URL})
	}
	waitFor(t, 10*time.Second, "events acked by the restarted relay", func() bool { return totalAcked() >= beforeKill+200 })
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()

	acked := map[string]uint64{}
	var ackedTotal, sentTotal uint64
	for _, s := range senders {
		acked[s.Agent] = s.Acked()
		ackedTotal += s.Acked()
		sentTotal += s.Sent()
	}

	// Now the upstream comes back.
	colDir := filepath.Join(t.TempDir(), "collector")
	col, err := collector.New(colDir, logstest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	cln, err := net.Listen("tcp", colAddr)
	if err != nil {
		t.Fatalf("collector port %s was taken meanwhile: %v", colAddr, err)
	}
	hs := &http.Server{Handler: col.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(cln)
	t.Cleanup(func() {
		hs.Close()
		col.Close()
	})

	waitFor(t, 30*time.Second, "collector to receive every acked event", func() bool {
		for a, n := range acked {
			if col.Received(a) < n {
				return false
			}
		}
		return true
	})
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	waitFor(t, 30*time.Second, "the relay spool to drain", func() bool {
		return metric(t, hc, child2.URL, "outpost_spool_records") == 0
	})

	// Check the set, not just the counts: every acked (agent, seq) is there.
	recs, bad := readRecords(t, colDir, "ingest-")
	sets := seqSets(recs)
	var lost, received uint64
	for _, s := range senders {
		got := sets[s.Agent]
		received += uint64(len(got))
		for seq := uint64(1); seq <= acked[s.Agent]; seq++ {
			if got[seq] == 0 {
				lost++
			}
		}
		for seq := range got {
			if seq > s.Sent() {
				t.Errorf("agent %s: collector has seq %d that was never sent (highest %d)", s.Agent, seq, s.Sent())
			}
		}
		if c := col.Received(s.Agent); c != uint64(len(got)) {
			t.Errorf("agent %s: collector counts %d, its files hold %d distinct", s.Agent, c, len(got))
		}
	}
	st := col.Stats()
	t.Logf("FAULT: %d agents, acked %d (%d before kill -9), sent %d, received %d distinct, duplicates %d, lost %d, bad lines %d",
		agents, ackedTotal, beforeKill, sentTotal, received, st.Duplicates, lost, bad)
	if lost != 0 {
		t.Errorf("lost %d acknowledged events, want 0", lost)
	}
	if bad != 0 {
		t.Errorf("collector files hold %d unparsable lines, want 0", bad)
	}
	if t.Failed() {
		t.Logf("relay child log:\n%s\n--- restarted:\n%s", child.log.String(), child2.log.String())
	}
}
