package store

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"outpost/relay/wire"
)

// ReleaseDir is where release packages live: DATA/releases/VERSION beside
// the database, served by every relay at /v1/update/package/VERSION.
func (db *DB) ReleaseDir() string { return filepath.Join(filepath.Dir(db.Path), "releases") }

// AddRelease records a release whose package is already in ReleaseDir
// under its version, with that package's SHA-256 (64 hex digits). The
// version must be a semantic version; a leading "v" is dropped. Most
// callers want PublishRelease, which puts the package there.
func (db *DB) AddRelease(ctx context.Context, r Release) error {
	v, err := ParseVersion(r.Version)
	if err != nil {
		return err
	}
	r.Version = v.String()
	if !sha256RE.MatchString(r.SHA256) {
		return Errorf(EInvalid, "release %s needs the SHA-256 of its package (64 hex digits): publish it with 'outpost release add VERSION --file PATH'", r.Version)
	}
	r.SHA256 = strings.ToLower(r.SHA256)
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := addRelease(tx, r); err != nil {
		return err
	}
	return tx.Commit()
}

var sha256RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func addRelease(tx *Tx, r Release) error {
	if r.PublishedAt.IsZero() {
		r.PublishedAt = tx.now
	}
	if _, err := tx.exec(`INSERT INTO releases (version, sha256, signature, notes, published_at) VALUES (?, ?, ?, ?, ?)`,
		r.Version, r.SHA256, r.Signature, r.Notes, ms(r.PublishedAt)); err != nil {
		return sqlErr(err, "release "+r.Version+" already exists")
	}
	if r.Signature != "" {
		return tx.audit("release.add", "release/"+r.Version, "sha256=%s signed", r.SHA256)
	}
	return tx.audit("release.add", "release/"+r.Version, "sha256=%s", r.SHA256)
}

// PublishRelease publishes a release with its package: the file at pkg is
// copied to ReleaseDir()/VERSION and its SHA-256 recorded. The version is
// normalised as in AddRelease (r.Version of the result). On any refusal
// or error neither the row nor the file is left behind.
func (db *DB) PublishRelease(ctx context.Context, r Release, pkg string) (Release, error) {
	return db.publishRelease(ctx, r, pkg, nil)
}

// publishRelease is PublishRelease; with a signing key (see
// PublishSignedRelease) it checks the key against the stored public key in
// the same transaction and signs the version and the SHA-256 it computed.
func (db *DB) publishRelease(ctx context.Context, r Release, pkg string, priv ed25519.PrivateKey) (Release, error) {
	v, err := ParseVersion(r.Version)
	if err != nil {
		return r, err
	}
	r.Version = v.String()
	src, err := openPackage(r.Version, pkg)
	if err != nil {
		return r, err
	}
	defer src.Close()
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return r, err
	}
	defer tx.Rollback()
	if priv != nil {
		if err := checkSigningKey(tx, priv); err != nil {
			return r, err
		}
	}
	if err := checkNewRelease(tx, r.Version); err != nil {
		return r, err
	}
	dir := db.ReleaseDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return r, err
	}
	dst := filepath.Join(dir, r.Version)
	if dt, err := os.Lstat(dst); err == nil {
		return recordInPlace(tx, r, src, dt, dst, priv)
	}
	tmp, sum, err := copyPackage(dir, r.Version, src)
	if err != nil {
		return r, err
	}
	defer os.Remove(tmp) // gone after the rename; the leftover on failure
	r.SHA256 = sum
	r.Signature = signRelease(priv, r.Version, r.SHA256)
	if err := addRelease(tx, r); err != nil {
		return r, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return r, err
	}
	if err := tx.Commit(); err != nil {
		os.Remove(dst)
		return r, err
	}
	if r.PublishedAt.IsZero() {
		r.PublishedAt = tx.now
	}
	return r, nil
}

// openPackage opens a release's package file, which must be a regular file.
func openPackage(version, pkg string) (*os.File, error) {
	src, err := os.Open(pkg)
	if err != nil {
		return nil, Errorf(EInvalid, "release %s: package: %v", version, err)
	}
	if st, err := src.Stat(); err != nil || !st.Mode().IsRegular() {
		src.Close()
		return nil, Errorf(EInvalid, "release %s: package %s is not a regular file", version, pkg)
	}
	return src, nil
}

// checkNewRelease refuses a version that is already published.
func checkNewRelease(tx *Tx, version string) error {
	var n int
	if err := tx.queryRow(`SELECT COUNT(*) FROM releases WHERE version = ?`, version).Scan(&n); err != nil {
		return err
	} else if n > 0 {
		return Errorf(EConflict, "release %s already exists", version)
	}
	return nil
}

// recordInPlace publishes a release whose destination dst (dt its Lstat)
// exists already: only when it is the package itself, put there by hand.
func recordInPlace(tx *Tx, r Release, src *os.File, dt os.FileInfo, dst string, priv ed25519.PrivateKey) (Release, error) {
	st, _ := src.Stat()
	if !os.SameFile(st, dt) {
		return r, Errorf(EConflict, "release %s: %s already exists but no release names it: move it away first", r.Version, dst)
	}
	// The package is already in place (put there by hand): record it.
	h := sha256.New()
	if _, err := io.Copy(h, src); err != nil {
		return r, fmt.Errorf("release %s: read the package: %w", r.Version, err)
	}
	r.SHA256 = hex.EncodeToString(h.Sum(nil))
	r.Signature = signRelease(priv, r.Version, r.SHA256)
	if err := addRelease(tx, r); err != nil {
		return r, err
	}
	if r.PublishedAt.IsZero() {
		r.PublishedAt = tx.now
	}
	return r, tx.Commit()
}

// copyPackage copies src to a synced temporary file in dir and returns its
// name and the SHA-256 of what it copied; on failure no file is left.
func copyPackage(dir, version string, src io.Reader) (string, string, error) {
	tmp, err := os.CreateTemp(dir, "."+version+".*")
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), src); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", "", fmt.Errorf("release %s: copy the package: %w", version, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", "", err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", "", err
	}
	return tmp.Name(), hex.EncodeToString(h.Sum(nil)), nil
}

// DeleteRelease removes a release and its package. A release that a
// proxy server or an agent is upgrading to (an upgrade command naming it
// is queued, delivered or running) is refused.
func (db *DB) DeleteRelease(ctx context.Context, version string) error {
	name := version
	if v, err := ParseVersion(version); err == nil {
		name = v.String()
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.queryRow(`SELECT COUNT(*) FROM releases WHERE version = ?`, name).Scan(&n); err != nil {
		return err
	} else if n == 0 {
		return Errorf(ENotFound, "release %s not found", version)
	}
	cmds, err := scanCommands(tx.query(`SELECT `+commandCols+` FROM commands
		WHERE type = 'upgrade' AND acked_at = 0 AND json_extract(payload, '$.version') = ? ORDER BY id`, name))
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if c = derive(c, tx.now); c.State != wire.StateFailed {
			who := "proxy server " + c.TargetID
			if c.TargetKind == TargetAgent {
				who = "agent " + c.TargetID
			}
			return Errorf(EConflict, "release %s: %s is upgrading to it (command %d, %s): wait until that upgrade ends",
				name, who, c.ID, c.Describe())
		}
	}
	if _, err := tx.exec(`DELETE FROM releases WHERE version = ?`, name); err != nil {
		return err
	}
	if err := tx.audit("release.delete", "release/"+name, ""); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	path := filepath.Join(db.ReleaseDir(), name)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release %s deleted, but its package stays: %w", name, err)
	}
	return nil
}

// ListReleases returns the published releases, newest version first.
func (db *DB) ListReleases(ctx context.Context) ([]Release, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(`SELECT version, sha256, signature, notes, published_at FROM releases`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		var r Release
		var at int64
		if err := rows.Scan(&r.Version, &r.SHA256, &r.Signature, &r.Notes, &at); err != nil {
			return nil, err
		}
		r.PublishedAt = fromMS(at)
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return CompareVersions(out[i].Version, out[j].Version) > 0 })
	return out, rows.Err()
}

// LatestRelease returns the newest published version, "" when none.
func (db *DB) LatestRelease(ctx context.Context) (string, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	return latestVersion(tx)
}

func latestVersion(tx *Tx) (string, error) {
	rows, err := tx.query(`SELECT version FROM releases`)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	latest := ""
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return "", err
		}
		if latest == "" || CompareVersions(v, latest) > 0 {
			latest = v
		}
	}
	return latest, rows.Err()
}
