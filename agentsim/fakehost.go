package agentsim

import (
	"outpost/agentsim/fleet"
	"outpost/relay/wire"
)

// FakeHost is fleet.Host: the identity and first inventory of simulated
// agent i, kept here for the tests that build agents by hand (relay, cmd).
func FakeHost(seed int64, i int, version string) (wire.Host, wire.Inventory) {
	return fleet.Host(seed, i, version)
}

// FakeHostOS is fleet.HostOS: FakeHost with the OS forced to os.
func FakeHostOS(seed int64, i int, version string, os wire.OS) (wire.Host, wire.Inventory) {
	return fleet.HostOS(seed, i, version, os)
}
