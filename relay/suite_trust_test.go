package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"outpost/relay"
	"outpost/relay/wire"
	"outpost/store"
)

// Join answers the relay's secret and private key: never on plain HTTP,
// even on a management host started with --allow-plain (which is for
// agents only).
func TestJoinNeedsTLSEvenWithAllowPlain(t *testing.T) {
	ctx := context.Background()
	m := startManager(t, func(c *relay.Config) { c.AllowPlain = true })
	_, cl := clusterFleet(t, m, "acme", "dc-a", "relay.a.example")
	jt, err := m.DB.CreateJoinToken(ctx, cl.ID, store.DeployManual, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(wire.JoinRequest{Token: jt.Token, Hostname: "vm-2", IP: "10.9.9.8"})
	resp, err := http.Post(m.PlainURL+wire.PathJoin, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var e wire.Error
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || e.Code != wire.CodeNeedsTLS {
		t.Errorf("got %d %q (%s), want 403 %q", resp.StatusCode, e.Code, e.Message, wire.CodeNeedsTLS)
	}
	if px, err := m.DB.ListProxies(ctx, 0); err != nil || len(px) != 0 {
		t.Errorf("got %d proxy servers (%v), want none", len(px), err)
	}
}
