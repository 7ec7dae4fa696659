package wire

import (
	"crypto/sha256"
	"encoding/base64"
)

// KeyPin is the curl --pinnedpubkey value of a certificate's public key
// (its DER SubjectPublicKeyInfo): "sha256//" and the base64 SHA-256. The
// one-line installers pin the management host's server key with it.
func KeyPin(spki []byte) string {
	h := sha256.Sum256(spki)
	return "sha256//" + base64.StdEncoding.EncodeToString(h[:])
}
