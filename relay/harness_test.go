package relay_test

import (
	"context"
	"net"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay"
	"outpost/relay/logs/logstest"
	"outpost/relay/relaytest"
	"outpost/relay/wire"
	"outpost/store"
)

// manager is a management host under test (see relaytest).
type manager = relaytest.Manager

type managerOpt func(*relay.Config)

func startManager(t *testing.T, opts ...managerOpt) *manager {
	t.Helper()
	return relaytest.Start(t, relaytest.Options{Config: func(cfg *relay.Config) {
		for _, o := range opts {
			o(cfg)
		}
	}})
}

// joinRelay starts a relay of "another host" that joins the manager with a
// fresh manual join token for cluster c.
func joinRelay(t *testing.T, m *manager, clusterID int64) (*relay.Server, string, error) {
	t.Helper()
	jt, err := m.DB.CreateJoinToken(context.Background(), clusterID, store.DeployManual, "", time.Hour)
	if err != nil {
		return nil, "", err
	}
	return startJoined(t, m, jt.Token, t.TempDir())
}

func startJoined(t *testing.T, m *manager, token, dir string) (*relay.Server, string, error) {
	t.Helper()
	return startJoinedWith(t, m, token, dir, nil)
}

// startJoinedWith is startJoined with the relay's configuration changed by
// opt (nil: unchanged) before it starts.
func startJoinedWith(t *testing.T, m *manager, token, dir string, opt func(*relay.Config)) (*relay.Server, string, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + ln.Addr().String()
	cfg := relay.DefaultConfig()
	cfg.DataDir = dir
	cfg.Manager = m.TLSURL
	cfg.ManagerCA = m.Relay.CAFingerprint()
	cfg.JoinToken = token
	cfg.PublicURLs = []string{url}
	cfg.Log = logstest.New(t)
	cfg.PollTimeout = 5 * time.Second
	cfg.HeartbeatInterval = 100 * time.Millisecond
	if opt != nil {
		opt(&cfg)
	}
	srv, err := relay.New(cfg)
	if err != nil {
		ln.Close()
		return nil, "", err
	}
	go srv.Serve(ln, true)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	return srv, url, nil
}

// fleet is one account with an install key.
type fleet struct {
	Account store.Account
	Key     string
}

func newFleet(t *testing.T, m *manager, name string, clusterID int64) fleet {
	t.Helper()
	ctx := context.Background()
	acct, err := m.DB.FindAccount(ctx, name)
	if err != nil {
		if acct, _, err = m.DB.CreateAccount(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	ic, err := m.DB.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID, ClusterID: clusterID})
	if err != nil {
		t.Fatal(err)
	}
	return fleet{Account: acct, Key: ic.Key}
}

func newClient(m *manager, urls ...string) *agentsim.Client {
	return agentsim.NewClient(agentsim.ClientOptions{Proxies: urls, CASHA256: m.Relay.CAFingerprint(), Timeout: 5 * time.Second})
}

func host(i int) (wire.Host, *wire.Inventory) {
	h, inv := agentsim.FakeHost(1, i, "1.0.0")
	return h, &inv
}

func enrol(t *testing.T, c *agentsim.Client, key string, i int) wire.EnrolResponse {
	t.Helper()
	h, inv := host(i)
	resp, err := c.Enrol(context.Background(), key, h, inv)
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	return resp
}

func records(from, to uint64) []wire.Record {
	var out []wire.Record
	for s := from; s <= to; s++ {
		out = append(out, wire.Record{Seq: s, Time: time.Now().UTC(), Type: "alert", Data: []byte(`{"msg":"test event"}`)})
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}
