package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/relaytest"
	"outpost/relay/wire"
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
func drExpect(t *testing.T, c Check, verdict Verdict, fix ...string) {
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
			Identity: &agentsim.Identity{AgentID: "ag_1", Secret: "s"}, IdentityDir: "/opt/agent",
			Resolve:     drResolver(map[string][]string{"relay.test": {"127.0.0.1"}}),
			Load:        func() (float64, float64) { return 10, 20 },
			Fingerprint: func() (string, error) { return "fp", nil },
			Upstreams:   []string{"http://" + drOpenAddr(t)},
			Caches:      []CacheTarget{{Cluster: "edge", Dir: t.TempDir()}},
			FreeBytes:   func(string) (uint64, error) { return 50_000_000_000, nil },
			Key:         "ik_0123456789",
			InstallCommands: func(context.Context) ([]InstallCommand, error) {
				return []InstallCommand{{ID: 1, KeyPrefix: "ik_0123456", ExpiresAt: time.Now().Add(time.Hour)}}, nil
			},
			Clusters: func(context.Context) ([]Cluster, error) {
				return []Cluster{{ID: 1, Name: "edge", Forward: true, Bandwidth: "8 Kbit/s", Link: "100 Mbit/s"}}, nil
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
	verdicts := map[string]Verdict{}
	for _, c := range d.Run(ctx) {
		verdicts[c.Name+" "+c.Target] = c.Verdict
	}
	want := map[string]Verdict{
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
