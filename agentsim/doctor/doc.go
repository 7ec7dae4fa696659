// Package doctor holds the checks of `outpost doctor`: the troubleshooting
// steps of seed 002 chapter 4 ("Troubleshoot the problem of Security Center
// agent going offline": name resolution, firewall, high CPU or memory) and
// the proxy-host prerequisites of seed 000 (ports 80/443/8080, 60 % of the
// link, the 10 GB cache directory), plus what Outpost adds on top (the
// pinned CA, the relay's health, clock skew, duplicated identities, install
// keys).
//
// It lives next to the agent client because most checks are the agent's
// own view of the network (it dials, pins and checks in as the agent
// does), and the doctor must run on an agent host that has no management
// store. So, like agentsim, it imports only relay/wire, agentsim and
// agentsim/hostfacts (this machine's load and fingerprint): the
// management-host checks (install-key, the fleet's duplicate identities,
// link-limits) read plain data (Agent, InstallCommand, Cluster) that the
// caller computes from the store; cmd/outpost does that on a host whose
// data directory holds one. The cluster warnings themselves (kind, need,
// limit, fix) come from store.Warnings through the Warning interface, so
// the doctor does not re-derive them.
//
// Every check is a method of Doctor that returns one Check with a Verdict
// (ok, warn, fail, skip: a named type, the JSON strings unchanged) and,
// when the verdict is not ok, a one-line fix. Everything the checks
// touch (resolver, dialer, local clock, load, free disk space, the store's
// data) is a field, so tests run them against fakes and real loopback
// listeners.
//
// Files: doctor.go (types, dependencies, Summarize), run.go (Run: the order
// and the skips), network.go (dns, port, tls-pin, health, clock),
// identity.go (identity), host.go (load, upstream, cache-space),
// management.go (install-key, link-limits).
package doctor
