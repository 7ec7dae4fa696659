package store_test

import (
	"fmt"
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
		{"IPv6 address", "2001:db8::5",
			[][]string{{"https://vm-1:8443"}},
			[]string{"https://[2001:db8::5]:8443", "https://vm-1:8443"}},
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

// A relay's heartbeat carries what it advertises now: a change (another
// --public after a restart) replaces the proxy's URLs and is audited once.
func TestSetProxyURLs(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	p := f.proxy(c.ID, "vm-1", "1.0.0") // advertises https://vm-1:8443
	changes := func() int {
		n := 0
		for _, e := range f.audits() {
			if e.Action == "proxy.urls" {
				n++
				if want := fmt.Sprintf("proxy/acme/%d", p.ID); e.Target != want {
					t.Errorf("proxy.urls audit target: got %q, want %q (the account named, as every proxy audit line)", e.Target, want)
				}
			}
		}
		return n
	}
	for _, tt := range []struct {
		name    string
		urls    []string
		code    string
		want    []string
		changes int
	}{
		{"same as at join", []string{"https://vm-1:8443"}, "", []string{"https://relay.acme.example:8443", "https://vm-1:8443"}, 0},
		{"restarted with --public", []string{"https://edge-1.acme.example:9443"}, "",
			[]string{"https://relay.acme.example:9443", "https://edge-1.acme.example:9443"}, 1},
		{"not a URL", []string{"vm-1:8443"}, store.EInvalid, []string{"https://relay.acme.example:9443", "https://edge-1.acme.example:9443"}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := f.db.SetProxyURLs(f.ctx, p.ID, tt.urls)
			if got := store.ErrorCode(err); got != tt.code {
				t.Fatalf("code: got %q (%v), want %q", got, err, tt.code)
			}
			got, err := f.db.ProxyURLs(f.ctx, c.ID)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %v (%v), want %v", got, err, tt.want)
			}
			if got := changes(); got != tt.changes {
				t.Errorf("proxy.urls audit lines: got %d, want %d", got, tt.changes)
			}
		})
	}
	if err := f.db.SetProxyURLs(f.ctx, 999, []string{"https://x:1"}); store.ErrorCode(err) != store.ENotFound {
		t.Errorf("unknown proxy: got %v, want not found", err)
	}
}

// A join's listen URLs become the URLs agents are handed: anything but
// http(s)://HOST:PORT is refused and nothing is stored.
func TestJoinRefusesBadURLs(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	for _, tt := range []struct {
		name string
		url  string
		code string
	}{
		{"javascript", "javascript:alert(1)", store.EInvalid},
		{"no port", "https://vm-1", store.EInvalid},
		{"no host", "https://:8443", store.EInvalid},
		{"path", "https://vm-1:8443/x", store.EInvalid},
		{"query", "https://vm-1:8443?a=b", store.EInvalid},
		{"user info", "https://u:p@vm-1:8443", store.EInvalid},
		{"ftp", "ftp://vm-1:21", store.EInvalid},
		{"port out of range", "https://vm-1:99999", store.EInvalid},
		{"https", "https://vm-1:8443", ""},
		{"http (relay with --allow-plain)", "http://vm-1:8080", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: f.joinToken(c.ID), Hostname: "vm-1", URLs: []string{tt.url}})
			if got := store.ErrorCode(err); got != tt.code {
				t.Fatalf("code: got %q (%v), want %q", got, err, tt.code)
			}
			urls, err := f.db.ProxyURLs(f.ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := slices.Contains(urls, tt.url), tt.code == ""; got != want {
				t.Errorf("%q handed to agents: got %v, want %v (%v)", tt.url, got, want, urls)
			}
		})
	}
}
