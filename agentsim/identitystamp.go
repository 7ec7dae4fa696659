// This file tells an agent directory from its copies. A copy made with cp,
// rsync or an image keeps the machine id (on the same machine) and every
// byte of identity.json, but not the directory's device and inode: the
// identity records where it was written, and an agent whose directory is
// not that one presents another fingerprint, which the management host
// flags as a duplicate identity.

package agentsim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
)

// DirStamp is where an identity directory lives.
type DirStamp struct {
	Path     string // absolute
	Dev, Ino uint64 // 0 where the platform does not say
}

// StampDir reads dir's absolute path, device and inode.
func StampDir(dir string) (DirStamp, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return DirStamp{}, err
	}
	dev, ino, err := dirInode(abs)
	if err != nil {
		return DirStamp{}, fmt.Errorf("agentsim: identity directory: %w", err)
	}
	return DirStamp{Path: abs, Dev: dev, Ino: ino}, nil
}

// IdentityFingerprint is the fingerprint of an agent kept at st on the
// machine machineFP (the Fingerprint of hostfacts.HostFS.Host): two copies
// of one agent directory, on one machine or on two, never share it.
func IdentityFingerprint(machineFP string, st DirStamp) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "outpost-agent-v2\x00%s\x00%s\x00%d\x00%d", machineFP, st.Path, st.Dev, st.Ino))
	return hex.EncodeToString(sum[:])
}

// Location implements the optional interface Agent uses to find where an
// identity lives.
func (d *DiskIdentity) Location() string { return d.Dir }

// locatedStore is an IdentityStore kept in a directory (DiskIdentity).
type locatedStore interface{ Location() string }

// stamped says whether id records where it was written.
func (id Identity) stamped() bool { return id.DirIno != 0 || id.DirDev != 0 }

func (id *Identity) setStamp(machineFP string, st DirStamp) {
	id.Machine, id.DirPath, id.DirDev, id.DirIno = machineFP, st.Path, st.Dev, st.Ino
}

// Placement is what CheckinFingerprint found.
type Placement int

const (
	PlacedHere  Placement = iota // the directory the identity was written in
	PlacedMoved                  // same device and inode under another path: moved (mv), still the agent
	PlacedCopy                   // another directory or machine: a copy
	PlacedOld                    // the identity records no location (enrolled before it was recorded)
)

// CheckinFingerprint is the fingerprint an agent with identity id, kept
// in dir on machine machineFP, presents: the one it enrolled with while
// the directory is the one it enrolled in (or was moved within its file
// system: mv keeps the inode), else that of where this copy lives, which
// the management host does not know.
func CheckinFingerprint(id Identity, dir, machineFP string) (string, Placement) {
	enrolled := id.Fingerprint
	if enrolled == "" {
		enrolled = machineFP // enrolled before the identity kept it: the machine's
	}
	if !id.stamped() {
		return enrolled, PlacedOld
	}
	st, err := StampDir(dir)
	if err != nil || st.Ino == 0 {
		return enrolled, PlacedOld // the platform cannot tell: trust the file
	}
	switch {
	case st.Dev != id.DirDev || st.Ino != id.DirIno || (id.Machine != "" && id.Machine != machineFP):
		return IdentityFingerprint(machineFP, st), PlacedCopy
	case st.Path != id.DirPath:
		return enrolled, PlacedMoved
	}
	return enrolled, PlacedHere
}
