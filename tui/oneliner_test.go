package tui

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/store/ops"
)

// withServerKey gives dir the server certificate a management host that
// has started keeps in DATA/tls/server.pem, and returns its key pin.
func withServerKey(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mgr"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "tls"), 0o700)
	if err := os.WriteFile(filepath.Join(dir, "tls", "server.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pin, err := ops.ServerKeyPin(dir)
	if err != nil || pin == "" {
		t.Fatalf("ServerKeyPin: %q, %v", pin, err)
	}
	return pin
}

// Once the management host has its server key, the dashboard shows (and
// copies) the same one-liner as the command line, the plain command too.
func TestOneLiners(t *testing.T) {
	f := newFleet(t)
	f.cluster("gz", "gz.example")
	c := f.common(false)
	c.DataDir = t.TempDir()
	keyPin := withServerKey(t, c.DataDir)
	mgr, _ := ops.ManagerURL(c.DataDir, "")

	t.Run("manual deploy", func(t *testing.T) {
		hs := newHarness(t, c, 120, 40)
		hs.keys("enter", "p", "right", "right", "enter")
		d := dialogAs[*CommandDialog](t, hs)
		prefix := "curl -fsSk --pinnedpubkey " + keyPin + " " + mgr + "/v1/install.sh | sh -s -- relay --manager " + mgr + " --join jt_"
		if !strings.HasPrefix(d.Command(), prefix) {
			t.Fatalf("command %q, want the CLI's %q + token", d.Command(), prefix)
		}
		if !strings.HasPrefix(d.alt, "outpost relay --manager "+mgr+" --join jt_") {
			t.Errorf("plain command %q, want outpost relay ...", d.alt)
		}
		hs.wantScreen("Run this as root on the proxy host of gz", "curl -fsSk --pinnedpubkey", "or, where outpost is already installed:")
		hs.keys("y")
		if len(hs.copied) != 1 || hs.copied[0] != d.Command() {
			t.Fatalf("copied %q, want the one-liner", hs.copied)
		}
		hs.keys("esc")
	})

	t.Run("install command", func(t *testing.T) {
		hs := newHarness(t, c, 120, 40)
		hs.send(SwitchMsg{NewInstallView(c)})
		hs.keys("n")
		dialogAs[*Form](t, hs)
		hs.keys("enter")
		kd := dialogAs[*keyDialog](t, hs)
		if want := "curl -fsSk --pinnedpubkey " + keyPin + " " + mgr + "/v1/install.sh | sh -s -- agent --proxy "; !strings.HasPrefix(kd.command, want) || !strings.Contains(kd.command, " --key ik_") {
			t.Fatalf("command %q, want %q... --key ik_...", kd.command, want)
		}
		if !strings.HasPrefix(kd.alt, "outpost agent run --proxy ") {
			t.Errorf("plain command %q, want outpost agent run ...", kd.alt)
		}
		hs.wantScreen("Run as root on each host", "or, where outpost is already installed:")
		hs.keys("y")
		if len(hs.copied) != 1 || hs.copied[0] != kd.command {
			t.Fatalf("copied %q, want the one-liner", hs.copied)
		}
	})
}
