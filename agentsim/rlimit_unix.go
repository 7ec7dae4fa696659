//go:build unix

package agentsim

import "syscall"

// RaiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit; a fleet of
// agents needs two sockets each.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return uint64(l.Cur), nil // int64 on some BSDs
}
