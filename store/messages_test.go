package store_test

import (
	"strings"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// Refusals say the cause: a rate without its unit, which one to use.
func TestParseRateMessages(t *testing.T) {
	tests := []struct {
		name  string
		parse func(string) (int64, error)
		in    string
		want  int64
		msg   string // "" = accepted
	}{
		{name: "bandwidth bare number", parse: store.ParseBandwidth, in: "2", msg: "bandwidth 2 needs a unit, e.g. 2Mbit or 250KB/s"},
		{name: "bandwidth bare 1000", parse: store.ParseBandwidth, in: " 1000 ", msg: "bandwidth 1000 needs a unit, e.g. 2Mbit or 250KB/s"},
		{name: "bandwidth 0 is unlimited", parse: store.ParseBandwidth, in: "0", want: 0},
		{name: "bandwidth with unit", parse: store.ParseBandwidth, in: "2Mbit", want: 250000},
		{name: "link bare number", parse: store.ParseLink, in: "100", msg: "link 100 needs a unit, e.g. 100Mbit or 1Gbit"},
		{name: "link in bits per second", parse: store.ParseLink, in: "100Mbit", want: 100 * 1000 * 1000},
		{name: "link in bytes per second", parse: store.ParseLink, in: "1MB/s", want: 8 * 1000 * 1000},
		{name: "link 0 is unknown", parse: store.ParseLink, in: "0", want: 0},
		{name: "link unlimited is not a capacity", parse: store.ParseLink, in: "unlimited", msg: "want the link capacity"},
		{name: "link unknown unit", parse: store.ParseLink, in: "5 parsecs", msg: `link "5 parsecs": unknown unit "parsecs"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse(tt.in)
			if tt.msg == "" {
				if err != nil || got != tt.want {
					t.Errorf("got %d, %v; want %d", got, err, tt.want)
				}
				return
			}
			if wantCode(t, err, store.EInvalid) && !strings.Contains(store.ErrorMessage(err), tt.msg) {
				t.Errorf("got message %q, want it to contain %q", store.ErrorMessage(err), tt.msg)
			}
		})
	}
}

// Deleting a proxy right after its relay stopped is refused with how long
// it still counts as online; nothing changes.
func TestDeleteProxyRefusalSaysHowLong(t *testing.T) {
	after := store.DefaultSettings().ProxyOfflineAfter
	tests := []struct {
		name    string
		ago     time.Duration // since the last heartbeat
		want    string
		wantErr bool
	}{
		{name: "5 s after the last heartbeat", ago: 5 * time.Second, wantErr: true,
			want: "proxy server 1 (relay-1) is still online (last heartbeat 5s ago); it counts as offline 30s after its last heartbeat, in 25s; stop its relay first"},
		{name: "at the limit", ago: after, wantErr: true, want: "last heartbeat 30s ago); it counts as offline 30s after its last heartbeat, in 1s;"},
		{name: "offline", ago: after + time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a, _ := f.account("acme")
			c := f.cluster(a.ID, "edge", "relay.acme.example")
			p := f.proxy(c.ID, "relay-1", "1.0.0")
			f.clock.Advance(tt.ago)
			before := f.dump()
			err := f.db.DeleteProxy(f.ctx, p.ID)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("got %v, want the offline proxy deleted", err)
				}
				return
			}
			if wantCode(t, err, store.EConflict) && !strings.Contains(store.ErrorMessage(err), tt.want) {
				t.Errorf("got %q, want it to contain %q", store.ErrorMessage(err), tt.want)
			}
			f.unchanged(before)
		})
	}
}

// Uninstalling again says what happened to the first uninstall.
func TestUninstallAgainMessages(t *testing.T) {
	grace := store.DefaultSettings().UninstallGrace
	tests := []struct {
		name    string
		ack     bool
		advance time.Duration
		want    string
	}{
		{name: "acknowledged", ack: true, want: "was uninstalled at 2025-03-01T09:00:01Z (it acknowledged the command): nothing to do"},
		{name: "pending", advance: time.Minute, want: "already has an uninstall pending since 2025-03-01T09:00:00Z (queued), not yet acknowledged by the agent"},
		{name: "grace passed without contact", advance: grace, want: "is already uninstalled: requested at 2025-03-01T09:00:00Z, not heard of since, and the 6h0m0s grace has passed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a, key := f.account("acme")
			ag := f.enrol(key, "web-01")
			if _, err := f.db.Uninstall(f.ctx, a.ID, []string{"web-01"}); err != nil {
				t.Fatal(err)
			}
			if tt.ack {
				f.clock.Advance(time.Second)
				var ids []int64
				for _, c := range f.pending(store.TargetAgent, ag.ID) {
					ids = append(ids, c.ID)
				}
				if err := f.db.AckCommands(f.ctx, store.TargetAgent, ag.ID, ids); err != nil {
					t.Fatal(err)
				}
			}
			f.clock.Advance(tt.advance)
			before := f.dump()
			_, err := f.db.Uninstall(f.ctx, a.ID, []string{"web-01"})
			if wantCode(t, err, store.EConflict) && !strings.Contains(store.ErrorMessage(err), tt.want) {
				t.Errorf("got %q, want it to contain %q", store.ErrorMessage(err), tt.want)
			}
			f.unchanged(before)
		})
	}
}

// An uninstall the agent reported as failed can be sent again.
func TestUninstallAgainAfterFailure(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	ag := f.enrol(key, "web-01")
	if _, err := f.db.Uninstall(f.ctx, a.ID, []string{"web-01"}); err != nil {
		t.Fatal(err)
	}
	first := f.pending(store.TargetAgent, ag.ID)
	f.clock.Advance(time.Second)
	if err := f.db.ReportCommands(f.ctx, store.TargetAgent, ag.ID, []store.CommandReport{
		{ID: first[0].ID, State: wire.StateFailed, Error: "permission denied"}}); err != nil {
		t.Fatal(err)
	}
	if got := f.agent(ag.ID).UninstallText(func(t time.Time) string { return t.Format(time.RFC3339) }); !strings.Contains(got, "failed: permission denied") {
		t.Errorf("UninstallText: got %q, want the failure", got)
	}
	if _, err := f.db.Uninstall(f.ctx, a.ID, []string{"web-01"}); err != nil {
		t.Fatalf("uninstall again after a failure: got %v, want it queued", err)
	}
	if got := f.pending(store.TargetAgent, ag.ID); len(got) != 1 || got[0].ID == first[0].ID {
		t.Errorf("got pending %v, want one new uninstall command", commandTypes(got))
	}
}
