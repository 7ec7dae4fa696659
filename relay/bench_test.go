package relay_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay"
	"outpost/relay/logs/logstest"
	"outpost/relay/wire"
	"outpost/store"
)

// BenchmarkHeldCheckins measures what each connected agent costs one
// relay: N agents (OUTPOST_BENCH_AGENTS, default 2000) each hold a long-poll
// check-in open, over TLS (agents speak HTTP/2 there) and over plain
// HTTP/1.1. The agents run in a child process (TestHelperBenchClients), so
// the figures are the relay's alone: RSS, heap and goroutine-stack growth per
// held check-in, and goroutines per agent. One process may open only so many
// files: keep N at a few thousand and read the per-agent figures.
// OUTPOST_BENCH_EVENTS=R has each agent send R events (~200 B each) first.
//
//	OUTPOST_BENCH_AGENTS=5000 go test -run '^$' -bench HeldCheckins -benchtime 1x ./relay/
func BenchmarkHeldCheckins(b *testing.B) {
	n := benchAgents(b, 2000)
	raiseNoFile(b, uint64(n)+4096)
	db, agents := benchFleet(b, n, 5*time.Minute)
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"tls", true}, {"http1", false}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				benchHeld(b, db, agents, tc.tls)
			}
		})
	}
}

func benchHeld(b *testing.B, db *store.DB, agents []benchAgent, useTLS bool) {
	n := len(agents)
	srv, url, plain := benchRelay(b, db, useTLS, 5*time.Minute)
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	events, _ := strconv.Atoi(os.Getenv("OUTPOST_BENCH_EVENTS"))
	spec, _ := json.Marshal(benchSpec{URL: url, CA: srv.CAFingerprint(), Agents: agents, Events: events})
	specPath := filepath.Join(b.TempDir(), "agents.json")
	if err := os.WriteFile(specPath, spec, 0o600); err != nil {
		b.Fatal(err)
	}
	before := relayMem()
	start := time.Now()
	stopChild := startBenchClients(b, specPath)
	defer stopChild()
	deadline := time.Now().Add(max(time.Minute, time.Duration(n)*20*time.Millisecond))
	held := int64(0)
	for held < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d check-ins held after %s", held, n, time.Since(start).Round(time.Second))
		}
		time.Sleep(200 * time.Millisecond)
		held = metric(b, hc, plain, "outpost_checkins_held")
	}
	connect := time.Since(start)
	time.Sleep(time.Second) // let the check-in batches settle
	after := relayMem()
	if h := metric(b, hc, plain, "outpost_checkins_held"); h != int64(n) {
		b.Fatalf("held check-ins dropped to %d of %d while measuring", h, n)
	}
	per := func(x, y uint64) float64 { return (float64(x) - float64(y)) / float64(n) }
	b.ReportMetric(float64(n), "held")
	b.ReportMetric(per(after.rss, before.rss), "rss-B/agent")
	b.ReportMetric(per(after.heap+after.stack, before.heap+before.stack), "bytes/agent")
	b.ReportMetric(per(after.heap, before.heap), "heap-B/agent")
	b.ReportMetric(per(after.stack, before.stack), "stack-B/agent")
	b.ReportMetric(per(after.goroutines, before.goroutines), "goroutines/agent")
	b.ReportMetric(connect.Seconds(), "s-to-hold-all")
	if p := os.Getenv("OUTPOST_BENCH_MEMPROFILE"); p != "" {
		f, err := os.Create(fmt.Sprintf("%s.%t", p, useTLS))
		if err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	b.Logf("%d check-ins held (tls %t) after %s: rss %+.1f MiB, heap %+.1f MiB, stacks %+.1f MiB, goroutines %d -> %d",
		n, useTLS, connect.Round(time.Millisecond), per(after.rss, before.rss)*float64(n)/(1<<20), per(after.heap, before.heap)*float64(n)/(1<<20),
		per(after.stack, before.stack)*float64(n)/(1<<20), before.goroutines, after.goroutines)
}

func benchAgents(b *testing.B, def int) int {
	v := os.Getenv("OUTPOST_BENCH_AGENTS")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("OUTPOST_BENCH_AGENTS=%q: want a positive number", v)
	}
	return n
}

// benchFleet enrols n agents into a temp-file store.
func benchFleet(b *testing.B, n int, poll time.Duration) (*store.DB, []benchAgent) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(b.TempDir(), "outpost.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	st := db.Settings()
	st.PollTimeout = poll
	if err := db.SetSettings(ctx, st); err != nil {
		b.Fatal(err)
	}
	acct, _, err := db.CreateAccount(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	ic, err := db.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID})
	if err != nil {
		b.Fatal(err)
	}
	var agents []benchAgent
	for i := range n {
		h, _ := linuxHost(i + 1)
		en, err := db.Enrol(ctx, store.EnrolInput{Key: ic.Key, Host: store.HostFacts{Hostname: h.Hostname, OS: h.OS, Arch: h.Arch, Fingerprint: h.Fingerprint}})
		if err != nil {
			b.Fatalf("enrol %d: %v", i, err)
		}
		agents = append(agents, benchAgent{ID: en.Agent.ID, Secret: en.Secret, Fingerprint: h.Fingerprint})
	}
	return db, agents
}

// benchRelay serves db on a TLS or plain listener (url) and, for /metrics,
// on a plain one (plain); both close with the benchmark.
func benchRelay(b *testing.B, db *store.DB, useTLS bool, poll time.Duration) (*relay.Server, string, string) {
	cfg := relay.DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.Store = db
	cfg.AllowPlain = true
	cfg.PollTimeout = poll
	cfg.Log = logstest.New(b)
	srv, err := relay.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var urls []string
	for _, t := range []bool{useTLS, false} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go srv.Serve(ln, t)
		scheme := "http://"
		if t {
			scheme = "https://"
		}
		urls = append(urls, scheme+ln.Addr().String())
	}
	b.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Close(cctx)
	})
	return srv, urls[0], urls[1]
}

// startBenchClients runs TestHelperBenchClients on the spec; the returned
// func stops it.
func startBenchClients(b *testing.B, specPath string) func() {
	child := exec.Command(os.Args[0], "-test.run=^TestHelperBenchClients$", "-test.count=1")
	child.Env = append(os.Environ(), envBenchClients+"="+specPath)
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	return func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { child.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			child.Process.Kill()
			<-done
		}
	}
}

type benchAgent struct {
	ID, Secret, Fingerprint string
}

type benchSpec struct {
	URL    string
	CA     string // pin for an https URL
	Events int    // records of ~200 B each agent sends before holding
	Agents []benchAgent
}

const envBenchClients = "OUTPOST_BENCH_CLIENTS"

type memFigures struct{ rss, heap, stack, sys, goroutines uint64 }

// relayMem reads this process's figures after returning free memory to the
// OS, so RSS counts what is live (and the allocator's overhead on it).
func relayMem() memFigures {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memFigures{heap: ms.HeapInuse, stack: ms.StackInuse, sys: ms.Sys, goroutines: uint64(runtime.NumGoroutine())}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			m.rss = pages * uint64(os.Getpagesize())
		}
	}
	return m
}

// raiseNoFile lifts the soft open-files limit towards need (up to the hard
// limit): every held check-in is one connection.
func raiseNoFile(tb testing.TB, need uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		tb.Logf("getrlimit: %v", err)
		return
	}
	if rl.Cur >= need {
		return
	}
	rl.Cur = min(max(need, rl.Cur), rl.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		tb.Logf("setrlimit: %v", err)
	}
	if rl.Cur < need {
		tb.Logf("open-files limit %d is below the %d needed: raise it (ulimit -n)", rl.Cur, need)
	}
}

// TestHelperBenchClients is not a test: run as a child by
// BenchmarkHeldCheckins, it keeps one long-poll check-in open per agent
// listed in the file named by OUTPOST_BENCH_CLIENTS until its stdin closes.
// Agents are spread over 127.0.0.x source addresses, 250 per address and
// one shared transport each, so large N does not run out of ports.
func TestHelperBenchClients(t *testing.T) {
	path := os.Getenv(envBenchClients)
	if path == "" {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var spec benchSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	raiseNoFile(t, uint64(len(spec.Agents))+1024)
	ctx, cancel := context.WithCancel(context.Background())
	const perIP = 250
	var tr *http.Transport
	for i, a := range spec.Agents {
		ip := net.IPv4(127, 0, byte(1+i/perIP/250), byte(2+(i/perIP)%250))
		if i%perIP == 0 || strings.HasPrefix(spec.URL, "https://") {
			// On TLS each agent has its own transport: one connection
			// per agent, as in a fleet (HTTP/2 would multiplex them).
			tr = agentsim.NewTransport(agentsim.ClientOptions{LocalIP: ip, CASHA256: spec.CA})
		}
		c := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{spec.URL}, CASHA256: spec.CA, Transport: tr, Timeout: 30 * time.Second})
		c.SetCredentials(a.ID, a.Secret)
		go func() {
			if spec.Events > 0 {
				// As agents do: a batch of events first, on the same
				// connection on TLS, so buffers it leaves count.
				data, _ := json.Marshal(strings.Repeat("x", 180))
				recs := make([]wire.Record, spec.Events)
				for i := range recs {
					recs[i] = wire.Record{Seq: uint64(i + 1), Time: time.Now(), Type: "log", Data: data}
				}
				if _, err := c.SendEvents(ctx, recs); err != nil {
					fmt.Fprintf(os.Stderr, "bench client %s: events: %v\n", a.ID, err)
				}
			}
			for ctx.Err() == nil {
				_, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: a.Fingerprint, Wait: wire.Duration(5 * time.Minute)})
				if err != nil && ctx.Err() == nil {
					if !strings.Contains(err.Error(), "shutting down") {
						fmt.Fprintf(os.Stderr, "bench client %s: %v\n", a.ID, err)
					}
					time.Sleep(time.Second)
				}
			}
		}()
	}
	io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	cancel()
	os.Exit(0)
}
