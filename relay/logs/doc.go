// Package logs is the one home of outpost's log handler. Every process
// logs through log/slog; New builds the *slog.Logger from --log-format:
//
//   - "text" (the default): "15:04:05 message key=value ...", the
//     operator's shape on a terminal; the level is written only for WARN
//     and ERROR, so an ordinary line reads like a sentence.
//   - "json": slog's JSON handler, one object a line (time, level, msg and
//     the attributes), for journald and log shippers.
//
// Packages take a *slog.Logger from their caller (nil: OrDiscard) and never
// build handlers; agentsim and store, which may not import relay, take one
// the same way. Attribute keys are shared across the tree: agent, relay,
// cluster, account, addr, err, version; a logger for one relay or agent is
// made once with .With("relay", id).
//
// logstest adapts a logger to testing.TB.Log for tests.
package logs
