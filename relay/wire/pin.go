package wire

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Fingerprint is the hex SHA-256 of a certificate's DER bytes: the value
// install commands carry as --ca-sha256.
func Fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// PinnedTLS returns a client TLS config that trusts exactly the CA whose
// fingerprint is caSHA256 (as kubeadm's discovery-token-ca-cert-hash does):
// the server must present that CA in its chain and a leaf it signed. An
// empty pin falls back to the system roots.
func PinnedTLS(caSHA256 string) *tls.Config {
	pin := strings.ToLower(strings.TrimSpace(caSHA256))
	if pin == "" {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verification is done below, against the pin
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("server presented no certificate")
			}
			var ca *x509.Certificate
			for _, der := range raw {
				if Fingerprint(der) == pin {
					c, err := x509.ParseCertificate(der)
					if err != nil {
						return err
					}
					ca = c
				}
			}
			if ca == nil {
				return fmt.Errorf("server CA does not match the pinned fingerprint %s…", pin[:min(12, len(pin))])
			}
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			if Fingerprint(raw[0]) == pin {
				return nil // the CA itself serves (unusual but valid)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		},
	}
}

// PinTransport sets t to trust exactly the pinned CA (PinnedTLS) and, as
// the system roots would, to check that the certificate names the host
// dialled (DNS name or IP): a certificate the fleet CA issued to one relay
// must not pass for the management host or another relay. tls.Config
// alone cannot do that check, since a client's ConnectionState carries no
// server name for an IP address; the dial does it instead. An empty pin
// leaves the system roots, which check names themselves.
func PinTransport(t *http.Transport, caSHA256 string) *http.Transport {
	t.TLSClientConfig = PinnedTLS(caSHA256)
	pin := strings.ToLower(strings.TrimSpace(caSHA256))
	if pin == "" {
		return t
	}
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	timeout := t.TLSHandshakeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	base, h2 := t.TLSClientConfig, t.ForceAttemptHTTP2
	t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := base.Clone()
		cfg.ServerName = host
		if h2 {
			cfg.NextProtos = []string{"h2", "http/1.1"}
		}
		tc := tls.Client(raw, cfg)
		hctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			raw.Close()
			return nil, err
		}
		if err := VerifyName(tc.ConnectionState(), host, pin); err != nil {
			tc.Close()
			return nil, err
		}
		return tc, nil
	}
	return t
}

// VerifyName checks that the leaf of a pinned connection names host.
func VerifyName(cs tls.ConnectionState, host, pin string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if Fingerprint(leaf.Raw) == strings.ToLower(pin) {
		return nil // the CA itself serves
	}
	if err := leaf.VerifyHostname(strings.Trim(host, "[]")); err != nil {
		return fmt.Errorf("the certificate of %s does not name it (%v): this is not the relay or management host at that address", host, err)
	}
	return nil
}
