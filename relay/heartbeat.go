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
func (j *joinedRole) heartbeatLoop() {
	defer j.s.bg.Done()
	var acked []int64
	t := time.NewTicker(j.s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		sending := j.takeResults()
		results := make([]wire.CommandResult, len(sending))
		for i, r := range sending {
			results[i] = r.r
		}
		spoolBytes, _, _ := j.s.sink.stats()
		body, _ := json.Marshal(wire.HeartbeatRequest{Version: j.s.cfg.Version, Load: loadAvg(), Agents: int(j.s.m.held.Load()),
			SpoolSize: spoolBytes, Acked: acked, Results: results, URLs: j.s.publicURLs()})
		var resp wire.HeartbeatResponse
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		status, err := j.callManager(ctx, wire.PathHeartbeat, body, &resp)
		cancel()
		again := false
		if status == http.StatusOK {
			acked = nil
			j.delivered(sending)
			if err := j.s.sink.apply(resp.Policy); err != nil {
				j.s.log.Error("relay: policy", "err", err)
			} else {
				j.keepPolicy(resp.Policy)
			}
			j.heartbeatAnswered(resp.Policy)
			j.keepReleaseKey(resp.ReleaseKey)
			j.followKeyChain(resp.ReleaseKey, resp.ReleaseKeys)
			acked = j.runCommands(resp.Commands)
			again = j.answered()
		} else {
			j.heartbeatFailed(status, err)
		}
		if again {
			continue
		}
		select {
		case <-j.s.closing:
			return
		case <-t.C:
		case <-j.up.wake:
		}
	}
}

// runCommands carries out the commands of a heartbeat answer and returns
// those done at once; an upgrade runs in the background and reports its
// own results.
func (j *joinedRole) runCommands(cmds []wire.Command) (acked []int64) {
	for _, c := range cmds {
		switch {
		case j.handled(c.ID):
			// The trial's outcome answers it.
		case c.Type == wire.CmdUpgrade:
			j.startUpgrade(c)
		default:
			if err := j.runRelayCommand(c); err != nil {
				// Reported, not retried: the operator sees why and
				// decides (proxy list, the audit log).
				j.s.log.Warn("relay: command failed", "command", c.ID, "type", c.Type, "err", err)
				j.post(wire.CommandResult{ID: c.ID, State: wire.StateFailed, Error: err.Error()})
				continue
			}
			acked = append(acked, c.ID)
		}
	}
	return acked
}

// heartbeatAnswered notes the first answer after a start or an outage.
func (j *joinedRole) heartbeatAnswered(p wire.Policy) {
	if j.stalePolicy {
		j.stalePolicy = false
		j.s.log.Info("relay: the management host answered: applying the cluster's current policy", "mode", p.Mode)
	} else if j.hbErr != "" {
		j.s.log.Info("relay: the management host answers again")
	}
	j.hbErr = ""
}

// heartbeatFailed logs a failed heartbeat once per distinct reason rather
// than every interval.
func (j *joinedRole) heartbeatFailed(status int, err error) {
	msg := "the management host could not answer (" + strings.ToLower(http.StatusText(status)) + ")"
	var re *remoteError
	switch {
	case errors.As(err, &re):
		msg = "refused by the management host: " + re.msg
	case err != nil:
		msg = "management host " + j.s.cfg.Manager + " unreachable: " + err.Error() + trustHint(err)
	}
	if msg != j.hbErr {
		j.s.log.Warn("relay: heartbeat failed", "err", msg, "retry_every", j.s.cfg.HeartbeatInterval)
		j.hbErr = msg
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
