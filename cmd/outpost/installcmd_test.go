package main

// The manager URL and CA pin in generated install commands (the CLI harness
// is in main_test.go).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestManagerURLAndPin checks the generated commands: the URL of a running
// relay (DATA/run/relay.json) and the CA pin (DATA/tls/ca.pem).
func TestManagerURLAndPin(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "gz", "--address", "10.0.0.5")

	host, _ := os.Hostname()
	r := c.ok("proxy", "deploy", "--cluster", "gz", "--manual")
	if !strings.Contains(r.stdout, "outpost relay --manager https://"+host+":8443 --join jt_") || strings.Contains(r.stdout, "--ca-sha256") {
		t.Errorf("without a running relay: %s", r)
	}

	os.MkdirAll(filepath.Join(c.data, "run"), 0o700)
	os.WriteFile(filepath.Join(c.data, "run", "relay.json"), []byte(`{"pid":1,"urls":["http://127.0.0.1:8080","https://127.0.0.1:8443"]}`), 0o600)
	der := selfSigned(t)
	os.MkdirAll(filepath.Join(c.data, "tls"), 0o700)
	os.WriteFile(filepath.Join(c.data, "tls", "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	sum := sha256.Sum256(der)
	pin := hex.EncodeToString(sum[:])

	var jt struct {
		Token   string `json:"token"`
		Command string `json:"command"`
	}
	c.json(&jt, "proxy", "deploy", "--cluster", "gz", "--manual")
	if want := "outpost relay --manager https://127.0.0.1:8443 --join " + jt.Token + " --ca-sha256 " + pin; jt.Command != want {
		t.Errorf("command\n got %s\nwant %s", jt.Command, want)
	}
	var ic struct {
		Key     string `json:"key"`
		Command string `json:"command"`
	}
	c.json(&ic, "installcmd", "create", "--os", "windows")
	if want := "outpost agent run --proxy https://127.0.0.1:8443 --key " + ic.Key + " --ca-sha256 " + pin; ic.Command != want {
		t.Errorf("direct install command\n got %s\nwant %s", ic.Command, want)
	}
}

func selfSigned(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outpost test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
