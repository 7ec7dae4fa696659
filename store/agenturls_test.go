package store_test

import (
	"slices"
	"testing"
	"time"

	"outpost/store"
)

// Agents are handed the cluster address first (on the relays' TLS port),
// then every relay's own advertised URLs, most recently seen relay first,
// https before http, without duplicates.
func TestProxyURLsPutTheClusterAddressFirst(t *testing.T) {
	for _, tt := range []struct {
		name    string
		address string
		relays  [][]string // advertised URLs per relay, the last one seen most recently
		want    []string
	}{
		{"domain cluster of two TLS relays: the first one's port", "relay.acme.example",
			[][]string{{"https://vm-1:8443"}, {"https://vm-2:9443"}},
			[]string{"https://relay.acme.example:8443", "https://vm-2:9443", "https://vm-1:8443"}},
		{"IP cluster whose relay also allows plain HTTP", "10.0.0.5",
			[][]string{{"http://10.0.0.5:8080", "https://10.0.0.5:8443"}},
			[]string{"https://10.0.0.5:8443", "http://10.0.0.5:8080"}},
		{"IPv6 address, port from a URL without one", "2001:db8::5",
			[][]string{{"https://vm-1"}},
			[]string{"https://[2001:db8::5]:443", "https://vm-1"}},
		{"no relay advertised anything", "relay.acme.example", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a, _ := f.account("acme")
			c := f.cluster(a.ID, "edge", tt.address)
			for i, urls := range tt.relays {
				f.clock.Advance(time.Second)
				if _, _, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: f.joinToken(c.ID), Hostname: "vm", IP: "192.0.2.10",
					Version: "1.0.0", URLs: urls}); err != nil {
					t.Fatalf("JoinProxy %d: %v", i, err)
				}
			}
			got, err := f.db.ProxyURLs(f.ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
