package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"strings"
)

// Release signing: the operator keeps the ed25519 private key in a file
// outside the data directory (it would otherwise travel with every backup
// of it); the store keeps only the public key, which relays get at join and
// with every heartbeat. A release's signature covers ReleaseMessage, its
// version and SHA-256, so a signed package cannot be replayed under another
// version.

// releaseKeyHeader starts a signing key file, so a wrong file is named as
// such instead of failing as "bad hex".
const releaseKeyHeader = "outpost release signing key (ed25519 seed, hex)\n"

// ReleaseMessage is what a release signature signs.
func ReleaseMessage(version, sha256 string) []byte {
	return []byte("outpost-release\x00" + version + "\x00" + strings.ToLower(sha256))
}

// VerifyRelease checks a release signature (hex) against a public key
// (hex). The error says which part is wrong, for the operator.
func VerifyRelease(pubHex, version, sha256, sigHex string) error {
	pub, err := hex.DecodeString(pubHex)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return Errorf(EInvalid, "release public key is not an ed25519 key")
	}
	if sigHex == "" {
		return Errorf(EInvalid, "release %s is not signed", version)
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil || !ed25519.Verify(pub, ReleaseMessage(version, sha256), sig) {
		return Errorf(EInvalid, "release %s: signature does not verify against the release public key", version)
	}
	return nil
}

func signRelease(priv ed25519.PrivateKey, version, sha256 string) string {
	if priv == nil {
		return ""
	}
	return hex.EncodeToString(ed25519.Sign(priv, ReleaseMessage(version, sha256)))
}

// CreateReleaseKey makes the release signing key: the private key is
// written to out (created 0600, never overwritten) and the public key
// stored as the root of the key chain, audited. It is refused when a key
// is already set (RotateReleaseKey replaces it), and then no file is
// written; on any error no file is left behind. It returns the public key
// (hex).
func (db *DB) CreateReleaseKey(ctx context.Context, out string) (string, error) {
	if out == "" {
		return "", Errorf(EInvalid, "the private key needs a file to go to")
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	if pub, err := releaseKey(tx); err != nil {
		return "", err
	} else if pub != "" {
		return "", Errorf(EConflict, "a release signing key is already set (public key %s): releases are signed with its private key file; "+
			"to replace it: outpost release keygen --rotate --key OLD_FILE --out NEW_FILE", pub)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	pubHex := hex.EncodeToString(pub)
	if _, err := tx.exec(`INSERT INTO release_keys (public_key, signature, created_at) VALUES (?, '', ?)`, pubHex, ms(tx.now)); err != nil {
		return "", err
	}
	if err := tx.audit("release.keygen", "release-key", "public=%s", pubHex); err != nil {
		return "", err
	}
	return pubHex, writeKeyFileAndCommit(tx, out, priv)
}

// writeKeyFileAndCommit writes the private key to out (created 0600,
// never overwritten) and commits tx; on any error the file is removed and
// tx rolled back, so the store and the file agree.
func writeKeyFileAndCommit(tx *Tx, out string, priv ed25519.PrivateKey) error {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return Errorf(EConflict, "%s already exists: the signing key is never overwritten; choose another --out", out)
	} else if err != nil {
		return Errorf(EInvalid, "signing key file: %v", err)
	}
	_, err = f.WriteString(releaseKeyHeader + hex.EncodeToString(priv.Seed()) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		os.Remove(out)
	}
	return err
}

// ReleaseKey returns the newest release public key (hex), "" when none is
// set: new releases are signed with it.
func (db *DB) ReleaseKey(ctx context.Context) (string, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	return releaseKey(tx)
}

func releaseKey(tx *Tx) (string, error) {
	var pub string
	err := tx.queryRow(`SELECT public_key FROM release_keys ORDER BY id DESC LIMIT 1`).Scan(&pub)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return pub, err
}

// ReadSigningKey reads a private key file made by CreateReleaseKey.
func ReadSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Errorf(EInvalid, "signing key: %v", err)
	}
	rest, ok := strings.CutPrefix(string(b), releaseKeyHeader)
	seed, err := hex.DecodeString(strings.TrimSpace(rest))
	if !ok || err != nil || len(seed) != ed25519.SeedSize {
		return nil, Errorf(EInvalid, "%s is not a release signing key made by 'outpost release keygen'", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// PublishSignedRelease is PublishRelease with the release signed by the
// private key in keyFile. It is refused, with nothing written, when no
// release key is set or keyFile does not hold its private half.
func (db *DB) PublishSignedRelease(ctx context.Context, r Release, pkg, keyFile string) (Release, error) {
	priv, err := ReadSigningKey(keyFile)
	if err != nil {
		return r, err
	}
	return db.publishRelease(ctx, r, pkg, priv)
}

// checkSigningKey refuses a private key that is not the newest of the
// chain: once a key is rotated out, releases are signed by its successor.
func checkSigningKey(tx *Tx, priv ed25519.PrivateKey) error {
	chain, err := releaseKeyChain(tx)
	if err != nil {
		return err
	}
	if len(chain) == 0 {
		return Errorf(EConflict, "no release signing key is set: make one with 'outpost release keygen --out FILE'")
	}
	pub := chain[len(chain)-1].Key
	got := hex.EncodeToString(priv.Public().(ed25519.PublicKey))
	if got == pub {
		return nil
	}
	for _, l := range chain[:len(chain)-1] {
		if l.Key == got {
			return Errorf(EInvalid, "the signing key was rotated out (its public key %s): sign with the newest release key, public key %s", got, pub)
		}
	}
	return Errorf(EInvalid, "the signing key is not the release key (its public key %s, the store's %s)", got, pub)
}
