// Package store is Outpost's management store: the domain types, the rules
// of the two reference documents, and their SQLite persistence.
//
// Mechanics (see DESIGN.md "Store mechanics"):
//   - One file, WAL mode, foreign keys on, busy_timeout 5 s. Writes go
//     through a single writer connection whose transactions are BEGIN
//     IMMEDIATE (modernc.org/sqlite's _txlock=immediate), so a transaction
//     that reads then writes never fails with SQLITE_BUSY half-way; reads use
//     a separate query_only pool. The file is created 0600.
//   - Schema changes are embedded, ordered migration/*.sql files, each run
//     once in its own transaction (foreign keys off, checked before commit)
//     and recorded in the migrations table.
//   - Every exported method is BeginTx -> defer Rollback -> helpers taking
//     *Tx -> Commit, so a refusal leaves no half-written row. Operator
//     changes write their audit entry inside the same transaction.
//   - Tx keeps the context it was begun with, where WTF Dial passes ctx to
//     every helper. A Tx never outlives the exported method that began it,
//     and database/sql already ties the transaction to that ctx (cancelling
//     it rolls back), so a stored ctx adds no lifetime; it saves threading
//     the same value through some hundred helper calls, and a helper cannot
//     query with another context than its transaction's. audit reads the
//     actor from it.
//   - Times are Unix milliseconds; "now" comes from the injectable Clock and
//     is fixed per transaction.
//   - Secrets (verification keys, install keys, agent and relay secrets,
//     join tokens) are random, shown once, and stored only as SHA-256.
//   - Agent listings never load the fleet: ListAgents filters, sorts and
//     pages in SQL over covering indexes (0002), and substring search uses
//     a trigram FTS5 index (0003) kept in sync by triggers that fire only
//     when a host name or IP list really changes, so check-ins never touch
//     it. Check-ins are written in batches (RecordCheckins, Batcher; a
//     batch that fails is logged to the *slog.Logger NewBatcher takes).
//   - Errors carry a code (ENotFound, EConflict, EInvalid, EForbidden,
//     ELimit, EUnauthorized); the CLI maps them to exit 1 with the message,
//     the relay to HTTP statuses.
//   - Closed sets of words are named string types with their constants
//     beside them, so the compiler refuses a word of another set: Status
//     (online, offline, uninstalled; ParseStatus reads the --status
//     filter), Security (Protected, Unprotected), Risk (Safe, At risk),
//     AddressKind (ip, domain; ClassifyAddress), DeployKind (quick,
//     manual), TargetKind (agent, proxy) and InstallState (active,
//     expired, revoked; InstallCommand.State, which the CLI, the dashboard
//     and DiagnoseAgent share) here; the words the relays
//     speak too are wire's: wire.Mode for Policy.Mode, wire.OS for the
//     agents' and install commands' OS, wire.CommandType,
//     wire.State and wire.Stage for Command.Type, State and Stage (store
//     names none of them again). JSON carries them as the plain
//     strings, and database/sql scans a TEXT column into them (by their
//     string kind) and writes them as strings, so neither encoding changed.
//     Display texts that add words (Command.Describe, Agent.UninstallState,
//     Proxy.SecurityText) stay plain strings.
//
// Rules and where they live: cluster name/address immutability (a trigger
// in the schema plus the absence of any API that changes them), one proxy per
// IP-address cluster (CreateJoinToken and JoinProxy), deletion order
// (DeleteCluster, DeleteProxy), bind batches (Bind: 500 hosts, one batch per
// BindBatchGap per cluster; Enrol: install-command enrolments into a cluster
// are admitted at most 500 per gap), install keys (Enrol), policy limits and
// warnings (NormalizePolicy; Warnings: each Warning has a kind, need and
// limit, its sentence (Text) and its fix (Fix), so the CLI, the dashboard
// and the doctor show them without re-deriving the rules), upgrade
// (UpgradeProxy: older than the latest release, none under way), duplicate
// identity (RecordCheckins), uninstall only when online (Uninstall). The
// six timing settings are one list, SettingFields (key, meaning, field):
// Validate, loading, saving, the audit detail, the CLI and the dashboard
// all read it.
//
// Choices the documents leave open:
//   - Binding an agent that is bound to another cluster moves it.
//   - A duplicate-identity flag is sticky until the clone re-enrols.
//   - Statuses (deriveAgentStatus; uninstalledSQL and liveSQL are the
//     same rules in SQL for counts and filters, and must stay in step):
//     online = last check-in younger than OfflineAfter (the seed's 12 h)
//     and not uninstalled. Connected now = last check-in younger than
//     Settings.ConnectedWindow (PollTimeout + 15 s): an agent holds a
//     long-poll check-in up to PollTimeout and checks in again at once,
//     so a live connection is never older. Via = the proxy of the last
//     check-in (its host name), or "direct". Uninstalled = the latest
//     uninstall command is done (acknowledged), or UninstallGrace has
//     passed since the request with no check-in since (one still
//     checking in runs, so it is not; a failed uninstall may be sent
//     again). Protected = online (hence not uninstalled). A proxy server
//     is Protected while its quick-deploy asset agent is. A cluster with
//     bound agents and no proxy online warns "proxy down" instead of the
//     capacity warning.
//   - Ids are AUTOINCREMENT (0004, 0005): a deleted object's id is never
//     handed out again, so audit lines and printed hints stay true. Audit
//     targets name the account (cluster/ACCOUNT/NAME, proxy/ACCOUNT/ID,
//     installcmd/ACCOUNT/ID). Migrations run with foreign keys off, as
//     SQLite's table rebuild needs, and must pass foreign_key_check.
//   - Enrolments are not audited (they are agent actions, not operator
//     changes); the agent row records when and with which install command.
//   - A clone's check-ins (fingerprint differs) only raise the duplicate
//     flag; they never overwrite the original's connection, load, host
//     facts or inventory. The relay also raises it with FlagDuplicate for
//     copies it finds itself (another fingerprint, or two live connections
//     with the same one), audited once as agent.duplicate by "system".
//   - A quick deployment's join token is not stored at all until its
//     deploy-proxy command is delivered: IssueJoinToken then makes the
//     secret and keeps only its hash, so no plain token sits in a command.
//   - Deleting a cluster deletes its install commands and join tokens.
//   - Commands (command.go, commandreport.go, commandexpire.go; 0005) carry
//     a state: queued -> delivered
//     (DeliverCommands, one more attempt each time) -> running -> done or
//     failed with a reason (ReportCommands; AckCommands is "done"). Done
//     and failed are final and set acked_at, so "open" stays acked_at = 0.
//     Bounds: a failure the target reports ends the command at once (no
//     retry, the operator decides); a target asking again after
//     MaxDeliveries deliveries without answering fails it; delivered or
//     running with no news for CommandAnswerTimeout fails it, both in the
//     sweep the management host runs (ExpireCommands) and as derived at
//     read time (derive), so listings are true between sweeps. Failures are
//     audited (command.failed; the target is the actor, "system" for
//     bounds). Proxy listings carry the latest command of each type and the
//     last error; ListDeployments joins quick-deploy join tokens with their
//     deploy-proxy command.
//   - Upgrades (0008): a running upgrade reports its Stage (downloading,
//     verifying, restarting; a report without one keeps the last), shown
//     by Describe in place of "running"; an upgrade whose new version did
//     not come up healthy ends rolled_back, final like failed, its reason
//     (up to 1,000 characters: the new version's last log lines) audited
//     as command.rolled_back. A stuck stage times out like any running
//     command, its reason naming the stage. Ending a command clears Stage.
//   - Releases (release.go, PublishRelease) need their package: it is copied to
//     ReleaseDir (DATA/releases/VERSION beside the database) and its
//     SHA-256 recorded in the same call, so a release row never names a
//     missing package. Versions are semantic versions (ParseVersion; a
//     leading "v" is dropped, build metadata refused) compared by semver
//     precedence (CompareVersions, lenient for what relays report, such as
//     "dev"). DeleteRelease refuses a release an open upgrade names.
//   - Signed releases (releasekey.go, keychain.go): CreateReleaseKey writes
//     the ed25519 private key to the operator's file (0600, never
//     overwritten) and stores only the public key, the root of the key
//     chain (release_keys, 0008; 0007's single row became its root).
//     RotateReleaseKey appends a new key signed by the newest one
//     (KeyLinkMessage), so relays and agents that trust an older key follow
//     the chain (VerifyKeyChain) and accept releases signed by any key they
//     reach (VerifyReleaseAny); only the newest private key signs new
//     releases or rotates again. ReleaseKey is the newest key;
//     ReleaseKeyChain the whole chain, handed out with every heartbeat,
//     enrolment and check-in answer. PublishSignedRelease checks the key
//     file in the same transaction and signs ReleaseMessage (version and
//     SHA-256, so a signature cannot be replayed under another version).
//     ForceUpgradeProxy skips the "newer" check and says force in the
//     command (audit proxy.upgrade.force).
//   - Agent upgrades (agentupgrade.go): UpgradeAgents queues "upgrade"
//     commands with wire.UpgradeArgs for one batch (at most BindBatchMax;
//     ops.PacedUpgrade paces a fleet). It resolves the release once (the
//     latest unless named) and refuses, with the reason, an uninstalled or
//     uninstalling agent, one at or newer than the release (unless Force,
//     audited agent.upgrade.force) and one with an upgrade under way; with
//     Skip those are returned instead. Offline agents are queued. GetAgent,
//     FindAgent and DiagnoseAgent set Agent.Upgrade (the latest upgrade
//     command, derived); listings do not pay for it. Proxy.UpgradeState is
//     the same text for proxies. DeleteRelease refuses a release any open
//     upgrade names, agent or proxy.
package store
