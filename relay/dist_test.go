package relay_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"outpost/relay"
	"outpost/relay/wire"
	"outpost/store/ops"
)

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func get(t *testing.T, hc *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// The management host serves this binary for its own OS/arch (over a
// DATA/dist copy of the same name), DATA/dist files for the others, their
// SHA-256 list, and 404 for anything else.
func TestDistBinaries(t *testing.T) {
	m := startManager(t)
	self := "outpost-" + runtime.GOOS + "-" + runtime.GOARCH
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	selfSum := fileSum(t, exe)
	dist := filepath.Join(m.Dir, "dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	other := []byte("#!/bin/sh\necho another build\n")
	for name, b := range map[string][]byte{"outpost-plan9-arm64": other, self: []byte("decoy"), "notes.txt": []byte("x")} {
		if err := os.WriteFile(filepath.Join(dist, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	otherSum := fileSum(t, filepath.Join(dist, "outpost-plan9-arm64"))
	hc := httpClient(m)
	// Sorted by name.
	names := []string{"outpost-plan9-arm64", self}
	lines := []string{otherSum + "  outpost-plan9-arm64\n", selfSum + "  " + self + "\n"}
	if self < names[0] {
		names[0], names[1], lines[0], lines[1] = names[1], names[0], lines[1], lines[0]
	}

	for _, tc := range []struct {
		name, path string
		code       int
		sum        string // of the body, for 200
		body       string // in the body
	}{
		{"this binary", wire.PathDist + self, 200, selfSum, ""},
		{"dropped in", wire.PathDist + "outpost-plan9-arm64", 200, otherSum, ""},
		{"unknown arch", wire.PathDist + "outpost-beos-mips", 404, "", "this management host serves: " + strings.Join(names, ", ")},
		{"not a binary name", wire.PathDist + "notes.txt", 404, "", "no binary"},
		{"traversal", wire.PathDist + "..%2foutpost.db", 404, "", "no binary"},
		{"sums", wire.PathDist + "SHA256SUMS", 200, "", strings.Join(lines, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, base := range []string{m.TLSURL, m.PlainURL} {
				code, body := get(t, hc, base+tc.path)
				if code != tc.code {
					t.Fatalf("GET %s: got %d, want %d: %.200s", base+tc.path, code, tc.code, body)
				}
				if tc.sum != "" {
					h := sha256.Sum256([]byte(body))
					if got := hex.EncodeToString(h[:]); got != tc.sum {
						t.Errorf("GET %s: body SHA-256 %s, want %s", base+tc.path, got, tc.sum)
					}
				}
				if !strings.Contains(body, tc.body) {
					t.Errorf("GET %s: body %q lacks %q", base+tc.path, body, tc.body)
				}
			}
		})
	}
}

// The script names the address the client used, pins the key the TLS
// listener presents, and lists each binary's SHA-256; over plain HTTP
// there is nothing to pin, and a joined relay serves none.
func TestInstallScript(t *testing.T) {
	m := startManager(t)
	hc := httpClient(m)
	code, body := get(t, hc, m.TLSURL+wire.PathInstallScript)
	if code != http.StatusOK {
		t.Fatalf("GET install.sh: got %d, want 200: %s", code, body)
	}
	resp, err := hc.Get(m.TLSURL + wire.PathHealth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	served := wire.KeyPin(resp.TLS.PeerCertificates[0].RawSubjectPublicKeyInfo)
	stored, err := ops.ServerKeyPin(m.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if stored != served {
		t.Errorf("ops.ServerKeyPin: got %s, want the served key's %s", stored, served)
	}
	exe, _ := os.Executable()
	for _, want := range []string{
		"\turl='" + m.TLSURL + "'\n",
		"\tpin='" + served + "'\n",
		fileSum(t, exe) + "  outpost-" + runtime.GOOS + "-" + runtime.GOARCH + "\n",
		"\noutpost_install \"$@\"\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("install.sh lacks %q", want)
		}
	}
	if !strings.HasSuffix(body, "\noutpost_install \"$@\"\n") {
		t.Errorf("install.sh does not end by calling its function (a cut download must run nothing)")
	}

	for _, tc := range []struct {
		host string
		code int
		want string
	}{
		{"mgr.example.com:8443", 200, "\turl='https://mgr.example.com:8443'\n"},
		{"[::1]:8443", 200, "\turl='https://[::1]:8443'\n"},
		{"mgr'$(id)", 400, "not a host name"},
	} {
		req, _ := http.NewRequest(http.MethodGet, m.TLSURL+wire.PathInstallScript, nil)
		req.Host = tc.host
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("Host %q: %v", tc.host, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) {
			t.Errorf("Host %q: got %d, want %d with %q: %.300s", tc.host, resp.StatusCode, tc.code, tc.want, b)
		}
	}

	if code, body := get(t, hc, m.PlainURL+wire.PathInstallScript); code != http.StatusForbidden || !strings.Contains(body, "https listeners only") {
		t.Errorf("install.sh over plain HTTP: got %d %q, want 403", code, body)
	}

	acct, _, err := m.DB.CreateAccount(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, m, acct.ID, "edge", "edge.example")
	_, url, err := joinRelay(t, m, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, hc, url+wire.PathInstallScript); code != http.StatusNotFound {
		t.Errorf("install.sh on a joined relay: got %d, want 404", code)
	}
}

// New names re-issue the server certificate with the same key: the pin
// in printed one-liners stays good.
func TestServerKeyKeptOnNewNames(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "tls")
	p, err := relay.LoadOrCreatePKI(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := p.ServerKeyPin()
	keyBefore, _ := os.ReadFile(filepath.Join(dir, "server-key.pem"))
	if err := p.EnsureNames([]string{"mgr.example.net"}); err != nil {
		t.Fatal(err)
	}
	if len(p.Missing([]string{"mgr.example.net"})) != 0 {
		t.Fatal("EnsureNames did not add the name")
	}
	if got := p.ServerKeyPin(); got != before {
		t.Errorf("pin after re-issue: got %s, want %s", got, before)
	}
	keyAfter, _ := os.ReadFile(filepath.Join(dir, "server-key.pem"))
	if string(keyAfter) != string(keyBefore) {
		t.Errorf("server-key.pem changed on re-issue")
	}
	if stored, err := ops.ServerKeyPin(data); err != nil || stored != before {
		t.Errorf("ops.ServerKeyPin after re-issue: got %q, %v; want %s", stored, err, before)
	}
	p2, err := relay.LoadOrCreatePKI(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := p2.ServerKeyPin(); got != before {
		t.Errorf("pin after reload: got %s, want %s", got, before)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")); err != nil {
		t.Errorf("server.pem and server-key.pem do not match: %v", err)
	}
}
