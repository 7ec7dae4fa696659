// Package ops holds what the command line and the dashboard both do for
// the operator, so the two never drift apart:
//   - the one-time join command of a manual proxy deployment and the agent
//     install command, with the values they carry (the management host's
//     URL, the CA pin, the URLs agents dial): a command shown in the
//     dashboard is the one the CLI prints (ops.go);
//   - the one-line installers for bare Linux hosts (install.go): curl with
//     the management host's server key pinned (ServerKeyPin, from
//     DATA/tls/server.pem, whose key the relay keeps across re-issues),
//     piped to the served install script with the same flags as the plain
//     commands; "" over plain http or before the key exists, never an
//     unpinned line (InstallLineMissing says why);
//   - paced binding of many hosts to a cluster, batches of at most 500 and
//     the cluster's bind gap between them, driven by a blocking loop in the
//     CLI and by timer messages in the dashboard (bind.go);
//   - paced agent upgrades, batched and gapped like binds, every batch to
//     the release the first one resolved (agentupgrade.go); both runs'
//     blocking loop is runPaced (pace.go);
//   - the rolling upgrade of a cluster's proxy servers, one at a time, each
//     online at the new version (its command done) before the next is
//     queued, stopping at the first failure or rollback and bounded per
//     proxy (rolling.go). Both step without sleeping, as the bind pacer.
//
// It sits on top of store (and relay/wire, for the pin format) and imports
// nothing else of the project.
package ops
