package ops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallLines(t *testing.T) {
	const pin = "sha256//AAAA"
	for _, tc := range []struct {
		name, got, want string
	}{
		{"agent", AgentInstallLine("https://mgr:8443/", pin, []string{"https://a:8443", "https://b:8443"}, "ik_1", "c0ffee"),
			"curl -fsSk --pinnedpubkey sha256//AAAA https://mgr:8443/v1/install.sh | sh -s -- agent --proxy https://a:8443,https://b:8443 --key ik_1 --ca-sha256 c0ffee"},
		{"relay", JoinInstallLine("https://mgr:8443", pin, "jt_1", "c0ffee"),
			"curl -fsSk --pinnedpubkey sha256//AAAA https://mgr:8443/v1/install.sh | sh -s -- relay --manager https://mgr:8443 --join jt_1 --ca-sha256 c0ffee"},
		{"relay without CA pin", JoinInstallLine("https://mgr:8443", pin, "jt_1", ""),
			"curl -fsSk --pinnedpubkey sha256//AAAA https://mgr:8443/v1/install.sh | sh -s -- relay --manager https://mgr:8443 --join jt_1"},
		{"plain http", AgentInstallLine("http://mgr:8080", pin, []string{"http://mgr:8080"}, "ik_1", ""), ""},
		{"no server key", JoinInstallLine("https://mgr:8443", "", "jt_1", "c0ffee"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
	if got := InstallLineMissing("https://mgr:8443", pin); got != "" {
		t.Errorf("InstallLineMissing with a line: got %q, want \"\"", got)
	}
	for _, tc := range []struct{ url, pin, want string }{
		{"http://mgr:8080", pin, "is not https"},
		{"https://mgr:8443", "", "no server certificate"},
	} {
		if got := InstallLineMissing(tc.url, tc.pin); !strings.Contains(got, tc.want) {
			t.Errorf("InstallLineMissing(%q, %q): got %q, want %q in it", tc.url, tc.pin, got, tc.want)
		}
	}
}

func TestServerKeyPinFiles(t *testing.T) {
	dir := t.TempDir()
	if pin, err := ServerKeyPin(dir); pin != "" || err != nil {
		t.Errorf("no server.pem: got %q, %v; want \"\", nil", pin, err)
	}
	os.MkdirAll(filepath.Join(dir, "tls"), 0o700)
	os.WriteFile(filepath.Join(dir, "tls", "server.pem"), []byte("not pem"), 0o600)
	if _, err := ServerKeyPin(dir); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("garbage server.pem: got %v, want holds no PEM certificate", err)
	}
}
