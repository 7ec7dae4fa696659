// Package ops holds what the command line and the dashboard both do for
// the operator, so the two never drift apart:
//   - the one-time join command of a manual proxy deployment and the agent
//     install command, with the values they carry (the management host's
//     URL, the CA pin, the URLs agents dial): a command shown in the
//     dashboard is the one the CLI prints (ops.go);
//   - paced binding of many hosts to a cluster, batches of at most 500 and
//     the cluster's bind gap between them, driven by a blocking loop in the
//     CLI and by timer messages in the dashboard (bind.go).
//
// It sits on top of store and imports nothing else of the project.
package ops
