package store_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"outpost/relay/wire"
	"outpost/store"
)

func newKey(t *testing.T) (string, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(pub), priv
}

func link(by ed25519.PrivateKey, key string) wire.ReleaseKeyLink {
	return wire.ReleaseKeyLink{Key: key, Signature: hex.EncodeToString(ed25519.Sign(by, store.KeyLinkMessage(key)))}
}

// TestVerifyKeyChain: from the key it trusts, a relay or agent reaches
// the keys signed by it, one link after another, and no key past a link
// that does not verify.
func TestVerifyKeyChain(t *testing.T) {
	k1, p1 := newKey(t)
	k2, p2 := newKey(t)
	k3, _ := newKey(t)
	kx, px := newKey(t)
	good := []wire.ReleaseKeyLink{{Key: k1}, link(p1, k2), link(p2, k3)}
	tests := []struct {
		name    string
		trusted string
		chain   []wire.ReleaseKeyLink
		want    []string
		wantErr string
	}{
		{"from the root", k1, good, []string{k1, k2, k3}, ""},
		{"from the middle", k2, good, []string{k2, k3}, ""},
		{"newest already", k3, good, []string{k3}, ""},
		{"upper-case hex", strings.ToUpper(k1), good, []string{k1, k2, k3}, ""},
		{"no chain", k1, nil, []string{k1}, ""},
		{"trusted not in the chain", kx, good, []string{kx}, "is not in the chain"},
		{"a forged link stops the walk", k1, []wire.ReleaseKeyLink{{Key: k1}, link(px, k2), link(p2, k3)}, []string{k1}, "link 1"},
		{"a link signing something else", k1, []wire.ReleaseKeyLink{{Key: k1}, {Key: k2, Signature: hex.EncodeToString(ed25519.Sign(p1, store.ReleaseMessage(k2, "")))}},
			[]string{k1}, "link 1"},
		{"bad hex signature", k1, []wire.ReleaseKeyLink{{Key: k1}, {Key: k2, Signature: "zz"}}, []string{k1}, "link 1"},
		{"later break keeps earlier keys", k1, []wire.ReleaseKeyLink{{Key: k1}, link(p1, k2), link(px, k3)}, []string{k1, k2}, "link 2"},
		{"a link that is no key", k1, []wire.ReleaseKeyLink{{Key: k1}, link(p1, "abcd")}, []string{k1}, "link 1"},
		{"no trusted key", "", good, nil, "trusted release key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.VerifyKeyChain(tt.trusted, tt.chain)
			if !slices.Equal(got, tt.want) {
				t.Errorf("keys: got %d %v, want %d", len(got), got, len(tt.want))
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

// TestRotateReleaseKey: the new key is appended, signed by the old one
// (so a relay that trusts the root reaches it); only the newest private
// key can rotate or sign new releases; releases signed before stay valid
// for VerifyReleaseAny; refusals write nothing.
func TestRotateReleaseKey(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	if err := os.WriteFile(pkg, []byte("package"), 0o600); err != nil {
		t.Fatal(err)
	}
	k1file, k2file, k3file := filepath.Join(dir, "k1"), filepath.Join(dir, "k2"), filepath.Join(dir, "k3")
	refuse := func(name, old, out, code, want string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			before := f.dump()
			_, err := f.db.RotateReleaseKey(f.ctx, old, out)
			if wantCode(t, err, code) && !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want %q", err, want)
			}
			f.unchanged(before)
			if out != "" && out != k1file && out != k2file {
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Errorf("%s: got %v, want no file written", out, err)
				}
			}
		})
	}
	// A key file from another store, to rotate with before keygen.
	other := newFixture(t)
	otherFile := filepath.Join(dir, "other")
	if _, err := other.db.CreateReleaseKey(other.ctx, otherFile); err != nil {
		t.Fatal(err)
	}
	refuse("nothing to rotate", otherFile, k2file, store.EConflict, "no release signing key is set")
	k1, err := f.db.CreateReleaseKey(f.ctx, k1file)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := f.db.PublishSignedRelease(f.ctx, store.Release{Version: "1.0.0"}, pkg, k1file)
	if err != nil {
		t.Fatal(err)
	}
	refuse("not the release key", otherFile, k2file, store.EInvalid, "is not the release key")
	refuse("no --out", k1file, "", store.EInvalid, "--out")
	refuse("out exists", k1file, k1file, store.EConflict, "already exists")
	refuse("old key file missing", filepath.Join(dir, "missing"), k2file, store.EInvalid, "signing key")

	k2, err := f.db.RotateReleaseKey(f.ctx, k1file, k2file)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(k2file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new key file: %v %v, want mode 0600", st, err)
	}
	if got, _ := f.db.ReleaseKey(f.ctx); got != k2 {
		t.Errorf("ReleaseKey after rotation: got %s, want the new %s", got, k2)
	}
	if es := f.audits(); es[0].Action != "release.key.rotate" || !strings.Contains(es[0].Detail, "public="+k2) || !strings.Contains(es[0].Detail, "previous="+k1) {
		t.Errorf("audit: got %+v, want release.key.rotate naming both keys", es[0])
	}
	refuse("a rotated-out key cannot rotate", k1file, k3file, store.EInvalid, "rotated out")
	t.Run("a rotated-out key cannot sign", func(t *testing.T) {
		before := f.dump()
		_, err := f.db.PublishSignedRelease(f.ctx, store.Release{Version: "1.1.0"}, pkg, k1file)
		if wantCode(t, err, store.EInvalid) && !strings.Contains(err.Error(), "rotated out") {
			t.Errorf("got %v, want it named as rotated out", err)
		}
		f.unchanged(before)
	})
	r2, err := f.db.PublishSignedRelease(f.ctx, store.Release{Version: "1.1.0"}, pkg, k2file)
	if err != nil {
		t.Fatal(err)
	}
	k3, err := f.db.RotateReleaseKey(f.ctx, k2file, k3file)
	if err != nil {
		t.Fatal(err)
	}

	chain, err := f.db.ReleaseKeyChain(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := store.VerifyKeyChain(k1, chain)
	if err != nil || !slices.Equal(keys, []string{k1, k2, k3}) {
		t.Fatalf("VerifyKeyChain from the root: got %v, %v, want [k1 k2 k3]", keys, err)
	}
	for _, r := range []store.Release{r1, r2} {
		if err := store.VerifyReleaseAny(keys, r.Version, r.SHA256, r.Signature); err != nil {
			t.Errorf("release %s: %v, want it verified by a key of the chain", r.Version, err)
		}
	}
	if err := store.VerifyReleaseAny(keys[2:], r1.Version, r1.SHA256, r1.Signature); err == nil {
		t.Errorf("release 1.0.0 with only the newest key: got nil, want refused (k1 signed it)")
	}
	if err := store.VerifyReleaseAny(keys, r1.Version, strings.Repeat("0", 64), r1.Signature); err == nil || !strings.Contains(err.Error(), "any of the 3") {
		t.Errorf("another package: got %v, want refused against any of the 3 keys", err)
	}
	if err := store.VerifyReleaseAny(nil, r1.Version, r1.SHA256, r1.Signature); err == nil {
		t.Errorf("no keys: got nil, want refused")
	}
}
