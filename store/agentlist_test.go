package store_test

import (
	"fmt"
	"outpost/store"
	"slices"
	"testing"
	"time"
)

// listFixture: account acme with clusters edge and core, and one agent of
// globex that no acme filter may show.
func listFixture(t *testing.T) (*fixture, store.Account, store.Cluster, store.Cluster) {
	f := newFixture(t)
	a, _ := f.account("acme")
	b, _ := f.account("globex")
	edge := f.cluster(a.ID, "edge", "relay.acme.example")
	core := f.cluster(a.ID, "core", "10.0.0.5")
	now := t0.Add(24 * time.Hour)
	old := now.Add(-13 * time.Hour)
	seeds := []agentSeed{
		{ID: "ag_1", AccountID: a.ID, ClusterID: edge.ID, Hostname: "web-01", IPs: "10.1.0.1", LastCheckin: now.Add(-time.Minute)},
		{ID: "ag_2", AccountID: a.ID, ClusterID: edge.ID, Hostname: "web-02", IPs: "10.1.0.2", LastCheckin: old},
		{ID: "ag_3", AccountID: a.ID, Hostname: "db-01", IPs: "10.1.0.3,172.16.0.3", LastCheckin: now.Add(-2 * time.Minute), Vulns: 3},
		{ID: "ag_4", AccountID: a.ID, ClusterID: core.ID, Hostname: "腾讯云-web-01", IPs: "10.2.0.1", LastCheckin: now.Add(-3 * time.Minute), OS: "windows"},
		{ID: "ag_5", AccountID: a.ID, Hostname: "腾讯云-db-02", IPs: "10.2.0.2", LastCheckin: old.Add(-time.Hour), DupFP: "fp-clone"},
		{ID: "ag_6", AccountID: a.ID, Hostname: "web_03", IPs: "10.1.0.4", LastCheckin: now.Add(-4 * time.Minute)},
		{ID: "ag_9", AccountID: b.ID, Hostname: "web-01", IPs: "10.9.0.1", LastCheckin: now},
	}
	if err := insertAgents(f.raw(), seeds); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(24 * time.Hour)
	return f, a, edge, core
}

func TestListAgentsFilters(t *testing.T) {
	f, a, edge, core := listFixture(t)
	tests := []struct {
		name   string
		filter store.AgentFilter
		want   []string
	}{
		{"account", store.AgentFilter{}, []string{"db-01", "web-01", "web-02", "web_03", "腾讯云-db-02", "腾讯云-web-01"}},
		{"cluster edge", store.AgentFilter{ClusterID: edge.ID}, []string{"web-01", "web-02"}},
		{"cluster core", store.AgentFilter{ClusterID: core.ID}, []string{"腾讯云-web-01"}},
		{"direct", store.AgentFilter{ClusterID: -1}, []string{"db-01", "web_03", "腾讯云-db-02"}},
		{"online", store.AgentFilter{Status: store.StatusOnline}, []string{"db-01", "web-01", "web_03", "腾讯云-web-01"}},
		{"offline", store.AgentFilter{Status: store.StatusOffline}, []string{"web-02", "腾讯云-db-02"}},
		{"cluster and online", store.AgentFilter{ClusterID: edge.ID, Status: store.StatusOnline}, []string{"web-01"}},
		{"query substring", store.AgentFilter{Query: "web-0"}, []string{"web-01", "web-02", "腾讯云-web-01"}},
		{"query CJK", store.AgentFilter{Query: "腾讯云"}, []string{"腾讯云-db-02", "腾讯云-web-01"}},
		{"query CJK full name", store.AgentFilter{Query: "腾讯云-web-01"}, []string{"腾讯云-web-01"}},
		{"query case-insensitive ASCII", store.AgentFilter{Query: "DB-0"}, []string{"db-01", "腾讯云-db-02"}},
		{"query IP", store.AgentFilter{Query: "172.16.0.3"}, []string{"db-01"}},
		{"query id", store.AgentFilter{Query: "ag_4"}, []string{"腾讯云-web-01"}},
		{"query underscore is literal", store.AgentFilter{Query: "web_0"}, []string{"web_03"}},
		{"query percent is literal", store.AgentFilter{Query: "%"}, nil},
		{"query no match", store.AgentFilter{Query: "mail"}, nil},
		{"duplicate", store.AgentFilter{Duplicate: true}, []string{"腾讯云-db-02"}},
		{"at risk", store.AgentFilter{AtRisk: true}, []string{"db-01"}},
		{"os", store.AgentFilter{OS: "windows"}, []string{"腾讯云-web-01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.filter.AccountID = a.ID
			page, err := f.db.ListAgents(f.ctx, tt.filter)
			if err != nil {
				t.Fatalf("ListAgents: %v", err)
			}
			if got := hostnames(page.Agents); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if page.Total != len(tt.want) {
				t.Errorf("Total: got %d, want %d", page.Total, len(tt.want))
			}
		})
	}
	t.Run("all accounts", func(t *testing.T) {
		page, err := f.db.ListAgents(f.ctx, store.AgentFilter{Query: "web-01"})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 3 {
			t.Errorf("got %d, want 3 (both accounts)", page.Total)
		}
	})
	t.Run("derived fields", func(t *testing.T) {
		page, err := f.db.ListAgents(f.ctx, store.AgentFilter{AccountID: a.ID, Query: "db-01"})
		if err != nil || len(page.Agents) != 1 {
			t.Fatalf("got %v %v", page, err)
		}
		ag := page.Agents[0]
		if ag.RiskStatus != "At risk" || !ag.Online || ag.SecurityStatus != store.Protected || !slices.Equal(ag.IPs, []string{"10.1.0.3", "172.16.0.3"}) {
			t.Errorf("got risk %q online %v %s ips %v", ag.RiskStatus, ag.Online, ag.SecurityStatus, ag.IPs)
		}
	})
}

func TestListAgentsSort(t *testing.T) {
	f, a, _, _ := listFixture(t)
	tests := []struct {
		sort string
		desc bool
		want []string
	}{
		{"", false, []string{"db-01", "web-01", "web-02", "web_03", "腾讯云-db-02", "腾讯云-web-01"}},
		{"hostname", false, []string{"db-01", "web-01", "web-02", "web_03", "腾讯云-db-02", "腾讯云-web-01"}},
		{"hostname", true, []string{"腾讯云-web-01", "腾讯云-db-02", "web_03", "web-02", "web-01", "db-01"}},
		{"last_checkin", false, []string{"腾讯云-db-02", "web-02", "web_03", "腾讯云-web-01", "db-01", "web-01"}},
		{"last_checkin", true, []string{"web-01", "db-01", "腾讯云-web-01", "web_03", "web-02", "腾讯云-db-02"}},
		{"risk", true, []string{"db-01", "web_03", "腾讯云-db-02", "腾讯云-web-01", "web-02", "web-01"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s desc=%v", tt.sort, tt.desc), func(t *testing.T) {
			page, err := f.db.ListAgents(f.ctx, store.AgentFilter{AccountID: a.ID, Sort: tt.sort, Desc: tt.desc})
			if err != nil {
				t.Fatal(err)
			}
			if got := hostnames(page.Agents); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestListAgentsBadArguments(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name   string
		filter store.AgentFilter
	}{
		{"sort", store.AgentFilter{Sort: "name"}},
		{"sort injection", store.AgentFilter{Sort: "hostname; DROP TABLE agents"}},
		{"status", store.AgentFilter{Status: "gone"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.db.ListAgents(f.ctx, tt.filter)
			wantCode(t, err, store.EInvalid)
		})
	}
}

func TestListAgentsPaging(t *testing.T) {
	t.Parallel() // slow under -race: let the quick tests run alongside
	f := newFixture(t)
	a, _ := f.account("acme")
	f.seedAgents(a.ID, 0, "host", 1234, t0)
	var all []string
	for off := 0; ; off += 500 {
		page, err := f.db.ListAgents(f.ctx, store.AgentFilter{AccountID: a.ID, Limit: 500, Offset: off})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 1234 {
			t.Errorf("offset %d: got Total %d, want 1234", off, page.Total)
		}
		if len(page.Agents) == 0 {
			break
		}
		all = append(all, hostnames(page.Agents)...)
	}
	if len(all) != 1234 || !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != 1234 {
		t.Errorf("got %d hosts (sorted %v), want 1234 distinct in order", len(all), slices.IsSorted(all))
	}
	for _, tt := range []struct {
		name          string
		limit, offset int
		wantLen       int
		wantFirst     string
	}{
		{"default limit", 0, 0, 50, "host-00000"},
		{"second page", 50, 50, 50, "host-00050"},
		{"last partial page", 50, 1200, 34, "host-01200"},
		{"past the end", 50, 5000, 0, ""},
		{"limit capped at 1000", 5000, 0, 1000, "host-00000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			page, err := f.db.ListAgents(f.ctx, store.AgentFilter{AccountID: a.ID, Limit: tt.limit, Offset: tt.offset})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Agents) != tt.wantLen || page.Total != 1234 {
				t.Fatalf("got %d rows of %d, want %d of 1234", len(page.Agents), page.Total, tt.wantLen)
			}
			if tt.wantLen > 0 && page.Agents[0].Hostname != tt.wantFirst {
				t.Errorf("got first %q, want %q", page.Agents[0].Hostname, tt.wantFirst)
			}
		})
	}
}

func TestCountAgents(t *testing.T) {
	f, a, _, _ := listFixture(t)
	tests := []struct {
		name    string
		account int64
		want    store.AgentCounts
	}{
		{"acme", a.ID, store.AgentCounts{Total: 6, Online: 4, Direct: 3, Duplicates: 1, AtRisk: 1}},
		{"all accounts", 0, store.AgentCounts{Total: 7, Online: 5, Connected: 1, Direct: 4, Duplicates: 1, AtRisk: 1}},
		{"unknown account", 999, store.AgentCounts{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.db.CountAgents(f.ctx, tt.account)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestSearchIndexFollowsRenames: the trigram index behind --query follows a
// host name reported in a check-in, and short queries still match by LIKE.
func TestSearchIndexFollowsRenames(t *testing.T) {
	f := newFixture(t)
	_, key := f.account("acme")
	g := f.enrol(key, "阿里云-old-07")
	h := store.HostFacts{Hostname: "web-renamed-07", IPs: []string{"10.9.8.7"}, Fingerprint: g.Fingerprint}
	if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: g.ID, Fingerprint: g.Fingerprint, Host: &h}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"renamed", 1}, {"阿里云", 0}, {"old-07", 0}, {"9.8.7", 1}, {"07", 1}, {"云", 0},
	} {
		t.Run(tt.query, func(t *testing.T) {
			page, err := f.db.ListAgents(f.ctx, store.AgentFilter{Query: tt.query})
			if err != nil {
				t.Fatal(err)
			}
			if page.Total != tt.want {
				t.Errorf("query %q: got %d agents, want %d", tt.query, page.Total, tt.want)
			}
		})
	}
}
