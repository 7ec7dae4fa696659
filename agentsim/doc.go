// Package agentsim is the agent side of the protocol: the Client (failover
// over a list of relay URLs, CA pinning, optional source address), the Agent
// loop shared by the reference agent (`outpost agent run`) and simulated
// agents (enrolment, long-poll check-in, inventory on its interval,
// bind/unbind/uninstall commands, events with at-least-once delivery), host
// facts read from /proc and /etc (HostFS), a generator of varied fleets
// (FakeHost) and the simulator RunSim with its end-of-run Report.
//
// Delivery: an Agent keeps every event in its EventBuffer until a relay
// acknowledged it (memory for simulations, disk for the reference agent);
// 429 answers are retried after Retry-After, network errors fail over to
// the next relay URL. Sequence numbers are per agent and contiguous, so the
// loss check compares each agent's last acknowledged sequence with the
// collector's distinct count for it.
//
// Scale: RunSim spreads connections over several 127.0.0.x source
// addresses (one shared transport each) when the relay is on loopback and
// raises RLIMIT_NOFILE, so 10,000 agents with two connections each fit in
// the ephemeral port range. Linger batches each agent's events into one
// request per interval. The load harness is TestLoad (make load).
package agentsim
