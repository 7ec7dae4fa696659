package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"outpost/store"
)

// The benchmark fleet is seeded once per test binary into a directory that
// TestMain removes (set OUTPOST_BENCH_KEEP=1 to keep it for EXPLAIN QUERY
// PLAN with the sqlite3 shell).
var benchDir struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, db := range []*store.DB{fleet.f.db, checkinFleet.db} {
		if db != nil {
			db.Close()
		}
	}
	if benchDir.path != "" {
		if os.Getenv("OUTPOST_BENCH_KEEP") != "" {
			fmt.Fprintln(os.Stderr, "benchmark databases kept in", benchDir.path)
		} else {
			os.RemoveAll(benchDir.path)
		}
	}
	os.Exit(code)
}

func benchTempDir(b *testing.B) string {
	benchDir.once.Do(func() { benchDir.path, benchDir.err = os.MkdirTemp("", "outpost-bench-") })
	if benchDir.err != nil {
		b.Fatal(benchDir.err)
	}
	return benchDir.path
}

// benchNow is "now" for the benchmark fleet.
var benchNow = t0.Add(30 * 24 * time.Hour)

type benchFleet struct {
	db       *store.DB
	accounts []int64
	clusters []int64 // 10 per account, accounts[0]'s first
}

var fleet struct {
	once sync.Once
	f    benchFleet
	err  error
}

const fleetSize = 100_000

// loadFleet seeds 100,000 agents once: 2 accounts, 20 clusters, about 10 %
// direct, host names partly CJK, last check-ins spread so that about 70 %
// are online.
func loadFleet(b *testing.B) benchFleet {
	dir := benchTempDir(b)
	fleet.once.Do(func() {
		start := time.Now()
		fleet.f, fleet.err = seedFleet(filepath.Join(dir, "fleet.db"))
		b.Logf("seeded %d agents in %v", fleetSize, time.Since(start).Round(time.Millisecond))
	})
	if fleet.err != nil {
		b.Fatal(fleet.err)
	}
	return fleet.f
}

func seedFleet(path string) (benchFleet, error) {
	var f benchFleet
	clock := &fakeClock{now: benchNow}
	db, err := store.Open(path, clock)
	if err != nil {
		return f, err
	}
	f.db = db // kept open for the life of the test binary
	ctx := context.Background()
	for _, name := range []string{"acme", "globex"} {
		a, _, err := db.CreateAccount(ctx, name)
		if err != nil {
			return f, err
		}
		f.accounts = append(f.accounts, a.ID)
		for i := range 10 {
			c, err := db.CreateCluster(ctx, store.ClusterInput{AccountID: a.ID, Name: fmt.Sprintf("%s-dc%02d", name, i),
				Address: fmt.Sprintf("relay%02d.%s.example", i, name)})
			if err != nil {
				return f, err
			}
			f.clusters = append(f.clusters, c.ID)
		}
	}
	prefixes := []string{"web", "db", "cache", "api", "k8s-node", "mail", "腾讯云-web", "阿里云-db", "华为云-app", "edge"}
	rng := rand.New(rand.NewPCG(1, 2))
	seeds := make([]agentSeed, fleetSize)
	for i := range seeds {
		acct := i % 2
		var cl int64
		if rng.IntN(10) != 0 {
			cl = f.clusters[acct*10+rng.IntN(10)]
		}
		var seen time.Time
		if rng.IntN(100) < 70 {
			seen = benchNow.Add(-time.Duration(rng.Int64N(int64(11 * time.Hour))))
		} else {
			seen = benchNow.Add(-12*time.Hour - time.Minute - time.Duration(rng.Int64N(int64(30*24*time.Hour))))
		}
		name := fmt.Sprintf("%s-%05d", prefixes[rng.IntN(len(prefixes))], i)
		if i%4 == 0 {
			name += ".corp.example.com"
		}
		s := agentSeed{ID: fmt.Sprintf("ag_%016x", rng.Uint64()), AccountID: f.accounts[acct], ClusterID: cl, Hostname: name,
			IPs: fmt.Sprintf("10.%d.%d.%d", acct, i/250%256, i%250+1), LastCheckin: seen, EnrolledAt: seen.Add(-90 * 24 * time.Hour)}
		if rng.IntN(10) == 0 {
			s.Vulns = 1 + rng.IntN(5)
		}
		if rng.IntN(200) == 0 {
			s.DupFP = "fp-clone"
		}
		if rng.IntN(5) == 0 {
			s.OS = "windows"
		}
		seeds[i] = s
	}
	raw, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return f, err
	}
	defer raw.Close()
	return f, insertAgents(raw, seeds)
}

func BenchmarkListAgents(b *testing.B) {
	fl := loadFleet(b)
	ctx := context.Background()
	cases := []struct {
		name   string
		filter store.AgentFilter
	}{
		{"cluster+online+sort-hostname", store.AgentFilter{AccountID: fl.accounts[0], ClusterID: fl.clusters[3], Status: store.StatusOnline, Sort: "hostname"}},
		{"all+sort-last_checkin-desc", store.AgentFilter{Sort: "last_checkin", Desc: true}},
		{"query-substring", store.AgentFilter{Query: "web-01"}},
		{"account+query-rare", store.AgentFilter{AccountID: fl.accounts[0], Query: "-00012", Limit: 99}}, // the dashboard's filter
		{"account+query-broad", store.AgentFilter{AccountID: fl.accounts[0], Query: "web", Limit: 99}},
		{"page-500-offset-50000", store.AgentFilter{Limit: 500, Offset: 50000}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			page, err := fl.db.ListAgents(ctx, tc.filter)
			if err != nil {
				b.Fatal(err)
			}
			if len(page.Agents) == 0 || page.Total == 0 {
				b.Fatalf("got an empty page (total %d): the fleet does not exercise this case", page.Total)
			}
			for b.Loop() {
				if _, err := fl.db.ListAgents(ctx, tc.filter); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64(page.Total), "matches")
		})
	}
}

var checkinFleet struct {
	once sync.Once
	db   *store.DB
	ids  []string
	err  error
}

// BenchmarkRecordCheckins writes batches of 1,000 check-ins (one
// transaction each) over a 20,000-agent table.
func BenchmarkRecordCheckins(b *testing.B) {
	dir := benchTempDir(b)
	const agents, batch = 20_000, 1_000
	checkinFleet.once.Do(func() {
		path := filepath.Join(dir, "checkins.db")
		db, err := store.Open(path, &fakeClock{now: benchNow})
		if err != nil {
			checkinFleet.err = err
			return
		}
		a, _, err := db.CreateAccount(context.Background(), "acme")
		if err != nil {
			checkinFleet.err = err
			return
		}
		seeds := make([]agentSeed, agents)
		for i := range seeds {
			seeds[i] = agentSeed{ID: fmt.Sprintf("ag_%05d", i), AccountID: a.ID, Hostname: fmt.Sprintf("h-%05d", i), LastCheckin: t0}
			checkinFleet.ids = append(checkinFleet.ids, seeds[i].ID)
		}
		raw, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(5000)")
		if err != nil {
			checkinFleet.err = err
			return
		}
		defer raw.Close()
		checkinFleet.db, checkinFleet.err = db, insertAgents(raw, seeds)
	})
	if checkinFleet.err != nil {
		b.Fatal(checkinFleet.err)
	}
	db, ids := checkinFleet.db, checkinFleet.ids
	ctx := context.Background()
	cs := make([]store.Checkin, batch)
	inv := store.Inventory{Processes: 100, Ports: 5}
	n := 0
	for b.Loop() {
		at := benchNow.Add(time.Duration(n) * time.Millisecond)
		for i := range cs {
			id := ids[(n*batch+i)%len(ids)]
			cs[i] = store.Checkin{AgentID: id, At: at, Fingerprint: "fp-" + id, CPU: 3, Mem: 20}
			if i%10 == 0 { // one in ten carries its inventory
				cs[i].Inventory = &inv
			}
		}
		if err := db.RecordCheckins(ctx, cs); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "checkins/s")
}
