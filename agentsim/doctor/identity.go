package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"outpost/agentsim"
	"outpost/agentsim/hostfacts"
	"outpost/relay/wire"
)

// dupFix is the fix of a duplicated identity seen from its own machine.
const dupFix = "the agent directory was copied or baked into an image: delete it on this machine and install the agent again (re-enrol)"

// reenrolFix is the fix of an identity the management host does not know.
const reenrolFix = "delete the agent directory and install the agent again with a current install command (re-enrol)"

// CheckIdentity looks for a duplicated agent identity (seed 002 ch.1: an
// agent directory copied to another machine or baked into an image). With
// an identity (--dir) it checks in through the first healthy relay, as the
// agent does, and reads duplicate_identity; without a relay it asks the
// store. Without an identity but with a store it lists the fleet's
// duplicates.
func (d *Doctor) CheckIdentity(ctx context.Context, relays []string) Check {
	c := Check{Name: CheckIdentity, Target: d.IdentityDir}
	if d.IdentityErr != nil {
		c.Verdict = VerdictFail
		c.Detail = "the agent identity cannot be read: " + d.IdentityErr.Error()
		c.Fix = "delete " + filepath.Join(d.IdentityDir, agentsim.IdentityFile) + " if present and run a current install command again " +
			"(`outpost agent run --proxy URL --key KEY --dir " + d.IdentityDir + "`): its log shows why enrolment fails"
		return c
	}
	if d.Identity == nil || d.Identity.AgentID == "" {
		return d.fleetDuplicates(ctx, c)
	}
	id := *d.Identity
	c.Target = id.AgentID
	if d.IdentityDir != "" {
		c.Target = d.IdentityDir
	}
	c, lastErr := d.identityByRelay(ctx, c, id, relays)
	if c.Verdict != "" {
		return c
	}
	if d.Agent != nil {
		return d.identityByStore(ctx, c, id)
	}
	c.Verdict = VerdictSkip
	c.Detail = "no relay took the check-in, so the identity could not be checked"
	if lastErr != nil {
		c.Detail += ": " + errText(lastErr)
	}
	return c
}

// fleetDuplicates lists the agents the store flags as duplicated, when
// there is no identity of this host to check.
func (d *Doctor) fleetDuplicates(ctx context.Context, c Check) Check {
	if d.Duplicates == nil {
		c.Verdict, c.Detail = VerdictSkip, "no agent identity: give --dir AGENTDIR (or run on the management host)"
		return c
	}
	c.Target = "fleet"
	agents, total, err := d.Duplicates(ctx)
	if err != nil {
		c.Verdict, c.Detail = VerdictSkip, "cannot list agents: "+errText(err)
		return c
	}
	if total == 0 {
		c.Verdict, c.Detail = VerdictOK, "no agent is flagged as a duplicate identity"
		return c
	}
	var names []string
	for _, a := range agents {
		names = append(names, a.Hostname+" ("+a.ID+")")
	}
	if total > len(agents) {
		names = append(names, fmt.Sprintf("%d more", total-len(agents)))
	}
	c.Verdict = VerdictFail
	c.Detail = fmt.Sprintf("%d agent(s) flagged as a duplicate identity: %s", total, strings.Join(names, ", "))
	c.Fix = "on each clone, " + wire.DuplicateFix + " (list them: `outpost agent list --duplicate`)"
	return c
}

// identityByRelay checks in through the relays as the agent of this
// directory would; c.Verdict stays empty when no relay took the check-in.
func (d *Doctor) identityByRelay(ctx context.Context, c Check, id agentsim.Identity, relays []string) (Check, error) {
	var fp string
	if d.Fingerprint != nil {
		fp, _ = d.Fingerprint()
	} else if h, err := (hostfacts.HostFS{}).Host(""); err == nil {
		fp = h.Fingerprint
	}
	if d.IdentityDir != "" {
		fp, _ = agentsim.CheckinFingerprint(id, d.IdentityDir, fp) // what the agent of this directory presents
	}
	// The secret travels only over TLS when an https relay is available.
	relays = slices.Clone(relays)
	slices.SortStableFunc(relays, func(a, b string) int {
		return strings.Compare(strings.SplitN(b, ":", 2)[0], strings.SplitN(a, ":", 2)[0]) // https before http
	})
	var lastErr error
	for _, base := range relays {
		resp, status, msg, err := d.checkin(ctx, base, id, fp)
		if err != nil {
			lastErr = err
			continue
		}
		switch {
		case status == http.StatusUnauthorized:
			c.Verdict = VerdictFail
			c.Detail = fmt.Sprintf("the relay does not recognise agent %s (deleted, or its credentials were replaced)", id.AgentID)
			c.Fix = reenrolFix
		case status == http.StatusForbidden && strings.Contains(msg, "TLS"):
			lastErr = fmt.Errorf("%s: %s", base, msg)
			continue
		case status == http.StatusForbidden:
			c.Verdict = VerdictFail
			c.Detail = fmt.Sprintf("the relay refuses agent %s: %s", id.AgentID, trim(msg, 160))
			c.Fix = "use the proxy URLs of the agent's own account and cluster (from its install command), or install the agent again"
		case status != http.StatusOK:
			lastErr = fmt.Errorf("check-in answered HTTP %d", status)
			continue
		case resp.Clone:
			c.Verdict = VerdictFail
			c.Detail = fmt.Sprintf("this directory is a copy of agent %s's (another machine or directory holds the enrolled identity)", id.AgentID)
			c.Fix = dupFix
		case resp.DuplicateID:
			c.Verdict = VerdictFail
			c.Detail = fmt.Sprintf("the management host reports agent %s as a duplicate identity (a copy of it checked in)", id.AgentID)
			c.Fix = dupFix
		default:
			c.Verdict, c.Detail = VerdictOK, fmt.Sprintf("agent %s checks in and is not duplicated", id.AgentID)
		}
		return c, nil
	}
	return c, lastErr
}

// identityByStore asks the store about the identity, when no relay took
// the check-in.
func (d *Doctor) identityByStore(ctx context.Context, c Check, id agentsim.Identity) Check {
	a, err := d.Agent(ctx, id.AgentID)
	switch {
	case errors.Is(err, ErrUnknownAgent):
		c.Verdict = VerdictFail
		c.Detail = fmt.Sprintf("agent %s is not in the store (deleted, or enrolled with another management host)", id.AgentID)
		c.Fix = reenrolFix
	case err != nil:
		c.Verdict, c.Detail = VerdictSkip, "cannot read the store: "+errText(err)
	case a.Duplicate:
		c.Verdict = VerdictFail
		c.Detail = fmt.Sprintf("the store flags agent %s (%s) as a duplicate identity", a.ID, a.Hostname)
		c.Fix = dupFix
	default:
		c.Verdict, c.Detail = VerdictOK, fmt.Sprintf("agent %s (%s) is not duplicated", a.ID, a.Hostname)
	}
	return c
}

// checkin does one agent check-in without waiting (Wait 0): commands it
// may receive stay pending until the agent acknowledges them.
func (d *Doctor) checkin(ctx context.Context, base string, id agentsim.Identity, fp string) (wire.CheckinResponse, int, string, error) {
	var resp wire.CheckinResponse
	body, _ := json.Marshal(wire.CheckinRequest{Fingerprint: fp})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+wire.PathCheckin, bytes.NewReader(body))
	if err != nil {
		return resp, 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", wire.AgentAuth(id.AgentID, id.Secret))
	// The secret is sent: verify the relay as the agent does.
	hc := d.client(nil)
	hc.Transport = wire.PinTransport(hc.Transport.(*http.Transport), d.CASHA256)
	r, err := hc.Do(req)
	if err != nil {
		return resp, 0, "", err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if r.StatusCode != http.StatusOK {
		var e wire.Error
		json.Unmarshal(b, &e)
		return resp, r.StatusCode, e.Message, nil
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return resp, r.StatusCode, "", fmt.Errorf("check-in answer: %w", err)
	}
	return resp, r.StatusCode, "", nil
}
