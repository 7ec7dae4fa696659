// Package hostfacts reads the real facts of the Linux machine the agent runs
// on (host identity, the inventory or "online data", and current load) so
// that a real agent reports what the operator would see with ps, ss and
// getent, and so that simulated agents can be checked against a genuine
// host. Every path is taken relative to HostFS.Root, which lets tests point
// the reader at a fake root built in a temporary directory instead of the
// live system.
//
// Files: hostfacts.go (HostFS, Host: name, addresses, OS, fingerprint),
// inventory.go (processes, listening ports, accounts), load.go (CPU and
// memory). Like agentsim, it imports nothing of the project but relay/wire.
package hostfacts
