package main

// agentRunLong is the help of `outpost agent run`: what the agent keeps,
// how it connects, the commands it obeys and how it keeps events.
const agentRunLong = `Run the reference agent on this machine (seed 002: install with a verification key).

Enrolment. On first start the agent enrols with the install key (from
'outpost installcmd create') through the first --proxy URL that answers,
and keeps what it needs in DIR/identity.json (0600, DIR 0700): agent id and
secret, the relay list and the CA pin. Later starts need only --dir DIR
(or none, with the default DIR): a --key given then is ignored (with a
note; it is used only to enrol again if the management host no longer
knows the identity), and --proxy or --ca-sha256 given then replace the
saved list or pin (with a note), a list set by a bind included. An
unknown, expired or revoked key is refused on the first start: "install
key not recognised" (exit 1). Copying DIR (to another machine, into an
image, or beside it on this machine) copies the identity; the fingerprint
covers /etc/machine-id and where DIR lives (path, device, inode), so the
management host tells the copy apart, flags a duplicate identity and answers
the copy as a clone: it checks in only every 5 minutes and logs how to fix
it (delete the copy and install again). mv within one file system keeps
the agent; a move to another file system makes it a copy.

Connection. The agent holds a long-poll check-in open through a relay so
commands reach it within seconds, and sends its full inventory ("online
data": host name, IPs, OS from os-release, arch, process count, listening
TCP/UDP ports, root and all accounts) on the interval the management host
sets (5 hours by default). A cluster's list starts with the cluster's
address, then each proxy server's own URLs. The agent moves to the next URL
when one is unreachable or answers "not here" (TLS error, a plain listener
of a TLS-only relay, 403, 421, 5xx) and stays on the one that works; the
log says what each URL did ("refused: needs TLS", "relay unreachable: dial
tcp ..."). A refused key ends the first start with the reason; other
refusals are retried with a back-off and logged.

Commands. bind / unbind switch the agent to a cluster's proxies or back to
direct connection; the new list is saved in DIR/identity.json. uninstall
stops the relay deploy-proxy started (and waits until it is gone), reports
the uninstall, removes DIR (identity, event buffer, that relay's data),
prints "uninstalled by the management host" and exits 0; run by systemd as
the unit 'service install agent' wrote, it also removes that unit.
deploy-proxy (quick deployment of a proxy server onto this asset) starts
'outpost relay --manager URL --join TOKEN --ca-sha256 PIN --data DIR/relay'
as a detached process (log in DIR/relay/relay.log); it keeps running when
the agent stops (not an uninstall), and a later
'outpost relay --data DIR/relay' reuses its joined identity (management
host and CA pin included). Once it joined, a start of the agent that finds
it not running (under systemd it stops with the agent's unit) starts it
again with the same flags. upgrade downloads the release through the relay,
checks its signature against the release keys this agent trusts
(DIR/release-keys.json: the key of its enrolment and those signed by it)
and its SHA-256, self-tests it, installs it (the current binary kept as
BINARY.prev) and restarts into it, reporting downloading, verifying and
restarting; the new version reports done after its first check-in, and one
that crashes or never checks in is rolled back (see 'outpost agent upgrade').

Events. Every --event-every (60s) the agent records a small status event
(load averages, uptime, memory) with its own sequence number. Events are
appended to DIR/buffer on disk (fsynced) and leave it only once a relay
acknowledged them, so a relay that is down, a restart or a crash loses
nothing and sequence numbers are never reused.

DIR is --dir, else $OUTPOST_AGENT_DIR, else /var/lib/outpost-agent when
writable, else ~/.outpost-agent. Logs go to stderr with timestamps.
SIGINT or SIGTERM stops the agent cleanly.`
