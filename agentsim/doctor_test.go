package agentsim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"outpost/relay/relaytest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// drCA is a test certificate authority.
type drCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func (ca drCA) fingerprint() string { return wire.Fingerprint(ca.cert.Raw) }

func drNewCA(t *testing.T, name string) drCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return drCA{cert: cert, key: key}
}

// serverCert is a relay certificate signed by ca, presented as leaf + CA,
// as the relay does.
func (ca drCA) serverCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"relay.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}
}

// drRelay serves h over TLS with a certificate of ca on 127.0.0.1:0.
func drRelay(t *testing.T, ca drCA, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t)}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes the pin check aborts
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// drHealthy answers /healthz like a management-host relay; checkin, when
// set, answers /v1/checkin.
func drHealthy(checkin http.HandlerFunc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathHealth, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok","version":"1.2.3","mode":"forward","ca_sha256":"x"}`))
	})
	if checkin != nil {
		mux.HandleFunc("POST "+wire.PathCheckin, checkin)
	}
	return mux
}

func drOpenAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// drExpect checks a verdict and, for warn and fail, that the fix holds
// every wanted fragment; ok and skip must carry no fix.
func drExpect(t *testing.T, c Check, verdict string, fix ...string) {
	t.Helper()
	if c.Verdict != verdict {
		t.Fatalf("%s %s: verdict %s, want %s (detail %q, fix %q)", c.Name, c.Target, c.Verdict, verdict, c.Detail, c.Fix)
	}
	if c.Detail == "" {
		t.Errorf("%s: empty detail", c.Name)
	}
	switch verdict {
	case VerdictWarn, VerdictFail:
		if c.Fix == "" || strings.Contains(c.Fix, "\n") {
			t.Errorf("%s: want a one-line fix, got %q", c.Name, c.Fix)
		}
	default:
		if c.Fix != "" {
			t.Errorf("%s: verdict %s carries a fix %q", c.Name, verdict, c.Fix)
		}
	}
	for _, f := range fix {
		if !strings.Contains(c.Fix, f) {
			t.Errorf("%s: fix %q lacks %q", c.Name, c.Fix, f)
		}
	}
	if c.Verdict != VerdictOK {
		t.Logf("%s %s: %s: %s | fix: %s", c.Name, c.Target, c.Verdict, c.Detail, c.Fix)
	}
}

func drResolver(m map[string][]string) func(context.Context, string) ([]string, error) {
	return func(_ context.Context, host string) ([]string, error) {
		if ips, ok := m[host]; ok {
			return ips, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
}

func TestDoctorDNS(t *testing.T) {
	d := &Doctor{Resolve: drResolver(map[string][]string{"relay.test": {"127.0.0.1"}})}
	ctx := context.Background()
	tests := []struct {
		host, verdict string
		fix           []string
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
		addr, verdict string
		fix           []string
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
		name, url, pin, verdict string
		fix                     []string
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
		url, verdict string
		fix          []string
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
		verdict string
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

func TestDoctorLoad(t *testing.T) {
	tests := []struct {
		cpu, mem float64
		verdict  string
		fix      []string
	}{
		{40, 60, VerdictOK, nil},
		{94.9, 94.9, VerdictOK, nil},
		{97, 30, VerdictFail, []string{"process using the CPU", "top"}},
		{20, 99, VerdictFail, []string{"process using the memory", "add memory"}},
		{100, 100, VerdictFail, []string{"CPU", "memory"}},
	}
	for _, tt := range tests {
		d := &Doctor{Load: func() (float64, float64) { return tt.cpu, tt.mem }, LoadEvery: time.Millisecond}
		c := d.CheckLoad()
		drExpect(t, c, tt.verdict, tt.fix...)
		if tt.cpu == 97 && strings.Contains(c.Fix, "memory") {
			t.Errorf("CPU-only fix mentions memory: %q", c.Fix)
		}
	}
	// A burst is not "maintained": one reading below 95 % passes, and the
	// readings are taken only while the load is high.
	readings := []float64{100, 99, 40, 100, 100}
	calls := 0
	d := &Doctor{LoadSamples: 5, LoadEvery: time.Millisecond, Load: func() (float64, float64) {
		calls++
		return readings[calls-1], 10
	}}
	drExpect(t, d.CheckLoad(), VerdictOK)
	if calls != 3 {
		t.Errorf("Load read %d times, want 3 (stop at the first low reading)", calls)
	}
	calls = 0
	d.Load = func() (float64, float64) { calls++; return 10, 10 }
	drExpect(t, d.CheckLoad(), VerdictOK)
	if calls != 1 {
		t.Errorf("a calm host is read %d times, want once", calls)
	}
}

func TestDoctorIdentity(t *testing.T) {
	ctx := context.Background()
	ca := drNewCA(t, "fleet CA")
	id := &Identity{AgentID: "ag_1", Secret: "s3cret"}
	var gotAuth, gotFP atomic.Value
	relayAnswering := func(status int, dup bool) string {
		return drRelay(t, ca, drHealthy(func(w http.ResponseWriter, r *http.Request) {
			gotAuth.Store(r.Header.Get("Authorization"))
			var req wire.CheckinRequest
			json.NewDecoder(r.Body).Decode(&req)
			gotFP.Store(req.Fingerprint)
			if status != http.StatusOK {
				http.Error(w, `{"code":"unauthorized","error":"agent credentials not recognised"}`, status)
				return
			}
			json.NewEncoder(w).Encode(wire.CheckinResponse{DuplicateID: dup, ServerTimeUTC: time.Now()})
		}))
	}
	base := func() *Doctor {
		return &Doctor{CASHA256: ca.fingerprint(), Identity: id, IdentityDir: "/opt/agent", Timeout: time.Second,
			Fingerprint: func() (string, error) { return "fp-this-machine", nil }}
	}
	dupFix := []string{"copied or baked into an image", "delete it", "install the agent again"}

	t.Run("relay says duplicate", func(t *testing.T) {
		d := base()
		drExpect(t, d.CheckIdentity(ctx, []string{relayAnswering(200, true)}), VerdictFail, dupFix...)
		if gotAuth.Load() != "Bearer ag_1:s3cret" || gotFP.Load() != "fp-this-machine" {
			t.Errorf("check-in sent auth %v fingerprint %v", gotAuth.Load(), gotFP.Load())
		}
	})
	t.Run("relay says fine", func(t *testing.T) {
		drExpect(t, base().CheckIdentity(ctx, []string{relayAnswering(200, false)}), VerdictOK)
	})
	t.Run("relay does not know the agent", func(t *testing.T) {
		drExpect(t, base().CheckIdentity(ctx, []string{relayAnswering(401, false)}), VerdictFail, "re-enrol")
	})
	t.Run("plain HTTP refused: the next relay is tried", func(t *testing.T) {
		plain := httptest.NewServer(drHealthy(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(wire.Error{Code: "forbidden", Message: "authenticated calls need TLS: use the https port"})
		}))
		defer plain.Close()
		c := base().CheckIdentity(ctx, []string{plain.URL})
		drExpect(t, c, VerdictSkip)
		if !strings.Contains(c.Detail, "need TLS") {
			t.Errorf("detail %q", c.Detail)
		}
		drExpect(t, base().CheckIdentity(ctx, []string{plain.URL, relayAnswering(200, true)}), VerdictFail, dupFix...)
	})
	t.Run("pin mismatch: the secret is not sent", func(t *testing.T) {
		d := base()
		d.CASHA256 = drNewCA(t, "other").fingerprint()
		gotAuth.Store("")
		drExpect(t, d.CheckIdentity(ctx, []string{relayAnswering(200, true)}), VerdictSkip)
		if gotAuth.Load() != "" {
			t.Errorf("credentials reached a relay with the wrong CA")
		}
	})
	t.Run("store says duplicate", func(t *testing.T) {
		d := base()
		d.Agent = func(_ context.Context, id string) (store.Agent, error) {
			return store.Agent{ID: id, Hostname: "web-1", Duplicate: true}, nil
		}
		drExpect(t, d.CheckIdentity(ctx, nil), VerdictFail, dupFix...)
		d.Agent = func(_ context.Context, id string) (store.Agent, error) {
			return store.Agent{ID: id, Hostname: "web-1"}, nil
		}
		drExpect(t, d.CheckIdentity(ctx, nil), VerdictOK)
		d.Agent = func(_ context.Context, id string) (store.Agent, error) {
			return store.Agent{}, store.Errorf(store.ENotFound, "agent %s not found", id)
		}
		drExpect(t, d.CheckIdentity(ctx, nil), VerdictFail, "re-enrol")
	})
	t.Run("damaged identity file", func(t *testing.T) {
		d := &Doctor{IdentityDir: "/opt/agent", IdentityErr: errors.New("no agent id or secret")}
		drExpect(t, d.CheckIdentity(ctx, nil), VerdictFail, filepath.Join("/opt/agent", IdentityFile))
	})
	t.Run("fleet duplicates on the management host", func(t *testing.T) {
		d := &Doctor{Duplicates: func(context.Context) ([]store.Agent, int, error) {
			return []store.Agent{{ID: "ag_7", Hostname: "clone-a"}}, 3, nil
		}}
		c := d.CheckIdentity(ctx, nil)
		drExpect(t, c, VerdictFail, "outpost agent list --duplicate", "re-enrol")
		if !strings.Contains(c.Detail, "clone-a (ag_7)") || !strings.Contains(c.Detail, "2 more") {
			t.Errorf("detail %q", c.Detail)
		}
		d.Duplicates = func(context.Context) ([]store.Agent, int, error) { return nil, 0, nil }
		drExpect(t, d.CheckIdentity(ctx, nil), VerdictOK)
	})
	t.Run("nothing to check", func(t *testing.T) {
		drExpect(t, (&Doctor{}).CheckIdentity(ctx, nil), VerdictSkip)
	})
}

func TestDoctorInstallKey(t *testing.T) {
	ctx := context.Background()
	const key = "ik_0123456789abcdef"
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cmds := func(ics ...store.InstallCommand) func(context.Context) ([]store.InstallCommand, error) {
		return func(context.Context) ([]store.InstallCommand, error) { return ics, nil }
	}
	mine := store.InstallCommand{ID: 7, Cluster: "edge", KeyPrefix: key[:10], ExpiresAt: exp, Uses: 3}
	other := store.InstallCommand{ID: 8, KeyPrefix: "ik_zzzzzzz", ExpiresAt: exp}
	revoked, expired := mine, mine
	revoked.Revoked = true
	expired.Expired = true
	tests := []struct {
		name    string
		key     string
		list    func(context.Context) ([]store.InstallCommand, error)
		verdict string
		fix     []string
		detail  string
	}{
		{"valid", key, cmds(other, mine), VerdictOK, nil, "install command 7 (cluster edge) is valid until 2030-01-02T03:04:05Z, used 3"},
		{"revoked", key, cmds(other, revoked), VerdictFail, []string{"outpost installcmd create --cluster edge"}, "was revoked"},
		{"expired", key, cmds(expired), VerdictFail, []string{"outpost installcmd create --cluster edge"}, "expired at 2030-01-02T03:04:05Z"},
		{"unknown", key, cmds(other), VerdictFail, []string{"outpost installcmd create"}, "no install command has this key"},
		{"too short", "ik_1", cmds(mine), VerdictFail, []string{"outpost installcmd create"}, "too short"},
		{"not the management host", key, nil, VerdictSkip, nil, "management host"},
		{"no key", "", cmds(mine), VerdictSkip, nil, "no --key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Doctor{Key: tt.key, InstallCommands: tt.list}
			c := d.CheckKey(ctx)
			drExpect(t, c, tt.verdict, tt.fix...)
			if !strings.Contains(c.Detail, tt.detail) {
				t.Errorf("detail %q lacks %q", c.Detail, tt.detail)
			}
			if strings.Contains(c.Target+c.Detail+c.Fix, key) {
				t.Errorf("the whole key is printed: %+v", c)
			}
		})
	}
}

func TestDoctorUpstream(t *testing.T) {
	ctx := context.Background()
	d := &Doctor{Timeout: time.Second}
	closed := relaytest.FreeAddr(t)
	drExpect(t, d.CheckUpstream(ctx, "http://"+drOpenAddr(t)+wire.PathIngest), VerdictOK)
	drExpect(t, d.CheckUpstream(ctx, "https://"+closed), VerdictFail, "allow outbound TCP "+closed, "firewall ACL / security group")
	drExpect(t, d.CheckUpstream(ctx, "ftp://x"), VerdictFail, "--upstream")
}

func TestDoctorCache(t *testing.T) {
	data := t.TempDir()
	// 1 MB already in the ring: it may grow by cap - 1 MB.
	ring := filepath.Join(data, "cache", "edge")
	os.MkdirAll(ring, 0o700)
	os.WriteFile(filepath.Join(ring, "seg-1.ndjson"), make([]byte, 1_000_000), 0o600)
	var asked string
	free := func(n uint64) func(string) (uint64, error) {
		return func(dir string) (uint64, error) { asked = dir; return n, nil }
	}
	tests := []struct {
		name    string
		target  CacheTarget
		free    uint64
		verdict string
		fix     []string
	}{
		{"10 GB cap, 1 GB free", CacheTarget{Cluster: "edge", Dir: "cache/edge"}, 1_000_000_000, VerdictWarn,
			[]string{"free 9.0 GB", "outpost cluster policy edge --cache-dir DIR --cache-max 1001MB"}},
		{"10 GB cap, 20 GB free", CacheTarget{Cluster: "edge", Dir: "cache/edge"}, 20_000_000_000, VerdictOK, nil},
		{"used bytes count", CacheTarget{Cluster: "edge", Dir: ring, Max: 2_000_000}, 1_500_000, VerdictOK, nil},
		{"small cap, no room", CacheTarget{Cluster: "edge", Dir: ring, Max: 5_000_000}, 1_000_000, VerdictWarn, []string{"--cache-max 2MB"}},
		{"directory not created yet", CacheTarget{Cluster: "new", Dir: "cache/new/deeper"}, 1_000, VerdictWarn, []string{"policy new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Doctor{DataDir: data, FreeBytes: free(tt.free)}
			drExpect(t, d.CheckCache(tt.target), tt.verdict, tt.fix...)
			if _, err := os.Stat(asked); err != nil {
				t.Errorf("free space asked of a missing directory %s", asked)
			}
		})
	}
	d := &Doctor{DataDir: data, FreeBytes: func(string) (uint64, error) { return 0, errors.New("statfs: boom") }}
	drExpect(t, d.CheckCache(CacheTarget{Dir: "cache"}), VerdictSkip)
}

func TestDoctorDiskFree(t *testing.T) {
	if _, err := exec.LookPath("df"); err != nil {
		t.Skip("no df")
	}
	n, err := doctorDiskFree(t.TempDir())
	if err != nil || n == 0 {
		t.Fatalf("doctorDiskFree = %d, %v", n, err)
	}
}

func TestDoctorLinkLimits(t *testing.T) {
	const mbit = 1_000_000
	cl := func(name string, p store.Policy, agents, online int) store.Cluster {
		return store.Cluster{ID: int64(len(name)), Name: name, Account: "acme", Policy: p, Agents: agents, Proxies: online, ProxiesOnline: online}
	}
	tests := []struct {
		name    string
		c       store.Cluster
		verdict string
		fix     []string
	}{
		{"within 60 %", cl("gz", store.Policy{Mode: store.ModeForward, BandwidthBps: 2 * mbit / 8, LinkBps: 100 * mbit}, 10, 1), VerdictOK, nil},
		{"80 of 100 Mbit", cl("gz", store.Policy{Mode: store.ModeForward, BandwidthBps: 80 * mbit / 8, LinkBps: 100 * mbit}, 10, 1),
			VerdictWarn, []string{"lower the bandwidth limit", "outpost cluster policy gz --bandwidth 60Mbit"}},
		{"unlimited on a known link", cl("gz", store.Policy{Mode: store.ModeForward, LinkBps: 10 * mbit}, 0, 1),
			VerdictWarn, []string{"--bandwidth 6Mbit"}},
		{"hosts need more than the limit", cl("gz", store.Policy{Mode: store.ModeForward, BandwidthBps: 100_000 / 8, LinkBps: 100 * mbit}, 50, 1),
			VerdictWarn, []string{"raise the bandwidth limit to at least 500 Kbit/s", "--bandwidth 500Kbit"}},
		{"more hosts than proxies carry", cl("gz", store.Policy{Mode: store.ModeCache}, 7000, 1),
			VerdictWarn, []string{"outpost proxy deploy --cluster gz"}},
		{"link unknown", cl("gz", store.Policy{Mode: store.ModeForward}, 10, 1), VerdictSkip, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drExpect(t, CheckClusterLimits(tt.c, []store.Cluster{tt.c}), tt.verdict, tt.fix...)
		})
	}
	// A cluster name used by two accounts is qualified in the fix.
	a := cl("gz", store.Policy{Mode: store.ModeForward, BandwidthBps: 80 * mbit / 8, LinkBps: 100 * mbit}, 0, 1)
	b := a
	b.ID, b.Account = 99, "other"
	drExpect(t, CheckClusterLimits(a, []store.Cluster{a, b}), VerdictWarn, "policy gz --account acme --bandwidth")
}

// TestDoctorRun runs every check together: a healthy relay reached by name
// passes; a closed port fails and the checks behind it are skipped.
func TestDoctorRun(t *testing.T) {
	ctx := context.Background()
	ca := drNewCA(t, "fleet CA")
	url := drRelay(t, ca, drHealthy(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(wire.CheckinResponse{})
	}))
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "https://"))
	named := "https://relay.test:" + port
	base := func() *Doctor {
		return &Doctor{
			Proxies: []string{named}, CASHA256: ca.fingerprint(), Timeout: time.Second,
			Identity: &Identity{AgentID: "ag_1", Secret: "s"}, IdentityDir: "/opt/agent",
			Resolve:     drResolver(map[string][]string{"relay.test": {"127.0.0.1"}}),
			Load:        func() (float64, float64) { return 10, 20 },
			Fingerprint: func() (string, error) { return "fp", nil },
			Upstreams:   []string{"http://" + drOpenAddr(t)},
			Caches:      []CacheTarget{{Cluster: "edge", Dir: t.TempDir()}},
			FreeBytes:   func(string) (uint64, error) { return 50_000_000_000, nil },
			Key:         "ik_0123456789",
			InstallCommands: func(context.Context) ([]store.InstallCommand, error) {
				return []store.InstallCommand{{ID: 1, KeyPrefix: "ik_0123456", ExpiresAt: time.Now().Add(time.Hour)}}, nil
			},
			Clusters: func(context.Context) ([]store.Cluster, error) {
				return []store.Cluster{{ID: 1, Name: "edge", Policy: store.Policy{Mode: store.ModeForward, BandwidthBps: 1000, LinkBps: 100_000_000}}}, nil
			},
		}
	}

	checks := base().Run(ctx)
	seen := map[string]bool{}
	for _, c := range checks {
		seen[c.Name] = true
		if c.Verdict != VerdictOK {
			t.Errorf("healthy run: %+v", c)
		}
	}
	for _, n := range CheckNames {
		if !seen[n] {
			t.Errorf("check %s not run", n)
		}
	}
	if s := Summarize(checks); s.String() != "11 checks: 11 ok, 0 warnings, 0 failures" {
		t.Errorf("summary %q", s)
	}

	d := base()
	d.Proxies = []string{"https://" + relaytest.FreeAddr(t), "https://nowhere.test:8443"}
	d.Skip = []string{CheckLoad}
	verdicts := map[string]string{}
	for _, c := range d.Run(ctx) {
		verdicts[c.Name+" "+c.Target] = c.Verdict
	}
	want := map[string]string{
		"port " + strings.TrimPrefix(d.Proxies[0], "https://"): VerdictFail,
		"tls-pin " + d.Proxies[0]:                              VerdictSkip,
		"health " + d.Proxies[0]:                               VerdictSkip,
		"clock " + d.Proxies[0]:                                VerdictSkip,
		"dns nowhere.test":                                     VerdictFail,
		"port nowhere.test:8443":                               VerdictSkip,
		"health " + d.Proxies[1]:                               VerdictSkip,
		"load this host":                                       VerdictSkip,
		"identity /opt/agent":                                  VerdictSkip, // no relay answered, no store
	}
	for k, v := range want {
		if verdicts[k] != v {
			t.Errorf("%s: verdict %q, want %q (all: %v)", k, verdicts[k], v, verdicts)
		}
	}
	if s := Summarize(d.Run(ctx)); s.Failures != 2 || s.String() != "6 checks: 4 ok, 0 warnings, 2 failures" {
		t.Errorf("summary %+v %q", s, s)
	}
}
