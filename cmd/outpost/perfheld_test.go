//go:build linux

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/wire"
	"outpost/store"
)

// perfHost is a management host (`outpost relay` with its store) whose
// direct agents hold check-ins or check in back to back: the held-agent
// memory and check-ins/s rows. It is started fresh for each memory figure,
// so one run's heap does not hide the next one's growth.
type perfHost struct {
	c      *cli
	agents []perfHeldAgent
	p      *proc
	tls    string
	plain  string
	pin    string
}

// newPerfHost makes a store with n direct agents, written in one
// transaction (enrolling 15,000 through the store API takes minutes);
// check-ins are held up to 5 minutes.
func newPerfHost(t *testing.T, n int) *perfHost {
	t.Helper()
	h := &perfHost{c: newCLI(t)}
	path := filepath.Join(h.c.data, dbFileName)
	db, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := store.WithActor(context.Background(), "perf")
	acct, _, err := db.CreateAccount(ctx, "perf")
	if err != nil {
		t.Fatal(err)
	}
	st := db.Settings()
	st.PollTimeout = 5 * time.Minute
	if err := db.SetSettings(ctx, st); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	stmt, err := tx.Prepare(`INSERT INTO agents (id, account_id, secret_hash, fingerprint, hostname, ips, os, arch, version, cluster_id,
		enrolled_at, last_checkin, vulns) VALUES (?, ?, ?, ?, ?, ?, 'linux', 'amd64', '1.0.0', NULL, ?, ?, 0)`)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	for i := range n {
		a := perfHeldAgent{ID: fmt.Sprintf("ag_perf%06d", i), Secret: fmt.Sprintf("s_perf%06d", i), FP: fmt.Sprintf("fp-perf-%06d", i)}
		if _, err := stmt.Exec(a.ID, acct.ID, store.HashSecret(a.Secret), a.FP, fmt.Sprintf("perf-%06d", i),
			fmt.Sprintf("10.%d.%d.%d", i/62500, i/250%250, i%250+1), now, now); err != nil {
			t.Fatal(err)
		}
		h.agents = append(h.agents, a)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *perfHost) start(t *testing.T) {
	t.Helper()
	args := append([]string{"relay", "--allow-plain", "--poll-timeout", "5m"}, svRelayListen...)
	h.p = svStart(t, h.c, append(args, perfProfile("host")...)...)
	info := svRunFile(t, h.p, h.c.data, "relay")
	h.tls, h.plain, h.pin = svURL(t, info, "https"), svURL(t, info, "http"), info.CASHA256
}

// stop ends the relay gracefully (held check-ins answered).
func (h *perfHost) stop(t *testing.T) {
	t.Helper()
	h.p.signal(syscall.SIGTERM)
	h.p.waitExit(40 * time.Second)
}

const perfPerProcess = 5000 // connections per client process

// spawnClients starts the client processes for spec's agents (or Count
// connections), perfPerProcess each.
func spawnClients(t *testing.T, spec perfClientSpec) []*perfChild {
	t.Helper()
	n := max(spec.Count, len(spec.Agents))
	var kids []*perfChild
	for from := 0; from < n; from += perfPerProcess {
		to := min(from+perfPerProcess, n)
		part := spec
		part.IPBase = from
		if spec.Held {
			part.Agents = spec.Agents[from:to]
		} else {
			part.Count = to - from
		}
		b, _ := json.Marshal(part)
		path := filepath.Join(t.TempDir(), "spec.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		kids = append(kids, startPerfChild(t, "clients:"+path))
	}
	return kids
}

type heldFigure struct {
	kib, goroutines float64 // per agent
}

// heldRelay measures the relay's RSS growth per held check-in at n agents
// over TLS (HTTP/2) or plain HTTP/1.1.
func heldRelay(t *testing.T, h *perfHost, useTLS bool, n int) heldFigure {
	t.Helper()
	h.start(t)
	defer h.stop(t)
	time.Sleep(500 * time.Millisecond)
	pid := h.p.cmd.Process.Pid
	rss0 := rssKiB(t, pid)
	g0 := perfMetric(t, h.plain, "go_goroutines", "outpost_goroutines")
	u := h.plain
	if useTLS {
		u = h.tls
	}
	start := time.Now()
	kids := spawnClients(t, perfClientSpec{URL: u, Pin: h.pin, Held: true, Agents: h.agents[:n]})
	defer func() {
		for _, k := range kids {
			k.stop()
		}
	}()
	limit := time.Minute + time.Duration(n)*4*time.Millisecond
	var held float64
	waitCond(t, h.p, limit, fmt.Sprintf("%d held check-ins", n), func() bool {
		held = perfMetric(t, h.plain, "outpost_checkins_held")
		return held >= float64(n)
	})
	t.Logf("  %d check-ins held after %s", n, time.Since(start).Round(100*time.Millisecond))
	time.Sleep(time.Second) // the first check-ins' batch written
	if held = perfMetric(t, h.plain, "outpost_checkins_held"); held < float64(n) {
		t.Fatalf("held check-ins fell to %.0f of %d while measuring", held, n)
	}
	rss1 := rssKiB(t, pid)
	g1 := perfMetric(t, h.plain, "go_goroutines", "outpost_goroutines")
	return heldFigure{kib: (rss1 - rss0) / float64(n), goroutines: (g1 - g0) / float64(n)}
}

// heldBaseline is the same for a bare net/http server whose n connections
// idle after one request.
func heldBaseline(t *testing.T, useTLS bool, n int) float64 {
	t.Helper()
	mode := "server:plain"
	if useTLS {
		mode = "server:tls"
	}
	srv := startPerfChild(t, mode)
	defer srv.stop()
	u := srv.line(t, "url ", 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	rss0 := rssKiB(t, srv.p.cmd.Process.Pid)
	start := time.Now()
	kids := spawnClients(t, perfClientSpec{URL: u, Count: n})
	defer func() {
		for _, k := range kids {
			k.stop()
		}
	}()
	okAll := 0
	for _, k := range kids {
		f := strings.Fields(k.line(t, "ready ", time.Minute+time.Duration(n)*4*time.Millisecond))
		ok, _ := strconv.Atoi(f[0])
		okAll += ok
	}
	if okAll < n {
		t.Fatalf("baseline: %d of %d connections made", okAll, n)
	}
	t.Logf("  %d idle connections after %s", n, time.Since(start).Round(100*time.Millisecond))
	time.Sleep(time.Second)
	return (rssKiB(t, srv.p.cmd.Process.Pid) - rss0) / float64(n)
}

// checkinRate drives back-to-back check-ins (no hold) for d from workers
// connections (one per worker, its agents always on it), each check-in a
// different agent, so each is a row the relay writes to SQLite. It returns
// check-ins/s and the relay's CPU per check-in (µs): the generator shares
// the machine, so the second figure says what the relay alone would take.
func checkinRate(t *testing.T, h *perfHost, useTLS bool, workers int, d time.Duration) (perSec, relayCPU float64) {
	t.Helper()
	u := h.plain
	if useTLS {
		u = h.tls
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var ok, failed int64
	var firstErr error
	var wg sync.WaitGroup
	pid := h.p.cmd.Process.Pid
	relay0, self0 := cpuOf(pid), cpuOf(os.Getpid())
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := agentsim.NewTransport(agentsim.ClientOptions{CASHA256: h.pin, LocalIP: perfSourceIP(w)})
			defer tr.CloseIdleConnections()
			var mine []*agentsim.Client
			var fps []string
			for i := w; i < len(h.agents); i += workers {
				c := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{u}, Transport: tr})
				c.SetCredentials(h.agents[i].ID, h.agents[i].Secret)
				mine, fps = append(mine, c), append(fps, h.agents[i].FP)
			}
			for i := 0; time.Now().Before(deadline); i++ {
				k := i % len(mine)
				_, err := mine[k].Checkin(ctx, wire.CheckinRequest{Fingerprint: fps[k]})
				mu.Lock()
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					ok++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	relayCPU = cpuOf(pid) - relay0
	// Whether the relay or this generator was the bottleneck.
	t.Logf("  check-ins (TLS %v): relay used %.2f cores, the generator %.2f", useTLS,
		relayCPU/elapsed.Seconds(), (cpuOf(os.Getpid())-self0)/elapsed.Seconds())
	if failed > 0 {
		t.Logf("  %d check-ins failed (first: %v)", failed, firstErr)
	}
	return float64(ok) / elapsed.Seconds(), relayCPU / float64(max(ok, 1)) * 1e6
}

// written says how many agents' last check-in in SQLite is since t0: the
// check-ins counted were written, not only answered.
func (h *perfHost) written(t *testing.T, t0 time.Time) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: filepath.Join(h.c.data, dbFileName)}).EscapedPath()+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM agents WHERE last_checkin >= ?`, t0.UnixMilli()).Scan(&n); err != nil {
		t.Fatalf("count check-ins written: %v", err)
	}
	return fmt.Sprintf("%d of %d agents have a check-in written to SQLite since the first round", n, len(h.agents))
}
