// Package relay is Outpost's relay: the agent-facing and relay-facing HTTP
// protocol (shapes in relay/wire), the data path, and the long-poll command
// hub. New returns a Server whose Handler is the same on every listener
// (TLS and plain); Serve runs it on a listener; Close shuts down gracefully.
//
// Layout: Server (server.go) holds what both roles share (Config, PKI,
// the mux and its guard, the agent credential cache, the data path of
// sink.go, metrics, listeners and shutdown) and exactly one role: mgmt, a
// *management (management.go), or joined, a *joinedRole (joined.go). The
// role interface in server.go is the one place the two part: the policy
// at start, the routes, the background loop, what Close releases and
// closes, how an agent's credentials are checked, the certificate names
// and the /healthz fields. A role's methods sit beside their endpoints:
// the management host's in agentapi.go (enrolment, check-ins, releases),
// relayapi.go (join, heartbeat, relay auth), hub.go, settings.go,
// commands.go, clones.go, dist.go, certnames.go, ingestauth.go,
// statsauth.go and releasekeys.go; the joined relay's in identity.go
// (relay.json, join), heartbeat.go, upgrade.go, upgraderun.go and
// agentapi.go's forward. Events (handleEvents) are the Server's: the same
// on both.
//
// Two roles, chosen by Config:
//   - Management host (Config.Store set): enrolment, check-ins and the
//     relay-facing API (join, heartbeat, agent auth) are answered from the
//     local store; the built-in collector (Config.Collector) is mounted at
//     /v1/ingest and /v1/stats and is the default upstream, reached
//     in-process. Check-ins are written through store.Batcher (one
//     transaction per batch). A goroutine polls the store's command table
//     by id (Config.CommandPoll, 200 ms) and wakes the held check-in of the
//     agent a command is for, so commands queued by another process (CLI)
//     arrive within a second. The same loop reloads the settings table
//     every second (settings.go: six rows, cheaper than a version row to
//     maintain) and, on a change, answers every held check-in at once, so
//     agents get the new settings in that answer (joined relays forward it
//     unchanged).
//   - Joined relay on another host (Config.Manager set): the first start
//     redeems a one-time join token for its own credentials and a server
//     certificate signed by the management host's CA, kept in DATA/relay.json
//     and DATA/tls (0600) with the management host's URL and CA pin, so a
//     restart needs only the data directory (flags given override and are
//     saved; a relay.json of the older format takes its pin from tls/ca.pem,
//     the CA it joined under). The newest policy from a heartbeat is saved
//     too and applied at start only until the management host answers.
//     Enrolment and check-ins are forwarded to the
//     management host with the relay's credentials in X-Outpost-Relay, so
//     the store records which proxy an agent came through and refuses agents
//     of another account; agent credentials for events are verified once
//     with the management host and cached (hash only, AuthTTL). A heartbeat
//     (HeartbeatInterval) reports version and load and brings back the
//     cluster policy and relay commands (policy, upgrade); a command the
//     relay could not carry out (an upgrade whose download or checksum
//     failed) is reported failed with the reason in the next heartbeat's
//     Results, never retried on its own (commands.go, store.ReportCommands).
//     Check-in Results from agents reach the store the same way; a joined
//     relay forwards them unchanged.
//     Upgrades (upgrade.go, upgraderun.go; the mechanics are
//     relay/selfupdate's): the command runs in the background while
//     heartbeats go on, each stage posted as a Result and sent at once
//     (downloading, verifying, restarting; "restarting" is waited for, up
//     to 10 s, so the operator sees it before the relay goes). Refused with
//     nothing on disk changed: a version not newer than the relay's own
//     unless the command says force; a signature that no trusted key
//     verifies (store.VerifyReleaseAny over the keys store.VerifyKeyChain
//     reaches from identity.ReleaseKey, the key given at join or, for a
//     relay that joined before one existed, the first a heartbeat brought;
//     a key off the chain is logged, never taken); a package that does not
//     match the signed SHA-256; a new binary whose --self-test fails (it is
//     staged as BINARY.new, or DATA/upgrade/outpost.new under systemd, and
//     removed). Then the trial is recorded (DATA/upgrade/trial.json),
//     the binary installed without systemd (BINARY.prev kept), the watcher
//     started, and RestartRequested hands the plan to the command line,
//     which closes the server gracefully and execs (same PID); under
//     systemd the watcher installs and restarts the unit. Config.Binary is
//     set only by the command line: embedded servers (tests) refuse to
//     replace a binary. A relay stopped during the restart puts the
//     previous binary back (AbandonRestart). The new process finds the
//     trial at New (startTrial: its log also goes to DATA/upgrade/new.log,
//     in text through logs.Switch, until the trial ends), marks it healthy after its first answered
//     heartbeat and sends the outcome with the next one, at once, until a
//     heartbeat delivered it (selfupdate.Reported); every heartbeat also takes an
//     outcome the watcher left (rolled back, reported by the previous
//     version it started again). A command redelivered to the process that
//     answers it with a trial outcome is not run again.
//
// Install and dist (dist.go, install.sh): the management host serves
// GET /v1/install.sh on its TLS listeners only (403 on plain ones: the
// script carries the pin of the key that served it, PKI.ServerKeyPin, and
// the URL from the request's Host) and GET /v1/dist/outpost-OS-ARCH and
// /v1/dist/SHA256SUMS on all. The binaries are this one for its own
// OS/arch (its path as resolved at start: after an upgrade renames a new
// file over it, that file is what is served and hashed) and
// DATA/dist/outpost-OS-ARCH for the others; each is hashed again only when
// its size or mtime changes. The script is a text/template of install.sh with
// every value single-quoted; its SHA-256 list is what the host installs
// against, so a binary replaced between script and download fails closed.
// EnsureNames keeps server-key.pem when it re-issues server.pem, so that
// pin does not change with the names. Joined relays serve neither.
//
// Data path (sink.go): an events batch is acknowledged only once durable.
// Forward mode appends to relay/spool (CRC-framed segments, group-committed
// fsync) and a forwarder drains it to the upstream under the policy's
// bandwidth (bytes/s, golang.org/x/time/rate, WaitN chunked to the burst)
// and frequency (requests/s) limits; the spool cursor advances only on the
// upstream's acknowledgement (and is persisted at most a second late), so a
// crash or an outage loses nothing and the collector counts the duplicates. A full spool answers 429 + Retry-After.
// Cache mode appends NDJSON to relay/cachering in the cluster's cache
// directory (export.log live, capped, oldest segment dropped first). A
// policy change switches mode and limits live; the spool keeps draining.
//
// Record framing (eventframe.go): each batch is read once by
// wire.ScanEvents, which validates it, stamps the agent id and writes
// every record exactly as json.Marshal(wire.Record) would (field order
// agent, seq, time, type, data; data compacted and HTML-escaped; a time
// already in canonical UTC form copied, others re-formatted), one line per
// record. Whatever it does not handle exactly (escaped or non-ASCII keys,
// repeated keys, null fields, malformed input) goes to the encoding/json
// path (eventsByJSON), which gives every verdict and message, so bad
// input is answered as before. wire.FuzzScan and TestFrameEventsVerdicts
// hold the two paths to the same bytes. Those lines are stored as they
// are: framed by the spool, or written by the ring's AppendValid without
// a second json.Valid; the forwarder frames spool payloads into the
// upstream body without decoding them.
//
// Upstream body (forward.go, wire/frames.go): record frames
// (wire.ContentTypeRecords: length, CRC-32C, the record as the relay
// wrote it), so the collector checks a CRC and the agent/seq head instead
// of parsing JSON the relay already validated (in the perf harness the
// collector's share fell from about a third of the pair's CPU). An
// upstream that answers 415, or 400 with a code other than bad_record (an
// older collector that reads only JSON), gets the same records as a JSON
// IngestBatch from then on; a new upstream URL tries frames again. The
// management host reads a joined relay's frames as a JSON batch
// (ingestauth.go): the per-record account check and the collector must
// see the agent encoding/json sees (the last of two "agent" keys), and a
// relay of one account is not trusted with another's records; its own
// forwarder's frames are taken as they are.
//
// Lag gate (keepup.go): in forward mode, while upstream answers, an
// events batch waits (before its body is read, up to a second) once more
// than Config.ForwardLag (64 MiB; --forward-lag) waits in the spool, and
// goes on when the forwarder commits. On a 2-core host intake otherwise
// takes the CPU forwarding needs: the spool grew by ~880 MB in 20 s of
// full load and would fill, then answer everyone 429. Agents are slowed,
// not refused; an upstream failure opens the gate at once (the spool is
// there for outages). outpost_forward_lag_waits_total counts the waits.
//
// Forwarding pipeline (forward.go): up to forwardDepth (4) upstream
// batches are in flight. Each is peeked after the last one handed out
// (spool.PeekAfter) and retried on its own until acknowledged; the cursor
// is committed in spool order, only past a batch acknowledged together
// with every batch before it, so a crash re-sends the uncommitted batches
// (duplicates, never loss). Batches may reach the collector out of order;
// it keeps per-agent runs of seqs for that. A batch is at most
// forwardBatch (2,000) records or batchBytes.
//
// Clones (clones.go): a check-in whose fingerprint is not the enrolled one
// is a copy of the agent directory; the store flags the identity, nothing
// else of the check-in is recorded, and it is answered Clone after a short
// hold (5 s, so an agent too old to back off does not spin), never taking
// the original's hold. Copies presenting the same fingerprint are found by
// their connections: one check-in per agent is held, a second connection's
// long poll takes the hold over and the first is answered; an agent that
// reconnected never returns on the connection it left, a live copy does at
// once (it was just answered), so that return while the taker still holds
// proves two live agents: the connection first seen later is answered
// Clone and the identity flagged. Short check-ins (inventory, doctor) are
// not counted. Joined relays pass the agent's address
// (wire.HeaderAgentAddr) to tell its connections apart.
//
// Choices: the frequency limit also caps agent event requests per second at
// the relay (excess answered 429 + Retry-After: 1), because a store-and-
// forward relay would otherwise hide the limit from agents until its spool
// filled; agents keep unacknowledged data and retry, so nothing is lost.
// Authenticated agent calls (and enrolment, which carries a key) need TLS
// unless Config.AllowPlain. The relay is never an open proxy: CONNECT and
// absolute-form requests are refused, only known paths are served, bodies
// are limited (256 KiB control, 4 MiB events -> 413) and the server sets
// header, read, write and idle timeouts. Secrets are compared as SHA-256
// hashes in constant time, tokens with subtle.ConstantTimeCompare
// (wire.BearerIs).
//
// Trust between accounts and relays:
//   - Relay calls (join, heartbeat, relay auth, anything with relay
//     credentials) need TLS whatever AllowPlain says (requireRelayTLS).
//   - A joined relay's ingest batch is checked record by record against the
//     relay's account (ingestauth.go): agent -> account is cached without
//     expiry (an agent never changes account), one store query per batch
//     for the ids not cached; any other agent refuses the whole batch (403).
//     The rule is the account, not the binding, so events sent before a
//     rebind stay acceptable.
//   - Pinned clients (wire.PinTransport) check the leaf names the host
//     dialled, in the dial, since a client's tls.ConnectionState has no
//     server name for IPs. A relay certificate (certnames.go) carries the
//     cluster address, the relay's advertised hosts and its IP, never a
//     wildcard or the management host's names; localhost and loopback IPs
//     only when the join comes over loopback (demo and tests run every
//     process on 127.0.0.1; such a relay shares the management host's
//     machine anyway). The management host re-issues its own certificate
//     when SetPublicURLs names a host it lacks.
//   - A joined relay forwards only its exact agent paths, rebuilt after
//     decoding; a package name must be a release version (forwardpath.go).
//   - /v1/stats needs the stats token (DATA/stats.token) or the in-process
//     ingest token, never relay credentials (statsauth.go); /metrics has
//     counts only and takes Config.MetricsToken when set.
//   - /metrics is prometheus/client_golang's promhttp on a registry of the
//     Server's own (not the global one: tests run several servers in one
//     process), built at the first scrape, holding the process and Go
//     collectors and relayCollector (metricsexport.go), which reads the
//     plain atomics of metrics.go at scrape time. The hot paths only Add on
//     those atomics; new series go in counterRows, not in a client_golang
//     counter on the request path. A failing collector (no /proc) costs its
//     own series and a log line, not the scrape.
//   - Bodies are read by relay/internal/httpbody, shared with the collector:
//     gzip or identity, bounded before and after, anything else 415. JSON
//     answers and wire.Error refusals are written by its WriteJSON and
//     WriteError, also shared (writeErr is the handlers' name for it).
//   - Held check-ins cost stacks more than heap: a goroutine keeps its
//     peak stack until less than a quarter of it is in use. So the TLS
//     handshake runs in a goroutine of its own (tlslisten.go), not in the
//     connection's serving goroutine, and a held check-in waits in small
//     frames (handleCheckin -> holdCheckin -> hub.wait; the answer is in
//     answerCheckin, marked noinline). The decoding and store calls
//     (startCheckin) run on a goroutine of their own, so their depth does
//     not stay with the held goroutine. Keep big locals out of that chain.
//     What is left per held TLS agent is net/http's: three goroutines
//     (HTTP/2 frame reader, serve loop, handler), a 4 KiB response buffer
//     per open stream, and TLS read buffers that grow to 32 KiB once an
//     event batch came on the connection and are never shrunk.
//   - Parked check-ins (park.go): a check-in held over HTTP/1.x (the plain
//     listener; TLS clients that negotiate http/1.1) leaves net/http. Its
//     connection is hijacked; one goroutine waits in a one-byte read whose
//     deadline is the end of the wait; the hub wakes it (command, newer
//     check-in of the agent, shutdown, settings) by moving the deadline
//     into the past (waiter.wake); the agent closing the connection ends
//     the read, so the hold ends at once as net/http's background read
//     would have ended it. The answer is written by writeParked and the
//     connection handed back to its http.Server through parkListener (every
//     listener is one; ConnContext tells the handler which), or closed on
//     Connection: close. What the answer needs of the request is copied
//     (heldRequest): keeping the request would keep net/http's read buffer.
//     Close waits for parked check-ins (Server.parked) after the hub
//     released them; connections handed back once the listener closed are
//     closed (drain). A connection handed back is a new one to net/http,
//     which gives its first request ReadHeaderTimeout (10 s) to arrive; a
//     plain one is wrapped (idleConn) so that first deadline is IdleTimeout,
//     as on any kept-alive connection; a TLS one cannot be (net/http must
//     see the *tls.Conn) and keeps 10 s. 9.6 KiB per held HTTP/1.1 agent in make perf (21.5
//     before; an idle net/http connection is 19.6), one goroutine instead
//     of two. HTTP/2 cannot be hijacked: agents over TLS stay as above.
//     BenchmarkHeldCheckins measures RSS,
//     heap, stack and goroutines per held agent on TLS (HTTP/2) and plain
//     HTTP/1.1; OUTPOST_BENCH_MEMPROFILE=FILE writes a heap profile of the
//     held relay; `outpost serve --memprofile FILE` does so at stop.
//
// Logs: Config.Log (nil: none) takes every line, a message plus
// attributes (relay/logs names the keys); a joined relay adds
// relay=PROXY_ID cluster=NAME once it knows its identity (newJoined), so
// lines of several relays in one process stay apart. The spool, the cache
// ring and the check-in batcher get the same logger.
package relay
