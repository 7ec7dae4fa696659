//go:build !unix

package agentsim

import "errors"

// RaiseFileLimit has nothing to raise where there is no RLIMIT_NOFILE.
func RaiseFileLimit() (uint64, error) {
	return 0, errors.New("no RLIMIT_NOFILE on this platform")
}
