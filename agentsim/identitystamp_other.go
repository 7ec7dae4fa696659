//go:build !unix

package agentsim

import "os"

// dirInode: no inode here; the path alone cannot tell a copy, so the
// management host's check of overlapping live connections is what finds it.
func dirInode(path string) (dev, ino uint64, err error) {
	_, err = os.Stat(path)
	return 0, 0, err
}
