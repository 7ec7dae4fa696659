package relay

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"outpost/relay/wire"
)

// PKI holds the management host's CA and this relay's server certificate.
// Files live in DATA/tls: ca.pem, ca-key.pem, server.pem (leaf + CA),
// server-key.pem. An operator who brings their own puts them there first.
type PKI struct {
	Dir    string
	CA     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	CAPEM  []byte
	Server tls.Certificate

	mu sync.RWMutex // Server, once serving (EnsureNames)
}

// certificate serves the current server certificate (GetCertificate).
func (p *PKI) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c := p.Server
	return &c, nil
}

// Missing returns the hosts the server certificate does not name.
func (p *PKI) Missing(hosts []string) []string {
	p.mu.RLock()
	leaf := p.Server.Leaf
	p.mu.RUnlock()
	var out []string
	for _, h := range hosts {
		if h != "" && (leaf == nil || leaf.VerifyHostname(h) != nil) {
			out = append(out, h)
		}
	}
	return out
}

// EnsureNames re-issues this host's own server certificate when it does
// not name every host agents are told to dial (the management host's
// --public names): pinned clients check the name. Only with the CA key.
// The key pair stays (server-key.pem is kept): the one-line installers
// pin the server's public key, which must not change with its names.
func (p *PKI) EnsureNames(hosts []string) error {
	missing := p.Missing(hosts)
	if len(missing) == 0 {
		return nil
	}
	if p.caKey == nil {
		return fmt.Errorf("the server certificate does not name %s and there is no CA key to issue one", strings.Join(missing, ", "))
	}
	p.mu.RLock()
	var have []string
	key, _ := p.Server.PrivateKey.(*ecdsa.PrivateKey)
	if leaf := p.Server.Leaf; leaf != nil {
		have = append(have, leaf.DNSNames...)
		for _, ip := range leaf.IPAddresses {
			have = append(have, ip.String())
		}
	}
	p.mu.RUnlock()
	name, _ := os.Hostname()
	certPEM, keyPEM, err := p.issue(append([]string{"localhost", "127.0.0.1", "::1", name}, append(have, missing...)...), key)
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	// A key of another type (brought by the operator) was replaced.
	if key == nil {
		if err := writeFile0600(filepath.Join(p.Dir, "server-key.pem"), keyPEM); err != nil {
			return err
		}
	}
	if err := writeFile0600(filepath.Join(p.Dir, "server.pem"), certPEM); err != nil {
		return err
	}
	p.mu.Lock()
	p.Server = cert
	p.mu.Unlock()
	return nil
}

// CAFingerprint is what install commands carry and agents pin.
func (p *PKI) CAFingerprint() string { return wire.Fingerprint(p.CA.Raw) }

// LoadOrCreatePKI loads DATA/tls, creating a CA and a server certificate
// for hosts on first start. Without the CA key (an operator-provided
// server certificate) the PKI can serve but not issue relay certificates.
func LoadOrCreatePKI(dir string, hosts []string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &PKI{Dir: dir}
	caPath, caKeyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if _, err := os.Stat(caPath); errors.Is(err, os.ErrNotExist) {
		if err := createCA(caPath, caKeyPath); err != nil {
			return nil, fmt.Errorf("create CA: %w", err)
		}
	}
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(caPEM)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM certificate", caPath)
	}
	if p.CA, err = x509.ParseCertificate(blk.Bytes); err != nil {
		return nil, fmt.Errorf("%s: %w", caPath, err)
	}
	p.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.CA.Raw})
	if keyPEM, err := os.ReadFile(caKeyPath); err == nil {
		if kb, _ := pem.Decode(keyPEM); kb != nil {
			if p.caKey, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
				return nil, fmt.Errorf("%s: %w", caKeyPath, err)
			}
		}
	}
	srvPath, srvKeyPath := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if _, err := os.Stat(srvPath); errors.Is(err, os.ErrNotExist) {
		if p.caKey == nil {
			return nil, fmt.Errorf("%s missing and no CA key to issue one", srvPath)
		}
		certPEM, keyPEM, err := p.Issue(hosts)
		if err != nil {
			return nil, err
		}
		if err := writeFile0600(srvKeyPath, keyPEM); err != nil {
			return nil, err
		}
		if err := writeFile0600(srvPath, certPEM); err != nil {
			return nil, err
		}
	}
	if p.Server, err = tls.LoadX509KeyPair(srvPath, srvKeyPath); err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	return p, nil
}

// InstallPKI stores what a joined relay received from the management host.
func InstallPKI(dir string, caPEM, certPEM, keyPEM []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"ca.pem": caPEM, "server.pem": certPEM, "server-key.pem": keyPEM} {
		if err := writeFile0600(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return nil
}

func createCA(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Outpost CA " + host, Organization: []string{"Outpost"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFile0600(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})); err != nil {
		return err
	}
	return writeFile0600(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// Issue signs a server certificate for hosts (names and IPs; loopback and
// this host's name are always included). It returns PEM (leaf then CA) and
// the key PEM.
func (p *PKI) Issue(hosts []string) (certPEM, keyPEM []byte, err error) {
	name, _ := os.Hostname()
	return p.issue(append([]string{"localhost", "127.0.0.1", "::1", name}, hosts...), nil)
}

// IssueRelay signs a joined relay's certificate for exactly hosts (the
// caller decides which names the relay may carry); nothing is added.
func (p *PKI) IssueRelay(hosts []string) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("no name to issue a relay certificate for")
	}
	return p.issue(hosts, nil)
}

// issue signs a certificate for hosts with key, a new key when nil.
func (p *PKI) issue(hosts []string, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	if p.caKey == nil {
		return nil, nil, errors.New("no CA key: cannot issue certificates")
	}
	if key == nil {
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, nil, err
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "outpost relay", Organization: []string{"Outpost"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), p.CAPEM...)
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// writeFile0600 replaces a file only the relay's user may read (keys,
// credentials), atomically and durably.
func writeFile0600(path string, b []byte) error { return wire.WriteFileAtomic(path, b, 0o600) }

// ServerKeyPin is the pin of the server certificate's public key
// (wire.KeyPin), "" before one is loaded.
func (p *PKI) ServerKeyPin() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.Server.Leaf == nil {
		return ""
	}
	return wire.KeyPin(p.Server.Leaf.RawSubjectPublicKeyInfo)
}
