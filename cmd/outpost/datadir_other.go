//go:build !unix

package main

// writable is false where the system data directory is not a convention;
// the data then lives under the home directory.
func writable(string) bool { return false }
