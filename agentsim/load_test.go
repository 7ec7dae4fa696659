package agentsim_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay"
	"outpost/relay/logs/logstest"
	"outpost/relay/relaytest"
	"outpost/store"
)

// TestLoad is the fleet load harness (`make load`): N simulated agents
// (default 10,000) enrol and hold check-ins through one relay process for a
// run (default 60 s at 1 event/s per agent); halfway the relay is killed
// with SIGKILL and restarted. It fails unless every acknowledged event
// reached the collector. It prints the report and the relay's memory per
// connected agent. Skipped unless OUTPOST_LOAD=1; loopback only.
func TestLoad(t *testing.T) {
	if os.Getenv("OUTPOST_LOAD") != "1" {
		t.Skip("set OUTPOST_LOAD=1 (make load) to run the fleet load harness")
	}
	agents := envInt("OUTPOST_LOAD_AGENTS", 10000)
	dur := envDuration("OUTPOST_LOAD_DURATION", 60*time.Second)
	kill := os.Getenv("OUTPOST_LOAD_KILL") != "0"
	if _, err := agentsim.RaiseFileLimit(); err != nil {
		t.Logf("raise file limit: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "outpost")
	build := exec.Command("go", "build", "-o", bin, "../cmd/outpost")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	data := filepath.Join(dir, "data")
	key := seedAccount(t, data)
	port, tlsPort := freePort(t), freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)

	relay := startRelayProc(t, bin, data, port, tlsPort)
	baseRSS := rss(relay.Process.Pid)
	// Agents use TLS (HTTP/2, one connection each) with the relay's CA pinned.
	pin := caPin(t, data)
	statsTok := statsToken(t, data)
	agentURL := fmt.Sprintf("https://127.0.0.1:%d", tlsPort)

	var log *slog.Logger // nil: none
	if os.Getenv("OUTPOST_LOAD_VERBOSE") != "" {
		log = logstest.New(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur+5*time.Minute)
	defer cancel()
	type result struct {
		rep agentsim.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := agentsim.RunSim(ctx, agentsim.SimConfig{
			Proxies: []string{agentURL}, CASHA256: pin, Key: key, Agents: agents, EventsPerSec: 1, Duration: dur, Seed: 7,
			Version: "1.0.0", Wait: 30 * time.Second, InventoryEvery: 20 * time.Second, CollectorURL: url, CollectorToken: statsTok,
			DrainTimeout: 3 * time.Minute, EnrolRate: 500, Linger: 2 * time.Second, Log: log,
		})
		done <- result{rep, err}
	}()

	// Memory per connected agent, sampled once the fleet is connected.
	deadline := time.Now().Add(dur / 2)
	for time.Now().Before(deadline.Add(-3*time.Second)) && metric(url, "outpost_checkins_held") < int64(agents)*98/100 {
		time.Sleep(time.Second)
	}
	held := metric(url, "outpost_checkins_held")
	steadyRSS := rss(relay.Process.Pid)
	if kill {
		time.Sleep(time.Until(deadline))
		t.Logf("kill -9 relay pid %d mid-run", relay.Process.Pid)
		relay.Process.Signal(syscall.SIGKILL)
		relay.Wait()
		startRelayProc(t, bin, data, port, tlsPort) // killed by its cleanup
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	// The relay's own time per request (since its last start), apart from
	// the simulator's scheduling on the same two cores.
	relaySide := ""
	for _, path := range []string{"enrol", "checkin", "events"} {
		relaySide += fmt.Sprintf("%-24s %s\n", "relay-side "+path, histogramQuantiles(url, path))
	}
	rep := r.rep
	var perAgent int64
	if held > 0 {
		perAgent = (steadyRSS - baseRSS) / held
	}
	fmt.Printf("\n== fleet load: %d agents, %s, 1 event/s each, relay killed mid-run: %v ==\n%s", agents, dur, kill, rep)
	fmt.Print(relaySide)
	fmt.Printf("%-24s %d\n%-24s %.1f MiB -> %.1f MiB\n%-24s %.1f KiB\n", "held check-ins (sampled)", held,
		"relay RSS", float64(baseRSS)/(1<<20), float64(steadyRSS)/(1<<20), "relay RSS per agent", float64(perAgent)/1024)
	if rep.Lost == nil || *rep.Lost != 0 {
		t.Errorf("acknowledged events lost (or not checked), want 0:\n%s", rep)
	}
	if rep.Enrolled < int64(agents) {
		t.Errorf("enrolled %d, want %d", rep.Enrolled, agents)
	}
}

func seedAccount(t *testing.T, data string) string {
	t.Helper()
	db, err := store.Open(filepath.Join(data, "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	// The account verification key enrols direct agents of any OS.
	_, key, err := db.CreateAccount(ctx, "load")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func startRelayProc(t *testing.T, bin, data string, port, tlsPort int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "relay", "--data", data, "--listen", fmt.Sprintf("http://127.0.0.1:%d", port),
		"--listen", fmt.Sprintf("https://127.0.0.1:%d", tlsPort))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return cmd
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("relay did not start on port %d", port)
	return nil
}

// caPin reads the CA fingerprint the relay wrote to its run file.
func caPin(t *testing.T, data string) string {
	t.Helper()
	info, err := relay.ReadRunFile(data, "relay")
	if err != nil {
		t.Fatal(err)
	}
	return info.CASHA256
}

func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(relaytest.FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// rss is the resident set of a process in bytes, from /proc.
func rss(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func metric(base, name string) int64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64) // 1.234567e+06 for large values
			return int64(f)
		}
	}
	return 0
}

// histogramQuantiles reads outpost_request_seconds for path from /metrics
// and gives p50/p90/p99 as bucket upper bounds.
func histogramQuantiles(base, path string) string {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	type bucket struct {
		le  string
		cum int64
	}
	var bs []bucket
	prefix := fmt.Sprintf(`outpost_request_seconds_bucket{path=%q,le="`, path)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		le, count, _ := strings.Cut(rest, `"} `)
		n, _ := strconv.ParseFloat(count, 64)
		bs = append(bs, bucket{le, int64(n)})
	}
	if len(bs) == 0 || bs[len(bs)-1].cum == 0 {
		return "no samples"
	}
	total := bs[len(bs)-1].cum
	q := func(f float64) string {
		for _, b := range bs {
			if float64(b.cum) >= f*float64(total) {
				return "<=" + b.le + "s"
			}
		}
		return "?"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  (n=%d)", q(0.5), q(0.9), q(0.99), total)
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil && n > 0 {
		return n
	}
	return def
}

func envDuration(k string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(k)); err == nil && d > 0 {
		return d
	}
	return def
}

// statsToken is the management host's token for /v1/stats.
func statsToken(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "stats.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
