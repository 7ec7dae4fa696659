// Package fsx gives the relay's durable files (spool, cache ring, collector,
// identity and certificates) the two file-system steps they need. The one
// implementation is in relay/wire, which the agent can reach as well; these
// names stay so the relay's callers need not change.
package fsx

import (
	"os"

	"outpost/relay/wire"
)

// SyncDir fsyncs a directory (wire.SyncDir).
func SyncDir(dir string) error { return wire.SyncDir(dir) }

// WriteFileAtomic replaces path with b (wire.WriteFileAtomic).
func WriteFileAtomic(path string, b []byte, perm os.FileMode) error {
	return wire.WriteFileAtomic(path, b, perm)
}
