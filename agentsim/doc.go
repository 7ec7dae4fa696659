// Package agentsim is the agent side of the protocol: the Client (failover
// over a list of relay URLs, CA pinning, optional source address), the Agent
// loop shared by the reference agent (`outpost agent run`) and simulated
// agents (enrolment, long-poll check-in, inventory on its interval,
// bind/unbind/uninstall commands, events with at-least-once delivery), the
// reference agent's state on disk (DiskIdentity, DiskBuffer) and the
// simulator RunSim with its end-of-run Report.
//
// Files: agent.go (the types, Run, enrolment), agentcheckin.go (the
// check-in loop and commands), agentevents.go (generating and sending
// events), client.go, diskidentity.go, diskbuffer.go and diskbufferopen.go
// (the disk buffer and its recovery), sim.go (RunSim: setup, run, drain,
// report) and simreport.go (Report, the loss check).
//
// Failover: a call tries the URL in use, then each other URL once, and the
// client stays on the one that answered. It moves on for network and TLS
// errors and for answers that mean "this URL cannot serve you" (notHere:
// 403 including wire.CodeNeedsTLS, 404, 421, 5xx, and anything that is not
// a relay's JSON error, such as a TLS port answering plain HTTP with 400);
// 400, 401, 409, 413 and 429 are answers about the request and are
// returned at once. When every URL failed, NoRelayError says per URL what
// happened (Describe renders it for logs). Enrolment stops for good on a
// key or account refusal from any relay (they all ask the same management
// host) and when every URL answered "not here"; it retries on 429, 5xx and
// silence. A cluster's list starts with the cluster address (a load
// balancer or VIP spreads agents itself), so Spread keeps the first URL
// and rotates the relays' own URLs behind it; the dial timeout (3 s) keeps
// an unreachable address cheap.
//
// Delivery: an Agent keeps every event in its EventBuffer until a relay
// acknowledged it (memory for simulations, disk for the reference agent);
// 429 answers are retried after Retry-After, other failures after a
// back-off (spread over a window when no relay answered at all). Sequence
// numbers are per agent and contiguous, so the loss check compares each
// agent's last acknowledged sequence with the collector's distinct count
// for it; without a collector the loss is not checked (nil in Report).
//
// Commands and their results: results queued with Report go with the next
// check-in, which may be held for the whole long poll; Hurry makes holds
// short (hurryWait) and ends the one in flight, and Deliver waits until a
// result was carried (the reference agent reports an upgrade's
// "restarting" that way before it replaces itself). Uninstall runs
// OnUninstall first (a failure is reported and the agent goes on), then is
// acknowledged in a last check-in, retried, while the identity exists.
// OnReleaseKeys and OnCheckin let the reference agent keep its release
// keys and mark a new version healthy; agentsim checks no signature itself
// (it imports only relay/wire).
//
// Simulated fleets: install commands are per OS, so RunSim draws hosts of
// the OSes it has keys for (fleetKeys); a key given without its OS is
// taken as Linux until a refusal ("install command is for windows") names
// its OS. Report.Problems lists what fails a run (lost events, agents
// failed for good counted by reason, events left unacknowledged).
//
// Scale: RunSim spreads connections over several 127.0.0.x source
// addresses (one shared transport each) when the relay is on loopback and
// raises RLIMIT_NOFILE, so 10,000 agents with two connections each fit in
// the ephemeral port range. Linger batches each agent's events into one
// request per interval. The load harness is TestLoad (make load).
//
// Subpackages: hostfacts (this machine's facts read from /proc and /etc:
// hostfacts.HostFS), fleet (varied,
// replayable simulated hosts: fleet.Host; FakeHost and FakeHostOS wrap it
// for tests outside agentsim), doctor (the
// checks of `outpost doctor`; it imports only agentsim and relay/wire, see
// its doc.go). What the seed fixes and both
// sides show (DuplicateFix, the cache cap, FormatBytes) lives in relay/wire,
// the one project package agentsim may import.
//
// Logs: Agent.Log and SimConfig.Log take a *slog.Logger from the caller
// (nil: none; agentsim builds no handler, relay/logs is the caller's);
// Run adds host=NAME once, and lines name the identity as agent=ID.
package agentsim
