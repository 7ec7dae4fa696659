package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"

	_ "modernc.org/sqlite"
)

// t0 is where every fake clock starts: whole seconds, so that the stored
// Unix-millisecond times compare exactly.
var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// fakeClock is a store.Clock that tests move by hand. It is safe for
// concurrent use (the Batcher reads it from its own goroutine).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var _ store.Clock = (*fakeClock)(nil)

// fixture is one fresh database in a temp file with a fake clock.
type fixture struct {
	t     *testing.T
	db    *store.DB
	clock *fakeClock
	ctx   context.Context
	rawDB *sql.DB
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clock := newClock()
	db, err := store.Open(filepath.Join(t.TempDir(), "outpost.db"), clock)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return &fixture{t: t, db: db, clock: clock, ctx: store.WithActor(context.Background(), "tester")}
}

// openRaw opens a second, independent connection to the database file,
// bypassing the store.
func openRaw(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	raw, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatalf("open raw connection: %v", err)
	}
	tb.Cleanup(func() { raw.Close() })
	return raw
}

func (f *fixture) raw() *sql.DB {
	if f.rawDB == nil {
		f.rawDB = openRaw(f.t, f.db.Path)
	}
	return f.rawDB
}

func (f *fixture) account(name string) (store.Account, string) {
	f.t.Helper()
	a, key, err := f.db.CreateAccount(f.ctx, name)
	if err != nil {
		f.t.Fatalf("CreateAccount(%q): %v", name, err)
	}
	return a, key
}

func (f *fixture) cluster(accountID int64, name, address string) store.Cluster {
	f.t.Helper()
	c, err := f.db.CreateCluster(f.ctx, store.ClusterInput{AccountID: accountID, Name: name, Address: address})
	if err != nil {
		f.t.Fatalf("CreateCluster(%q, %q): %v", name, address, err)
	}
	return c
}

func host(name, fp string) store.HostFacts {
	return store.HostFacts{Hostname: name, Fingerprint: fp, OS: "linux", Arch: "amd64", Version: "3.0.0"}
}

// enrol enrols a host with key (an account verification key or an install
// key) and fails the test on refusal.
func (f *fixture) enrol(key, hostname string) store.Agent {
	f.t.Helper()
	e, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: key, Host: host(hostname, "fp-"+hostname)})
	if err != nil {
		f.t.Fatalf("Enrol(%q): %v", hostname, err)
	}
	return e.Agent
}

func (f *fixture) installCmd(in store.InstallInput) store.InstallCommand {
	f.t.Helper()
	ic, err := f.db.CreateInstallCommand(f.ctx, in)
	if err != nil {
		f.t.Fatalf("CreateInstallCommand: %v", err)
	}
	return ic
}

// joinToken creates a manual-deploy join token.
func (f *fixture) joinToken(clusterID int64) string {
	f.t.Helper()
	jt, err := f.db.CreateJoinToken(f.ctx, clusterID, store.DeployManual, "", 0)
	if err != nil {
		f.t.Fatalf("CreateJoinToken: %v", err)
	}
	return jt.Token
}

// proxy deploys (manually) and joins a proxy server; it is online now.
func (f *fixture) proxy(clusterID int64, hostname, version string) store.Proxy {
	f.t.Helper()
	p, _, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: f.joinToken(clusterID), Hostname: hostname, IP: "192.0.2.10",
		Version: version, URLs: []string{"https://" + hostname + ":8443"}})
	if err != nil {
		f.t.Fatalf("JoinProxy(%q): %v", hostname, err)
	}
	return p
}

func (f *fixture) agent(id string) store.Agent {
	f.t.Helper()
	a, err := f.db.GetAgent(f.ctx, id)
	if err != nil {
		f.t.Fatalf("GetAgent(%s): %v", id, err)
	}
	return a
}

func (f *fixture) getCluster(id int64) store.Cluster {
	f.t.Helper()
	c, err := f.db.GetCluster(f.ctx, id)
	if err != nil {
		f.t.Fatalf("GetCluster(%d): %v", id, err)
	}
	return c
}

func (f *fixture) pending(kind store.TargetKind, target string) []store.Command {
	f.t.Helper()
	cmds, err := f.db.PendingCommands(f.ctx, kind, target)
	if err != nil {
		f.t.Fatalf("PendingCommands(%s, %s): %v", kind, target, err)
	}
	return cmds
}

func (f *fixture) count(table string) int {
	f.t.Helper()
	var n int
	if err := f.raw().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		f.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func (f *fixture) audits() []store.AuditEntry {
	f.t.Helper()
	es, err := f.db.ListAudit(f.ctx, 100000)
	if err != nil {
		f.t.Fatalf("ListAudit: %v", err)
	}
	return es
}

// dump renders every row of every table, so that a refusal can be shown to
// leave the database exactly as it was.
func (f *fixture) dump() string {
	f.t.Helper()
	raw := f.raw()
	rows, err := raw.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'agents_search%' ORDER BY name`) // the search index mirrors agents
	if err != nil {
		f.t.Fatalf("list tables: %v", err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			f.t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	var b strings.Builder
	for _, tbl := range tables {
		rows, err := raw.Query(`SELECT * FROM "` + tbl + `" ORDER BY rowid`)
		if err != nil {
			f.t.Fatalf("dump %s: %v", tbl, err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(&b, "== %s %v\n", tbl, cols)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				f.t.Fatal(err)
			}
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					vals[i] = string(bs)
				}
			}
			fmt.Fprintf(&b, "%v\n", vals)
		}
		rows.Close()
	}
	return b.String()
}

// unchanged fails when the database differs from the dump taken before.
func (f *fixture) unchanged(before string) {
	f.t.Helper()
	if after := f.dump(); after != before {
		f.t.Errorf("database changed by a refused operation:\n--- before\n%s--- after\n%s", before, after)
	}
}

// wantCode checks the coded error of a refusal.
func wantCode(t testing.TB, err error, want string) bool {
	t.Helper()
	if got := store.ErrorCode(err); got != want {
		t.Errorf("got error %v (code %q), want code %q", err, got, want)
		return false
	}
	return true
}

// agentSeed is one agent row written straight into the table: tests and
// benchmarks that need hundreds of thousands of agents cannot enrol them one
// transaction at a time.
type agentSeed struct {
	ID          string
	AccountID   int64
	ClusterID   int64 // 0 = direct
	Hostname    string
	IPs         string
	OS          string
	LastCheckin time.Time
	EnrolledAt  time.Time
	Vulns       int
	DupFP       string
}

func insertAgents(raw *sql.DB, seeds []agentSeed) error {
	tx, err := raw.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.Prepare(`INSERT INTO agents (id, account_id, secret_hash, fingerprint, dup_fingerprint, hostname, ips, os, arch,
		version, cluster_id, enrolled_at, last_checkin, vulns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'amd64', '3.0.0', ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, s := range seeds {
		var cl any
		if s.ClusterID != 0 {
			cl = s.ClusterID
		}
		osName := s.OS
		if osName == "" {
			osName = "linux"
		}
		enrolled := s.EnrolledAt
		if enrolled.IsZero() {
			enrolled = s.LastCheckin
		}
		if _, err := stmt.Exec(s.ID, s.AccountID, store.HashSecret("secret-"+s.ID), "fp-"+s.ID, s.DupFP, s.Hostname, s.IPs, osName,
			cl, msOf(enrolled), msOf(s.LastCheckin), s.Vulns); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func msOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// seedAgents inserts n agents named prefix-00000... checked in at "at".
func (f *fixture) seedAgents(accountID, clusterID int64, prefix string, n int, at time.Time) []string {
	f.t.Helper()
	seeds := make([]agentSeed, n)
	ids := make([]string, n)
	for i := range seeds {
		ids[i] = fmt.Sprintf("ag_%s%05d", prefix, i)
		seeds[i] = agentSeed{ID: ids[i], AccountID: accountID, ClusterID: clusterID, Hostname: fmt.Sprintf("%s-%05d", prefix, i),
			IPs: fmt.Sprintf("10.%d.%d.%d", accountID, i/250, i%250+1), LastCheckin: at}
	}
	if err := insertAgents(f.raw(), seeds); err != nil {
		f.t.Fatalf("seed agents: %v", err)
	}
	return ids
}

func hostnames(as []store.Agent) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Hostname
	}
	return out
}

func commandTypes(cs []store.Command) []wire.CommandType {
	out := make([]wire.CommandType, len(cs))
	for i, c := range cs {
		out[i] = c.Type
	}
	return out
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

// retryAfter is the RetryAfter of a coded refusal, -1 for other errors.
func retryAfter(err error) time.Duration {
	var se *store.Error
	if !errors.As(err, &se) {
		return -1
	}
	return se.RetryAfter
}
