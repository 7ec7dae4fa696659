package wire

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
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
