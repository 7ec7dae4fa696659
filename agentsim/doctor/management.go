package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The management host's data, as the caller reads it from the store; the
// doctor does not import the store (see doc.go).

// Agent is what the store knows of one agent.
type Agent struct {
	ID        string
	Hostname  string
	Duplicate bool // flagged as a duplicate identity
}

// ErrUnknownAgent is what Doctor.Agent returns for an agent the store does
// not have.
var ErrUnknownAgent = errors.New("no such agent")

// InstallCommand is one install command of the store (it keeps only the
// first 10 characters of the key).
type InstallCommand struct {
	ID        int64
	KeyPrefix string
	Cluster   string // "" = direct
	ExpiresAt time.Time
	Uses      int
	Revoked   bool
	Expired   bool
}

// Cluster is one cluster as link-limits and cache-space read it.
type Cluster struct {
	ID        int64
	Name      string
	Account   string
	Forward   bool   // forward mode (else cache)
	Bandwidth string // the bandwidth limit as shown ("80 Mbit/s", "unlimited")
	Link      string // the proxy host's link as shown; "" = unknown
	Agents    int
	Cache     *CacheTarget // the cache directory in cache mode, else nil
	Warnings  []Warning    // store.Warnings of the cluster
}

// Warning is one of the store's cluster warnings (store.Warning): its
// sentence and the operator's fix, given the cluster as `outpost cluster
// policy` takes it.
type Warning interface {
	Text() string
	Fix(cluster string) string
}

// keyPrefix is what the store keeps of an install key (its first 10
// characters).
func keyPrefix(key string) string {
	key = strings.TrimSpace(key)
	if len(key) > 10 {
		return key[:10]
	}
	return key
}

// CheckKey looks the install key up on the management host: the store keeps
// only hashes and the first 10 characters, so commands are matched by that
// prefix. Expired or revoked commands enrol nothing.
func (d *Doctor) CheckKey(ctx context.Context) Check {
	prefix := keyPrefix(d.Key)
	c := Check{Name: CheckKey, Target: prefix}
	newCmd := func(cluster string) string {
		if cluster == "" {
			return "create a new install command (`outpost installcmd create`) and run it on the host"
		}
		return "create a new install command (`outpost installcmd create --cluster " + cluster + "`) and run it on the host"
	}
	switch {
	case d.Key == "":
		c.Verdict, c.Detail = VerdictSkip, "no --key given"
		return c
	case d.InstallCommands == nil:
		c.Verdict, c.Detail = VerdictSkip, "no management store here: run `outpost doctor --key KEY` on the management host"
		return c
	case len(strings.TrimSpace(d.Key)) < 10:
		c.Verdict, c.Detail, c.Fix = VerdictFail, "too short to be an install key", newCmd("")
		return c
	}
	cmds, err := d.InstallCommands(ctx)
	if err != nil {
		c.Verdict, c.Detail = VerdictSkip, "cannot read the store: "+errText(err)
		return c
	}
	var match []InstallCommand
	for _, ic := range cmds {
		if ic.KeyPrefix == prefix {
			match = append(match, ic)
		}
	}
	if len(match) == 0 {
		c.Verdict = VerdictFail
		c.Detail = "no install command has this key (mistyped, or created on another management host)"
		c.Fix = newCmd("")
		return c
	}
	where := func(ic InstallCommand) string {
		if ic.Cluster == "" {
			return fmt.Sprintf("install command %d (direct)", ic.ID)
		}
		return fmt.Sprintf("install command %d (cluster %s)", ic.ID, ic.Cluster)
	}
	for _, ic := range match {
		if !ic.Revoked && !ic.Expired {
			c.Verdict = VerdictOK
			c.Detail = fmt.Sprintf("%s is valid until %s, used %d time(s)", where(ic), ic.ExpiresAt.UTC().Format(time.RFC3339), ic.Uses)
			return c
		}
	}
	ic := match[0]
	c.Verdict = VerdictFail
	if ic.Revoked {
		c.Detail = where(ic) + " was revoked: it enrols nothing"
	} else {
		c.Detail = fmt.Sprintf("%s expired at %s: it enrols nothing", where(ic), ic.ExpiresAt.UTC().Format(time.RFC3339))
	}
	c.Fix = newCmd(ic.Cluster)
	return c
}

// CheckClusterLimits reports a cluster's seed 000 warnings (store.Warnings):
// limits above 60 % of the proxy host's link, 10 Kbit/s reserved per host,
// 6,000 hosts per proxy. all is every cluster, to name the account when a
// cluster name is used by several.
func CheckClusterLimits(cl Cluster, all []Cluster) Check {
	c := Check{Name: CheckLink, Target: cl.Name}
	name := cl.Name
	for _, o := range all {
		if o.Name == cl.Name && o.ID != cl.ID {
			name += " --account " + cl.Account
			break
		}
	}
	if len(cl.Warnings) == 0 {
		if cl.Link == "" {
			c.Verdict = VerdictSkip
			c.Detail = "link capacity unknown: set it to check the 60 % rule (`outpost cluster policy " + name + " --link 100Mbit`)"
			return c
		}
		c.Verdict = VerdictOK
		if cl.Forward {
			c.Detail = fmt.Sprintf("bandwidth %s within 60 %% of the %s link, %d agent(s)", cl.Bandwidth, cl.Link, cl.Agents)
		} else {
			c.Detail = fmt.Sprintf("%d agent(s) within 60 %% of the %s link", cl.Agents, cl.Link)
		}
		return c
	}
	var texts, fixes []string
	for _, w := range cl.Warnings {
		texts = append(texts, w.Text())
		if f := w.Fix(name); f != "" && !slices.Contains(fixes, f) {
			fixes = append(fixes, f)
		}
	}
	c.Verdict = VerdictWarn
	c.Detail = strings.Join(texts, "; ")
	c.Fix = strings.Join(fixes, "; ")
	return c
}
