package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"outpost/relay/wire"
)

// heartbeatLoop reports version and load, applies the cluster policy live
// and carries out relay commands. Command results (an upgrade's stages, a
// failure, a finished trial's outcome) go with the next heartbeat, sent at
// once when one is posted.
func (s *Server) heartbeatLoop() {
	defer s.bg.Done()
	var acked []int64
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		sending := s.takeResults()
		results := make([]wire.CommandResult, len(sending))
		for i, r := range sending {
			results[i] = r.r
		}
		spoolBytes, _, _ := s.sink.stats()
		body, _ := json.Marshal(wire.HeartbeatRequest{Version: s.cfg.Version, Load: loadAvg(), Agents: int(s.m.held.Load()),
			SpoolSize: spoolBytes, Acked: acked, Results: results, URLs: s.publicURLs()})
		var resp wire.HeartbeatResponse
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		status, err := s.callManager(ctx, wire.PathHeartbeat, body, &resp)
		cancel()
		again := false
		if status == http.StatusOK {
			acked = nil
			s.delivered(sending)
			if err := s.sink.apply(resp.Policy); err != nil {
				s.logf("relay: policy: %v", err)
			} else {
				s.keepPolicy(resp.Policy)
			}
			s.heartbeatAnswered(resp.Policy)
			s.keepReleaseKey(resp.ReleaseKey)
			s.followKeyChain(resp.ReleaseKey, resp.ReleaseKeys)
			acked = s.runCommands(resp.Commands)
			again = s.answered()
		} else {
			s.heartbeatFailed(status, err)
		}
		if again {
			continue
		}
		select {
		case <-s.closing:
			return
		case <-t.C:
		case <-s.up.wake:
		}
	}
}

// runCommands carries out the commands of a heartbeat answer and returns
// those done at once; an upgrade runs in the background and reports its
// own results.
func (s *Server) runCommands(cmds []wire.Command) (acked []int64) {
	for _, c := range cmds {
		switch {
		case s.handled(c.ID):
			// The trial's outcome answers it.
		case c.Type == wire.CmdUpgrade:
			s.startUpgrade(c)
		default:
			if err := s.runRelayCommand(c); err != nil {
				// Reported, not retried: the operator sees why and
				// decides (proxy list, the audit log).
				s.logf("relay: command %d (%s) failed: %v", c.ID, c.Type, err)
				s.post(wire.CommandResult{ID: c.ID, State: wire.StateFailed, Error: err.Error()})
				continue
			}
			acked = append(acked, c.ID)
		}
	}
	return acked
}

// heartbeatAnswered notes the first answer after a start or an outage.
func (s *Server) heartbeatAnswered(p wire.Policy) {
	if s.stalePolicy {
		s.stalePolicy = false
		s.logf("relay: the management host answered: applying the cluster's current policy (mode %s)", p.Mode)
	} else if s.hbErr != "" {
		s.logf("relay: the management host answers again")
	}
	s.hbErr = ""
}

// heartbeatFailed logs a failed heartbeat once per distinct reason rather
// than every interval.
func (s *Server) heartbeatFailed(status int, err error) {
	msg := "the management host could not answer (" + strings.ToLower(http.StatusText(status)) + ")"
	var re *remoteError
	switch {
	case errors.As(err, &re):
		msg = "refused by the management host: " + re.msg
	case err != nil:
		msg = "management host " + s.cfg.Manager + " unreachable: " + err.Error() + trustHint(err)
	}
	if msg != s.hbErr {
		s.logf("relay: heartbeat: %s (retrying every %s)", msg, s.cfg.HeartbeatInterval)
		s.hbErr = msg
	}
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscanf(string(b), "%f", &l)
	return l
}
