package agentsim

import "outpost/agentsim/hostfacts"

// HostFS is hostfacts.HostFS under its former name, which the doctor
// still uses.
type HostFS = hostfacts.HostFS
