package agentsim

import (
	"context"
	"sync/atomic"
	"time"

	"outpost/relay/wire"
)

// DefaultCloneBackoff is how long a flagged clone waits between check-ins.
const DefaultCloneBackoff = 5 * time.Minute

// clonePlace is an agent's view of its own identity's location and of the
// management host's verdict on it.
type clonePlace struct {
	machineFP string    // the machine's fingerprint, as Host gave it first
	enrolAt   *DirStamp // where a new identity is being enrolled
	dupLogged bool      // the duplicate flag was reported in the log
	until     atomic.Int64
}

// locate sets Host.Fingerprint from where the identity lives (identity
// kept in a directory only; simulated agents keep theirs). A new agent
// enrols with the fingerprint of this machine and directory; an enrolled
// one presents the fingerprint it enrolled with while its directory is the
// one it was written in, else that of the copy (CheckinFingerprint). An
// identity from before locations were recorded adopts its directory, so an
// upgrade keeps an enrolled agent working.
func (a *Agent) locate() error {
	ls, ok := a.Identity.(locatedStore)
	if !ok {
		return nil
	}
	if a.clone.machineFP == "" {
		a.clone.machineFP = a.Host.Fingerprint
	}
	machine, dir := a.clone.machineFP, ls.Location()
	id, have, err := a.Identity.Load()
	if err != nil {
		return err
	}
	st, stErr := StampDir(dir)
	known := stErr == nil && st.Ino != 0
	if !have {
		a.clone.enrolAt, a.Host.Fingerprint = nil, machine
		if known {
			a.clone.enrolAt, a.Host.Fingerprint = &st, IdentityFingerprint(machine, st)
		}
		return nil
	}
	fp, placed := CheckinFingerprint(id, dir, machine)
	a.Host.Fingerprint = fp
	switch placed {
	case PlacedOld:
		if known {
			id.Fingerprint = fp // what the management host knows
			id.setStamp(machine, st)
			return a.Identity.Save(id)
		}
	case PlacedMoved:
		a.log.Info("agent: identity moved within its file system: still the same agent", "agent", id.AgentID, "from", id.DirPath, "to", st.Path)
		id.DirPath = st.Path
		return a.Identity.Save(id)
	case PlacedCopy:
		a.log.Warn("agent: this directory is a copy of another agent's: the management host will treat this process as a clone",
			"dir", dir, "agent", id.AgentID, "written_in", id.DirPath)
	}
	return nil
}

// stampEnrolled records in a new identity the fingerprint it enrolled with
// and where it lives.
func (a *Agent) stampEnrolled(id *Identity) {
	if _, ok := a.Identity.(locatedStore); !ok {
		return
	}
	id.Fingerprint = a.Host.Fingerprint
	if st := a.clone.enrolAt; st != nil {
		id.setStamp(a.clone.machineFP, *st)
	}
}

// cloneBackoff is the answer to Clone: this process holds a copy of an
// identity another live agent uses. It says once per back-off how to make
// it an agent of its own, sends nothing for CloneBackoff (with jitter), and
// reports false if ctx ended meanwhile.
func (a *Agent) cloneBackoff(ctx context.Context) bool {
	d := a.CloneBackoff
	if d <= 0 {
		d = DefaultCloneBackoff
	}
	d = jitter(d)
	a.clone.until.Store(time.Now().Add(d).UnixNano())
	defer a.clone.until.Store(0)
	id, _, _ := a.Identity.Load()
	where := ""
	if ls, ok := a.Identity.(locatedStore); ok {
		where = " (" + ls.Location() + ")"
	}
	a.log.Warn("agent: duplicate identity: another live agent uses this identity; the management host reports this process as a clone",
		"agent", id.AgentID, "retry_in", d.Round(time.Second), "fix", wire.DuplicateFix+where)
	return sleepCtx(ctx, d)
}

// cloneWait holds the events sender while the agent backs off as a clone.
func (a *Agent) cloneWait(ctx context.Context) bool {
	for {
		until := a.clone.until.Load()
		if until == 0 {
			return true
		}
		if !sleepCtx(ctx, time.Until(time.Unix(0, until))+time.Millisecond) {
			return false
		}
	}
}

// noteDuplicate logs once that the management host flags this identity as
// duplicated (this agent is the enrolled one and goes on working).
func (a *Agent) noteDuplicate(dup bool) {
	if dup && !a.clone.dupLogged {
		a.log.Warn("agent: the management host flags this identity as duplicated (a copy of it checked in elsewhere); this agent goes on",
			"fix_on_the_copy", wire.DuplicateFix)
	}
	a.clone.dupLogged = dup
}
