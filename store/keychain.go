package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"strings"

	"outpost/relay/wire"
)

// The release key chain: the first key is the one made by keygen, each
// later one is signed by the key before it (KeyLinkMessage), so a relay or
// agent that was given an older key can follow the chain to the newest
// and accept releases signed by any key it reaches. The private key of a
// rotated-out key can still extend the chain only if it is the newest:
// rotation needs the newest private key.

// KeyLinkMessage is what a key link's signature signs: the new public key
// (hex), under its own prefix so that no release signature can pass for a
// link or the other way round.
func KeyLinkMessage(key string) []byte {
	return []byte("outpost-release-key\x00" + strings.ToLower(key))
}

// VerifyKeyChain returns the keys reachable from trusted through valid
// links of chain, trusted first, newest last. keys always starts with
// trusted when trusted is an ed25519 key, even when err is set: err says
// why the walk stopped early (trusted is not in the chain, or a link does
// not verify), and keys then holds those reached before it. A key found
// through a broken link is never returned.
func VerifyKeyChain(trusted string, chain []wire.ReleaseKeyLink) ([]string, error) {
	trusted = strings.ToLower(strings.TrimSpace(trusted))
	if _, err := decodeKey(trusted); err != nil {
		return nil, Errorf(EInvalid, "trusted release key: %s", ErrorMessage(err))
	}
	keys := []string{trusted}
	at := -1
	for i, l := range chain {
		if strings.EqualFold(l.Key, trusted) {
			at = i
		}
	}
	if at < 0 {
		if len(chain) == 0 {
			return keys, nil
		}
		return keys, Errorf(EInvalid, "the trusted release key %s is not in the chain the management host sent", short(trusted))
	}
	prev := trusted
	for i := at + 1; i < len(chain); i++ {
		l := chain[i]
		pub, err := decodeKey(prev)
		if err != nil {
			return keys, err
		}
		sig, err := hex.DecodeString(l.Signature)
		if err != nil || !ed25519.Verify(pub, KeyLinkMessage(l.Key), sig) {
			return keys, Errorf(EInvalid, "release key link %d (%s) is not signed by the key before it (%s)", i, short(l.Key), short(prev))
		}
		if _, err := decodeKey(l.Key); err != nil {
			return keys, Errorf(EInvalid, "release key link %d: %s", i, ErrorMessage(err))
		}
		prev = strings.ToLower(l.Key)
		keys = append(keys, prev)
	}
	return keys, nil
}

// VerifyReleaseAny checks a release signature against each of keys (as
// returned by VerifyKeyChain): a release signed before a rotation stays
// valid. The error names the newest key.
func VerifyReleaseAny(keys []string, version, sha256, sig string) error {
	if len(keys) == 0 {
		return Errorf(EInvalid, "release %s: no release public key is trusted: the signature cannot be checked", version)
	}
	var last error
	for _, k := range keys {
		if last = VerifyRelease(k, version, sha256, sig); last == nil {
			return nil
		}
	}
	if len(keys) == 1 {
		return last
	}
	if sig == "" {
		return Errorf(EInvalid, "release %s is not signed", version)
	}
	return Errorf(EInvalid, "release %s: signature does not verify against any of the %d trusted release keys (newest %s)", version, len(keys), short(keys[len(keys)-1]))
}

func decodeKey(h string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, Errorf(EInvalid, "%q is not an ed25519 public key (64 hex digits)", short(h))
	}
	return b, nil
}

// short abbreviates a hex key for messages.
func short(k string) string {
	if len(k) > 16 {
		return k[:16] + "…"
	}
	return k
}

// ReleaseKeyChain returns the release key chain, oldest first; nil while
// no key is set. Relays hand it to relays and agents with every answer.
func (db *DB) ReleaseKeyChain(ctx context.Context) ([]wire.ReleaseKeyLink, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return releaseKeyChain(tx)
}

func releaseKeyChain(tx *Tx) ([]wire.ReleaseKeyLink, error) {
	rows, err := tx.query(`SELECT public_key, signature FROM release_keys ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wire.ReleaseKeyLink
	for rows.Next() {
		var l wire.ReleaseKeyLink
		if err := rows.Scan(&l.Key, &l.Signature); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// RotateReleaseKey replaces the release signing key: a new key is made,
// its private half written to out (0600, never overwritten), and its
// public half appended to the chain with a signature by the key in
// oldKeyFile, which must be the newest key. From then on releases must be
// signed by the new key; those published before stay valid. Audited as
// release.key.rotate. On any refusal nothing is written. It returns the
// new public key (hex).
func (db *DB) RotateReleaseKey(ctx context.Context, oldKeyFile, out string) (string, error) {
	if out == "" {
		return "", Errorf(EInvalid, "the new private key needs a file to go to (--out)")
	}
	old, err := ReadSigningKey(oldKeyFile)
	if err != nil {
		return "", err
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	chain, err := releaseKeyChain(tx)
	if err != nil {
		return "", err
	}
	if len(chain) == 0 {
		return "", Errorf(EConflict, "no release signing key is set, so there is none to rotate: make one with 'outpost release keygen --out FILE'")
	}
	if err := checkSigningKey(tx, old); err != nil {
		return "", err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	pubHex := hex.EncodeToString(pub)
	sig := hex.EncodeToString(ed25519.Sign(old, KeyLinkMessage(pubHex)))
	if _, err := tx.exec(`INSERT INTO release_keys (public_key, signature, created_at) VALUES (?, ?, ?)`, pubHex, sig, ms(tx.now)); err != nil {
		return "", err
	}
	prev := chain[len(chain)-1].Key
	if err := tx.audit("release.key.rotate", "release-key", "public=%s previous=%s keys=%d", pubHex, prev, len(chain)+1); err != nil {
		return "", err
	}
	return pubHex, writeKeyFileAndCommit(tx, out, priv)
}
