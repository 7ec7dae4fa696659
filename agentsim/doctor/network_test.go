package doctor

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"outpost/relay/relaytest"
)

func TestDoctorDNS(t *testing.T) {
	d := &Doctor{Resolve: drResolver(map[string][]string{"relay.test": {"127.0.0.1"}})}
	ctx := context.Background()
	tests := []struct {
		host    string
		verdict Verdict
		fix     []string
	}{
		{"relay.test", VerdictOK, nil},
		{"missing.test", VerdictFail, []string{"DNS service", "hosts file", "IP address"}},
		{"10.0.0.5", VerdictSkip, nil},
	}
	for _, tt := range tests {
		c := d.CheckDNS(ctx, tt.host)
		drExpect(t, c, tt.verdict, tt.fix...)
		if tt.verdict == VerdictFail && !strings.Contains(c.Fix, tt.host) {
			t.Errorf("fix does not name the host: %q", c.Fix)
		}
	}
	// A resolver that answers with no address is a failure too.
	d.Resolve = func(context.Context, string) ([]string, error) { return nil, nil }
	drExpect(t, d.CheckDNS(ctx, "empty.test"), VerdictFail, "DNS service")
}

func TestDoctorPort(t *testing.T) {
	ctx := context.Background()
	open, closed := drOpenAddr(t), relaytest.FreeAddr(t)
	_, openPort, _ := net.SplitHostPort(open)
	_, closedPort, _ := net.SplitHostPort(closed)
	d := &Doctor{Resolve: drResolver(map[string][]string{"relay.test": {"127.0.0.1"}}), Timeout: time.Second}
	tests := []struct {
		addr    string
		verdict Verdict
		fix     []string
	}{
		{open, VerdictOK, nil},
		{"relay.test:" + openPort, VerdictOK, nil}, // through the resolver
		{closed, VerdictFail, []string{"open TCP port " + closedPort, "firewall ACL / security group"}},
		{"relay.test:" + closedPort, VerdictFail, []string{"open TCP port " + closedPort + " on relay.test"}},
	}
	for _, tt := range tests {
		drExpect(t, d.CheckPort(ctx, tt.addr), tt.verdict, tt.fix...)
	}
	// The dialer is injectable: a black-holed port times out.
	d.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	d.Timeout = 50 * time.Millisecond
	c := d.CheckPort(ctx, "10.255.255.1:8443")
	drExpect(t, c, VerdictFail, "open TCP port 8443 on 10.255.255.1")
	if !strings.Contains(c.Detail, "timed out") && !strings.Contains(c.Detail, "deadline") {
		t.Errorf("detail %q does not say it timed out", c.Detail)
	}
}

func TestDoctorTLSPin(t *testing.T) {
	ctx := context.Background()
	fleet, other := drNewCA(t, "fleet CA"), drNewCA(t, "reinstalled CA")
	url := drRelay(t, fleet, drHealthy(nil))
	tests := []struct {
		name, url, pin string
		verdict        Verdict
		fix            []string
	}{
		{"pin matches", url, fleet.fingerprint(), VerdictOK, nil},
		{"pin in upper case", url, strings.ToUpper(fleet.fingerprint()), VerdictOK, nil},
		{"relay has another CA", url, other.fingerprint(), VerdictFail, []string{"outpost installcmd create", "new CA"}},
		{"no pin", url, "", VerdictSkip, nil},
		{"plain http", "http://127.0.0.1:1", fleet.fingerprint(), VerdictSkip, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Doctor{CASHA256: tt.pin}
			c := d.CheckTLS(ctx, tt.url)
			drExpect(t, c, tt.verdict, tt.fix...)
			if tt.verdict == VerdictFail && !strings.Contains(c.Detail, fleet.fingerprint()[:16]) {
				t.Errorf("detail does not name the presented CA: %q", c.Detail)
			}
			if tt.name == "no pin" && !strings.Contains(c.Detail, fleet.fingerprint()) {
				t.Errorf("detail does not show the relay's CA: %q", c.Detail)
			}
		})
	}
	// The right CA but a certificate not naming the host dialled (another
	// relay's) fails: the agent refuses it.
	drExpect(t, (&Doctor{CASHA256: fleet.fingerprint()}).CheckTLS(ctx, strings.Replace(url, "127.0.0.1", "localhost", 1)), VerdictFail, "--public")
	// A plain HTTP service on an https:// URL fails the handshake.
	plain := httptest.NewServer(drHealthy(nil))
	defer plain.Close()
	d := &Doctor{CASHA256: fleet.fingerprint(), Timeout: time.Second}
	drExpect(t, d.CheckTLS(ctx, strings.Replace(plain.URL, "http://", "https://", 1)), VerdictFail, "TLS listener")
}

func TestDoctorHealth(t *testing.T) {
	ctx := context.Background()
	ca := drNewCA(t, "fleet CA")
	ok := drRelay(t, ca, drHealthy(nil))
	broken := drRelay(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"code":"unavailable","error":"store closed"}`, http.StatusServiceUnavailable)
	}))
	closed := "https://" + relaytest.FreeAddr(t)
	tests := []struct {
		url     string
		verdict Verdict
		fix     []string
	}{
		{ok, VerdictOK, nil},
		{closed, VerdictFail, []string{"start the relay on 127.0.0.1", "`outpost relay`", "log"}},
		{broken, VerdictFail, []string{"check the relay's log on 127.0.0.1"}},
	}
	d := &Doctor{Timeout: time.Second}
	for _, tt := range tests {
		c := d.CheckHealth(ctx, tt.url)
		drExpect(t, c, tt.verdict, tt.fix...)
		if tt.url == broken && !strings.Contains(c.Detail, "503") {
			t.Errorf("detail %q does not show the status", c.Detail)
		}
		if tt.url == ok && !strings.Contains(c.Detail, "version 1.2.3") {
			t.Errorf("detail %q does not show the version", c.Detail)
		}
	}
}

func TestDoctorClock(t *testing.T) {
	ctx := context.Background()
	ca := drNewCA(t, "fleet CA")
	relayAt := func(off time.Duration) string {
		return drRelay(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", time.Now().Add(off).UTC().Format(http.TimeFormat))
			w.Write([]byte(`{"status":"ok"}`))
		}))
	}
	tests := []struct {
		name    string
		off     time.Duration
		verdict Verdict
		detail  string
	}{
		{"in sync", 0, VerdictOK, "within"},
		{"10s ahead", 10 * time.Second, VerdictWarn, "ahead of"},
		{"2m ahead", 2 * time.Minute, VerdictFail, "ahead of"},
		{"2m behind", -2 * time.Minute, VerdictFail, "behind"},
	}
	d := &Doctor{Timeout: time.Second}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := d.CheckClock(ctx, relayAt(tt.off))
			if tt.verdict == VerdictOK {
				drExpect(t, c, tt.verdict)
			} else {
				drExpect(t, c, tt.verdict, "enable NTP", "127.0.0.1")
			}
			if !strings.Contains(c.Detail, tt.detail) {
				t.Errorf("detail %q lacks %q", c.Detail, tt.detail)
			}
		})
	}
	// The local clock is injectable too: a host 2 minutes fast.
	d.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	c := d.CheckClock(ctx, relayAt(0))
	drExpect(t, c, VerdictFail, "enable NTP")
	if !strings.Contains(c.Detail, "behind") {
		t.Errorf("detail %q", c.Detail)
	}
}
