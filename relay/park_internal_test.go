package relay

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// TestParkedWakeOrder: a parked check-in that is superseded is answered
// at once, also when a command token is already waiting in its channel
// (the poller notified it just before the newer check-in took over, and
// the newer one took the commands): the hold must not go back to its read
// until the wait's end.
func TestParkedWakeOrder(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	acct, _, err := db.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ic, err := db.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Store, cfg.AllowPlain = dir, db, true
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(ctx)
	h := srv.mgmt
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := newParkListener(ln, 0)
	defer pl.Close()

	const wait = 5 * time.Second
	for i, tc := range []struct {
		name  string
		token bool // a command token waits in the channel when it is closed
	}{
		{"superseded", false},
		{"superseded with a command token waiting", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			en, err := db.Enrol(ctx, store.EnrolInput{Key: ic.Key, Host: store.HostFacts{Hostname: "h", OS: "linux", Arch: "amd64", Fingerprint: "fp" + string(rune('a'+i))}})
			if err != nil {
				t.Fatal(err)
			}
			id := en.Agent.ID
			server, client := net.Pipe()
			defer client.Close()
			hc := &heldCheckin{a: agentAuth{ID: id}, wait: wait, start: time.Now()}
			p := &parkedCheckin{h: h, conn: server, pl: pl, hc: hc, who: "pipe direct",
				r: heldRequest(httptest.NewRequest(http.MethodPost, wire.PathCheckin, nil))}
			srv.parked.Add(1)
			h.s.m.held.Add(1)
			p.w = h.hub.join(id, func() { server.SetReadDeadline(time.Unix(1, 0)) })
			if tc.token {
				h.hub.notify(id) // no command in the store: the newer check-in took it
			}
			newer := h.hub.join(id, nil) // a newer check-in takes over
			defer h.hub.leave(id, newer)
			start := time.Now()
			go p.hold(start.Add(wait))
			client.SetReadDeadline(start.Add(wait + 2*time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(client), nil)
			if err != nil {
				t.Fatalf("answer: %v", err)
			}
			resp.Body.Close()
			if got, want := time.Since(start), time.Second; resp.StatusCode != http.StatusOK || got > want {
				t.Errorf("superseded check-in: got %d after %s, want 200 within %s (its wait is %s)", resp.StatusCode, got.Round(time.Millisecond), want, wait)
			}
		})
	}
}
