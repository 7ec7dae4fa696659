package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"outpost/agentsim"
	"outpost/relay"
	"outpost/relay/wire"
	"outpost/store"
)

// demoCluster is one cluster of the demo fleet and the relays that serve it
// (each on its own loopback port, as if on another host).
type demoCluster struct {
	name, address, region string
	policy                store.Policy
	relays                []int // fixed loopback ports
}

var demoClusters = []demoCluster{
	{name: "beijing-idc", address: "127.0.0.1", region: "China (Beijing)", relays: []int{18443}},
	{name: "hangzhou-vpc", address: "relay.hangzhou.example", region: "China (Hangzhou)", relays: []int{18444, 18445},
		policy: store.Policy{Mode: wire.ModeForward, BandwidthBps: 250_000, FrequencyRPS: 200, LinkBps: 100_000_000}},
	{name: "shanghai-cache", address: "relay.shanghai.example", region: "China (Shanghai)", relays: []int{18446},
		policy: store.Policy{Mode: wire.ModeCache, CacheMax: 50_000_000}},
}

// startDemo builds the demo fleet on the running management host: an
// account, three clusters (an IP-address one, a domain one with two relays,
// a cache-mode one), their relays in this process on other loopback ports,
// and simulated agents spread over direct and proxied connection. Timing is
// compressed (minutes, not hours) in this data directory only.
func startDemo(ctx context.Context, a *app, r *relayRun, agents int) (func(), error) {
	d := &demo{a: a, log: a.logger(), pin: r.srv.CAFingerprint()}
	if err := d.prepare(ctx); err != nil {
		return nil, err
	}
	for _, u := range r.urls {
		if len(u) > 8 && u[:8] == "https://" {
			d.managerTLS = u
			break
		}
	}
	if d.managerTLS == "" {
		return nil, fmt.Errorf("demo: the management host needs an https listener")
	}
	lk, wk, err := d.keys(0, "direct")
	if err != nil {
		return nil, err
	}
	fleets := []demoFleet{{lk, wk, []string{d.managerTLS}}}
	for _, dc := range demoClusters {
		f, err := d.cluster(dc)
		if err != nil {
			d.stop()
			return nil, err
		}
		fleets = append(fleets, f)
	}
	return d.run(ctx, fleets, agents), nil
}

// demo is the demo fleet being built on the running management host.
type demo struct {
	a          *app
	db         *store.DB
	actx       context.Context // the store calls' context, actor "demo"
	acct       store.Account
	managerTLS string
	pin        string
	log        *slog.Logger
	relays     []*relay.Server
}

// demoFleet is one part of the fleet: the keys its agents enrol with and
// the relays they go through.
type demoFleet struct {
	key, winKey string
	proxies     []string
}

// prepare compresses the timing settings and finds or creates the demo
// account.
func (d *demo) prepare(ctx context.Context) error {
	db, err := d.a.store()
	if err != nil {
		return err
	}
	d.db, d.actx = db, store.WithActor(ctx, "demo")
	st := db.Settings()
	st.OfflineAfter, st.InventoryInterval, st.UninstallGrace = 2*time.Minute, 20*time.Second, time.Minute
	st.PollTimeout, st.BindBatchGap = 20*time.Second, 5*time.Second
	if err := db.SetSettings(d.actx, st); err != nil {
		return err
	}
	d.acct, err = db.FindAccount(d.actx, "demo")
	if store.ErrorCode(err) == store.ENotFound {
		d.acct, _, err = db.CreateAccount(d.actx, "demo")
	}
	return err
}

// stop closes the demo relays started so far.
func (d *demo) stop() {
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range d.relays {
		s.Close(cctx)
	}
}

// keys creates the install commands of a cluster (0: direct), which are
// per OS: one for the Linux hosts, one for Windows.
func (d *demo) keys(clusterID int64, group string) (string, string, error) {
	var out [2]string
	for i, os := range wire.OSes {
		ic, err := d.db.CreateInstallCommand(d.actx, store.InstallInput{AccountID: d.acct.ID, ClusterID: clusterID, TTL: 24 * time.Hour, Group: group, OS: os})
		if err != nil {
			return "", "", err
		}
		out[i] = ic.Key
	}
	return out[0], out[1], nil
}

// cluster finds or creates the demo cluster dc (with its policy), starts
// its relays and returns its part of the fleet.
func (d *demo) cluster(dc demoCluster) (demoFleet, error) {
	db, actx, a := d.db, d.actx, d.a
	c, err := db.FindCluster(actx, d.acct.ID, dc.name)
	if store.ErrorCode(err) == store.ENotFound {
		c, err = db.CreateCluster(actx, store.ClusterInput{AccountID: d.acct.ID, Name: dc.name, Address: dc.address, Region: dc.region, Remark: "demo"})
		if err == nil && dc.policy.Mode != "" {
			p := dc.policy
			if p.Mode == wire.ModeCache {
				// Absolute, so the demo relay (its own data directory)
				// writes where the operator looks: DATA/cache/NAME.
				if p.CacheDir, err = filepath.Abs(filepath.Join(a.dataDir(), "cache", dc.name)); err != nil {
					return demoFleet{}, err
				}
			}
			c, err = db.SetPolicy(actx, c.ID, p)
		}
	}
	if err != nil {
		return demoFleet{}, err
	}
	var urls []string
	for i, port := range dc.relays {
		dir := filepath.Join(a.dataDir(), "demo-relays", fmt.Sprintf("%s-%d", dc.name, i+1))
		srv, url, err := startDemoRelay(actx, db, c, dir, port, d.managerTLS, d.pin, fmt.Sprintf("%s-proxy-%d", dc.name, i+1), d.log)
		if err != nil {
			return demoFleet{}, fmt.Errorf("demo relay for %s: %w", dc.name, err)
		}
		d.relays = append(d.relays, srv)
		urls = append(urls, url)
	}
	lk, wk, err := d.keys(c.ID, dc.name)
	if err != nil {
		return demoFleet{}, err
	}
	return demoFleet{lk, wk, urls}, nil
}

// run simulates the fleets' agents until the returned stop is called.
func (d *demo) run(ctx context.Context, fleets []demoFleet, agents int) func() {
	simCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	per := max(agents/len(fleets), 1)
	for i, f := range fleets {
		wg.Add(1)
		go func(i int, f demoFleet) {
			defer wg.Done()
			_, err := agentsim.RunSim(simCtx, agentsim.SimConfig{
				Proxies: f.proxies, CASHA256: d.pin, Key: f.key, WindowsKey: f.winKey, Agents: per, FirstIndex: i * per, Seed: 42,
				// No InventoryEvery: the agents follow inventory_interval
				// (20 s above), so `settings set` reaches them as it would
				// a real fleet.
				EventsPerSec: 0.2, Wait: 20 * time.Second, Churn: 0.1,
				Version: version, EnrolRate: 50, DrainTimeout: 2 * time.Second,
			})
			if err != nil && simCtx.Err() == nil {
				d.log.Warn("demo: fleet stopped", "fleet", i, "err", err)
			}
		}(i, f)
	}
	d.log.Info("demo: simulated agents started", "agents", per*len(fleets), "direct", per, "relays", len(d.relays), "clusters", len(demoClusters))
	return func() {
		cancel()
		wg.Wait()
		d.stop()
	}
}

// startDemoRelay starts (or restarts, reusing its identity) one joined relay
// of cluster c on 127.0.0.1:port.
func startDemoRelay(ctx context.Context, db *store.DB, c store.Cluster, dir string, port int, manager, pin, hostname string,
	log *slog.Logger) (*relay.Server, string, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, "", fmt.Errorf("port %d is in use: stop what holds it or run without --demo", port)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	cfg := relay.DefaultConfig()
	cfg.DataDir, cfg.Version, cfg.Manager, cfg.ManagerCA = dir, version, manager, pin
	cfg.PublicURLs, cfg.Hostname, cfg.IP = []string{url}, hostname, "127.0.0.1"
	cfg.HeartbeatInterval = 5 * time.Second
	if _, err := os.Stat(filepath.Join(dir, "relay.json")); errors.Is(err, os.ErrNotExist) {
		jt, err := db.CreateJoinToken(ctx, c.ID, store.DeployManual, "", time.Hour)
		if err != nil {
			ln.Close()
			return nil, "", err
		}
		cfg.JoinToken = jt.Token
	}
	srv, err := relay.New(cfg)
	if err != nil {
		ln.Close()
		return nil, "", err
	}
	go srv.Serve(ln, true)
	log.Info("demo: relay serving", "host", hostname, "cluster", c.Name, "url", url)
	return srv, url, nil
}
