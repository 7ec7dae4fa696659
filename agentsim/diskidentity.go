// The reference agent's identity on disk (DiskIdentity), replaced
// atomically so a crash never leaves half an identity.

package agentsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// IdentityFile is the name of the identity file in the agent directory.
const IdentityFile = "identity.json"

// DiskIdentity is an IdentityStore kept in Dir/identity.json (mode 0600,
// replaced atomically). Copying the directory to another machine copies
// the identity; the management host then sees the same agent id from two
// machine fingerprints and flags a duplicate identity.
type DiskIdentity struct {
	Dir string
}

// OpenDiskIdentity creates dir (0700) if needed and returns its store.
func OpenDiskIdentity(dir string) (*DiskIdentity, error) {
	if dir == "" {
		return nil, errors.New("agentsim: identity: no directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("agentsim: identity: %w", err)
	}
	return &DiskIdentity{Dir: dir}, nil
}

// Path is the identity file.
func (d *DiskIdentity) Path() string { return filepath.Join(d.Dir, IdentityFile) }

// Load implements IdentityStore: (zero, false, nil) when the agent has not
// enrolled yet.
func (d *DiskIdentity) Load() (Identity, bool, error) {
	b, err := os.ReadFile(d.Path())
	if errors.Is(err, os.ErrNotExist) {
		return Identity{}, false, nil
	} else if err != nil {
		return Identity{}, false, fmt.Errorf("agentsim: identity: %w", err)
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil || id.AgentID == "" || id.Secret == "" {
		if err == nil {
			err = errors.New("no agent id or secret")
		}
		return Identity{}, false, fmt.Errorf("agentsim: identity file %s is damaged (%v): delete it to enrol again", d.Path(), err)
	}
	return id, true, nil
}

// Save implements IdentityStore: written to a temporary file, synced, then
// renamed over the old one, so a crash leaves either the old or the new
// identity, never a torn one.
func (d *DiskIdentity) Save(id Identity) error {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return fmt.Errorf("agentsim: identity: %w", err)
	}
	if err := writeFileAtomic(d.Path(), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("agentsim: identity: %w", err)
	}
	return nil
}

// Remove deletes the identity (uninstall); a missing file is not an error.
func (d *DiskIdentity) Remove() error {
	if err := os.Remove(d.Path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("agentsim: identity: %w", err)
	}
	syncDir(d.Dir)
	return nil
}

// writeFileAtomic replaces path with data: temp file in the same
// directory, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename or removal in dir durable (best effort where the
// platform cannot sync directories).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
