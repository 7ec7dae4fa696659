//go:build linux

package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// perfConfig is what one `make perf` run does; every figure is taken in
// `pairs` interleaved rounds (Outpost, peer, Outpost, peer, ...) and the
// table shows medians.
type perfConfig struct {
	pairs   int
	intake  time.Duration // one intake sample
	sustain time.Duration // one sustained-forwarding sample
	checkin time.Duration // one check-ins/s sample
	agents  int           // held agents
	workers int           // check-in connections
	rows    map[string]bool
	cmd     string // how the rows are rerun
}

func perfSettings(t *testing.T) perfConfig {
	t.Helper()
	c := perfConfig{pairs: 3, intake: 5 * time.Second, sustain: 20 * time.Second, checkin: 5 * time.Second,
		agents: 15_000, workers: 256, cmd: "make perf"}
	if os.Getenv("OUTPOST_PERF_QUICK") != "" {
		c = perfConfig{pairs: 1, intake: 2 * time.Second, sustain: 6 * time.Second, checkin: 2 * time.Second,
			agents: 1500, workers: 64, cmd: "OUTPOST_PERF_QUICK=1 make perf"}
	}
	for _, v := range []struct {
		env string
		to  *int
	}{{"OUTPOST_PERF_PAIRS", &c.pairs}, {"OUTPOST_PERF_AGENTS", &c.agents}, {"OUTPOST_PERF_WORKERS", &c.workers}} {
		if s := os.Getenv(v.env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				t.Fatalf("%s=%q: want a positive number", v.env, s)
			}
			*v.to = n
		}
	}
	if s := os.Getenv("OUTPOST_PERF_SUSTAIN"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second {
			t.Fatalf("OUTPOST_PERF_SUSTAIN=%q: want a duration of at least 1s", s)
		}
		c.sustain = d
	}
	all := []string{"intake", "sustain", "held", "checkins"}
	c.rows = map[string]bool{}
	for _, r := range strings.Split(os.Getenv("OUTPOST_PERF_ROWS"), ",") {
		if r = strings.TrimSpace(r); r != "" {
			if !strings.Contains(strings.Join(all, ","), r) {
				t.Fatalf("OUTPOST_PERF_ROWS: unknown row %q (want some of %s)", r, strings.Join(all, ","))
			}
			c.rows[r] = true
		}
	}
	if len(c.rows) == 0 {
		for _, r := range all {
			c.rows[r] = true
		}
	}
	return c
}

// rowCmd is the command that measures one group of rows again.
func (c perfConfig) rowCmd(rows string) string {
	return "`OUTPOST_PERF_ROWS=" + rows + " " + c.cmd + "`"
}

type perfRow struct {
	figure, outpost, peer, limit, ratio, command string
	target                                       *perfTarget // nil: the issue sets none
}

// perfTarget is one of the targets and whether this run met it.
type perfTarget struct {
	what string // "forward intake ≥ 100 MB/s"
	got  string
	met  bool
}

// TestPerf is `make perf`: Outpost beside its peers and limits on this
// machine, every process on loopback, one markdown table at the end
// (ratio = Outpost / peer, or / limit where there is no peer). It is a
// measurement harness, not a timed unit test:
//
//	OUTPOST_PERF=1 go test -run '^TestPerf$' -count=1 -v -timeout 30m ./cmd/outpost/
//
// OUTPOST_PERF_QUICK=1 takes one pair of short samples and 1,500 agents;
// OUTPOST_PERF_ROWS=intake,sustain,held,checkins picks rows;
// OUTPOST_PERF_PAIRS, OUTPOST_PERF_AGENTS, OUTPOST_PERF_WORKERS and
// OUTPOST_PERF_SUSTAIN tune them.
func TestPerf(t *testing.T) {
	if os.Getenv("OUTPOST_PERF") == "" {
		t.Skip("measurement harness: set OUTPOST_PERF=1 (or run make perf)")
	}
	cfg := perfSettings(t)
	start := time.Now()
	var rows []perfRow
	if cfg.rows["intake"] || cfg.rows["sustain"] {
		e := startPerfEvents(t)
		if cfg.rows["intake"] {
			rows = append(rows, perfIntake(t, e, cfg)...)
		}
		if cfg.rows["sustain"] {
			rows = append(rows, perfSustain(t, e, cfg)...)
		}
	}
	if cfg.rows["held"] || cfg.rows["checkins"] {
		h := newPerfHost(t, max(cfg.agents, cfg.workers))
		if cfg.rows["held"] {
			rows = append(rows, perfHeld(t, h, cfg)...)
		}
		if cfg.rows["checkins"] {
			rows = append(rows, perfCheckins(t, h, cfg)...)
		}
	}
	printPerfTable(rows, cfg, time.Since(start))
}

func printPerfTable(rows []perfRow, cfg perfConfig, took time.Duration) {
	host, _ := os.Hostname()
	fmt.Printf("\nOutpost performance, %s, %s/%s, %d cores (%s), %d pair(s) of samples, medians; took %s\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), host,
		cfg.pairs, took.Round(time.Second))
	fmt.Println("| figure | Outpost | peer | limit | ratio | command |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", r.figure, r.outpost, r.peer, r.limit, r.ratio, r.command)
	}
	fmt.Println("\nratio: Outpost / peer, or Outpost / limit where there is no peer.")
	fmt.Println("\nTargets:")
	for _, r := range rows {
		if g := r.target; g != nil {
			verdict := "not met"
			if g.met {
				verdict = "met"
			}
			fmt.Printf("- %s: %s (%s)\n", g.what, verdict, g.got)
		}
	}
}

// perfIntake: events in, acknowledged durable, forward and cache mode,
// beside nginx -> center and the disk's write + fsync every 5 ms.
func perfIntake(t *testing.T, e *perfEvents, cfg perfConfig) []perfRow {
	t.Logf("intake: %d round(s) of %s each: disk, nginx -> center, cache relay, forward relay", cfg.pairs, cfg.intake)
	var ng, fw, ca, disk []float64
	var ngEv, fwEv, caEv []float64
	for i := range cfg.pairs {
		e.drain(t, 45*time.Second)
		disk = append(disk, diskLimit(t, t.TempDir(), min(cfg.intake, 2*time.Second)))
		t.Logf("  round %d disk write + fsync every 5 ms: %.0f MB/s", i+1, disk[len(disk)-1])
		if e.nginx != nil {
			r := blast(t, e.nginxConns(), cfg.intake)
			ng, ngEv = append(ng, r.mbPerSec()), append(ngEv, r.evPerSec())
			t.Logf("  round %d nginx -> center: %.1f MB/s", i+1, r.mbPerSec())
		}
		r := blast(t, e.cache.conns(), cfg.intake)
		ca, caEv = append(ca, r.mbPerSec()), append(caEv, r.evPerSec())
		t.Logf("  round %d cache: %.1f MB/s (%d answered 429)", i+1, r.mbPerSec(), r.throttled)
		// Forward last: its spool drains before the next round.
		r = blast(t, e.fwd.conns(), cfg.intake)
		fw, fwEv = append(fw, r.mbPerSec()), append(fwEv, r.evPerSec())
		t.Logf("  round %d forward: %.1f MB/s (%d answered 429)", i+1, r.mbPerSec(), r.throttled)
	}
	e.drain(t, 45*time.Second)
	e.checkDelivered(t)
	peer := fmt.Sprintf("nginx -> center %s (%s ev/s)", mbs(perfMedian(ng)), perfSI(perfMedian(ngEv)))
	limit := fmt.Sprintf("disk write + fsync every 5 ms %.0f MB/s", perfMedian(disk))
	if e.nginx == nil {
		peer = e.nginxWhy
	}
	row := func(mode string, mb, ev []float64) perfRow {
		return perfRow{figure: "events in, acknowledged durable, " + mode + " mode (target ≥ 100 MB/s)",
			outpost: fmt.Sprintf("%s (%s ev/s)", mbs(perfMedian(mb)), perfSI(perfMedian(ev))), peer: peer, limit: limit,
			ratio: perfRatio(perfMedian(mb), perfMedian(ng)), command: cfg.rowCmd("intake"),
			target: &perfTarget{mode + " mode intake ≥ 100 MB/s", mbs(perfMedian(mb)), perfMedian(mb) >= 100}}
	}
	return []perfRow{row("forward", fw, fwEv), row("cache", ca, caEv)}
}

func mbs(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MB/s", v)
}

// perfSustain: forward mode end to end for cfg.sustain (agent -> relay ->
// spool -> center) beside nginx -> center on the same load, and the CPU
// each side spent per event in those runs.
func perfSustain(t *testing.T, e *perfEvents, cfg perfConfig) []perfRow {
	t.Logf("sustained: %d round(s) of %s each: nginx -> center, then the forward relay", cfg.pairs, cfg.sustain)
	var ng, fwd, intake, growth, relayCPU, centerCPU, peerCPU []float64
	centerPID := e.center.cmd.Process.Pid
	for i := range cfg.pairs {
		e.drain(t, 45*time.Second)
		if e.nginx != nil {
			c0 := cpuOf(e.peerPIDs()...)
			r := blast(t, e.nginxConns(), cfg.sustain)
			ng = append(ng, r.evPerSec())
			peerCPU = append(peerCPU, (cpuOf(e.peerPIDs()...)-c0)/float64(r.events)*1e6)
			t.Logf("  round %d nginx -> center: %s ev/s, %.2f µs CPU per event", i+1, perfSI(r.evPerSec()), peerCPU[len(peerCPU)-1])
		}
		pid := e.fwd.p.cmd.Process.Pid
		f0, s0 := perfMetric(t, e.fwd.plain, "outpost_forwarded_records_total"), perfMetric(t, e.fwd.plain, "outpost_spool_bytes")
		r0, cc0 := cpuOf(pid), cpuOf(centerPID)
		start := time.Now()
		r := blast(t, e.fwd.conns(), cfg.sustain)
		el := time.Since(start)
		f1, s1 := perfMetric(t, e.fwd.plain, "outpost_forwarded_records_total"), perfMetric(t, e.fwd.plain, "outpost_spool_bytes")
		relayCPU = append(relayCPU, (cpuOf(pid)-r0)/float64(r.events)*1e6)
		centerCPU = append(centerCPU, (cpuOf(centerPID)-cc0)/float64(r.events)*1e6)
		fwd, intake, growth = append(fwd, (f1-f0)/el.Seconds()), append(intake, r.evPerSec()), append(growth, (s1-s0)/1e6)
		t.Logf("  round %d forward: %s ev/s forwarded, %s ev/s in (%d answered 429), spool %+.0f MB; relay %.2f µs, center %.2f µs CPU per event",
			i+1, perfSI(fwd[i]), perfSI(intake[i]), r.throttled, growth[i], relayCPU[i], centerCPU[i])
	}
	e.drain(t, 45*time.Second)
	e.checkDelivered(t)
	if os.Getenv("OUTPOST_PERF_PROFILE") != "" { // a clean stop writes the profiles
		for _, p := range []*proc{e.fwd.p, e.center} {
			p.signal(syscall.SIGTERM)
			p.waitExit(30 * time.Second)
		}
	}
	peer := "nginx -> center " + perfSI(perfMedian(ng)) + " ev/s"
	cpuPeer := fmt.Sprintf("nginx + center %.2f µs", perfMedian(peerCPU))
	if e.nginx == nil {
		peer, cpuPeer = e.nginxWhy, e.nginxWhy
	}
	secs := cfg.sustain.Round(time.Second).String()
	return []perfRow{
		{figure: "forward mode sustained " + secs + ", end to end (target ≥ 1.0x nginx -> center)",
			outpost: fmt.Sprintf("%s ev/s forwarded (%s ev/s in), spool %+.0f MB", perfSI(perfMedian(fwd)), perfSI(perfMedian(intake)), perfMedian(growth)),
			peer:    peer, limit: "-", ratio: perfRatio(perfMedian(fwd), perfMedian(ng)), command: cfg.rowCmd("sustain"),
			target: &perfTarget{"sustained forwarding ≥ 1.0x nginx -> center", perfRatio(perfMedian(fwd), perfMedian(ng)) + "x", perfMedian(fwd) >= perfMedian(ng)}},
		{figure: "relay CPU per event, same runs (lower is better)",
			outpost: fmt.Sprintf("%.2f µs (center %.2f µs more)", perfMedian(relayCPU), perfMedian(centerCPU)),
			peer:    cpuPeer, limit: "-", ratio: perfRatio(perfMedian(relayCPU), perfMedian(peerCPU)), command: cfg.rowCmd("sustain")},
	}
}

// perfHeld: relay RSS per held check-in over TLS and HTTP/1.1 beside an
// idle net/http connection of the same kind.
func perfHeld(t *testing.T, h *perfHost, cfg perfConfig) []perfRow {
	t.Logf("held check-ins: %d round(s) at %d agents: relay and idle net/http, TLS and HTTP/1.1", cfg.pairs, cfg.agents)
	type side struct {
		relay, gor, base []float64
	}
	var tlsS, plainS side
	for i := range cfg.pairs {
		for _, useTLS := range []bool{true, false} {
			s, name := &plainS, "HTTP/1.1"
			if useTLS {
				s, name = &tlsS, "TLS"
			}
			f := heldRelay(t, h, useTLS, cfg.agents)
			b := heldBaseline(t, useTLS, cfg.agents)
			s.relay, s.gor, s.base = append(s.relay, f.kib), append(s.gor, f.goroutines), append(s.base, b)
			t.Logf("  round %d %s: relay %.1f KiB and %.1f goroutines per agent, idle net/http %.1f KiB", i+1, name, f.kib, f.goroutines, b)
		}
	}
	row := func(name, target string, s side, base string) perfRow {
		limit, _ := strconv.ParseFloat(strings.Fields(target)[0], 64)
		return perfRow{target: &perfTarget{"relay RSS per held " + name + " agent ≤ " + target, fmt.Sprintf("%.1f KiB", perfMedian(s.relay)), perfMedian(s.relay) <= limit},
			figure:  fmt.Sprintf("held check-in, relay RSS per agent, %s, %d agents (target ≤ %s)", name, cfg.agents, target),
			outpost: fmt.Sprintf("%.1f KiB (%.1f goroutines per agent)", perfMedian(s.relay), perfMedian(s.gor)),
			peer:    fmt.Sprintf("idle net/http %s connection %.1f KiB", base, perfMedian(s.base)), limit: "-",
			ratio: perfRatio(perfMedian(s.relay), perfMedian(s.base)), command: "`OUTPOST_PERF_AGENTS=" + strconv.Itoa(cfg.agents) + " " + strings.Trim(cfg.rowCmd("held"), "`") + "`"}
	}
	return []perfRow{row("TLS (HTTP/2)", "24 KiB", tlsS, "TLS"), row("HTTP/1.1", "16 KiB", plainS, "HTTP/1.1")}
}

// perfCheckins: check-ins/s end to end into SQLite over TLS and HTTP/1.1
// beside the store alone (its own benchmark, BenchmarkRecordCheckins).
func perfCheckins(t *testing.T, h *perfHost, cfg perfConfig) []perfRow {
	t.Logf("check-ins/s: %d round(s) of %s, %d connections, %d agents: TLS, HTTP/1.1, store alone", cfg.pairs, cfg.checkin, cfg.workers, len(h.agents))
	bench, why := buildStoreBench(t)
	h.start(t)
	since := time.Now()
	var tlsR, plainR, storeR, tlsCPU, plainCPU []float64
	for i := range cfg.pairs {
		r, c := checkinRate(t, h, true, cfg.workers, cfg.checkin)
		tlsR, tlsCPU = append(tlsR, r), append(tlsCPU, c)
		r, c = checkinRate(t, h, false, cfg.workers, cfg.checkin)
		plainR, plainCPU = append(plainR, r), append(plainCPU, c)
		if bench != "" {
			v, err := runStoreBench(bench)
			if err != nil {
				why, bench = err.Error(), ""
			} else {
				storeR = append(storeR, v)
			}
		}
		t.Logf("  round %d: TLS %s/s, HTTP/1.1 %s/s, store alone %s/s", i+1, perfSI(tlsR[i]), perfSI(plainR[i]), perfSI(perfMedian(storeR[min(i, len(storeR)):])))
	}
	h.stop(t) // flushes the last check-in batch
	t.Logf("  %s", h.written(t, since))
	limit := "store alone " + perfSI(perfMedian(storeR)) + "/s"
	if len(storeR) == 0 {
		limit = "store alone: " + why
	}
	row := func(name, target string, r, cpu []float64) perfRow {
		var goal *perfTarget
		if target != "" {
			goal = &perfTarget{"check-ins over " + name + " ≥ 25,000/s", perfSI(perfMedian(r)) + "/s", perfMedian(r) >= 25_000}
		}
		return perfRow{target: goal, figure: "check-ins end to end into SQLite, " + name + target,
			outpost: fmt.Sprintf("%s/s (relay %.0f µs CPU each)", perfSI(perfMedian(r)), perfMedian(cpu)), peer: "-", limit: limit, ratio: perfRatio(perfMedian(r), perfMedian(storeR)), command: cfg.rowCmd("checkins")}
	}
	return []perfRow{row("TLS", " (target ≥ 25,000/s)", tlsR, tlsCPU), row("HTTP/1.1", "", plainR, plainCPU)}
}

// buildStoreBench compiles the store's test binary once.
func buildStoreBench(t *testing.T) (path, why string) {
	t.Helper()
	goTool, err := exec.LookPath("go") // go test puts its own go first on PATH
	if err != nil {
		return "", "no go tool on PATH: " + err.Error()
	}
	path = filepath.Join(t.TempDir(), "store.test")
	if out, err := exec.Command(goTool, "test", "-c", "-o", path, "../../store/").CombinedOutput(); err != nil {
		return "", fmt.Sprintf("go test -c ./store/: %v %s", err, strings.TrimSpace(string(out)))
	}
	return path, ""
}

var checkinsPerSec = regexp.MustCompile(`([0-9.e+]+) checkins/s`)

// runStoreBench runs BenchmarkRecordCheckins for 2 s and returns its
// checkins/s.
func runStoreBench(bin string) (float64, error) {
	tmp, err := os.MkdirTemp("", "outpost-perf-store-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(bin, "-test.run=^$", "-test.bench=^BenchmarkRecordCheckins$", "-test.benchtime=2s")
	cmd.Dir, cmd.Env = "../../store", append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	m := checkinsPerSec.FindSubmatch(out)
	if err != nil || m == nil {
		return 0, fmt.Errorf("BenchmarkRecordCheckins: %v %s", err, strings.TrimSpace(string(out)))
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
