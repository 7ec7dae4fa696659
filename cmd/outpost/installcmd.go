package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"outpost/relay/wire"
	"outpost/store"
	"outpost/store/ops"
)

func init() { register("", newInstallCmd) }

func newInstallCmd(a *app) *cobra.Command {
	cmd := group("installcmd", "Create, list and revoke agent install commands")
	cmd.AddCommand(newInstallCreateCmd(a), newInstallListCmd(a), newInstallRevokeCmd(a))
	return cmd
}

// installCreate holds the flags of `installcmd create`.
type installCreate struct {
	a                                  *app
	in                                 store.InstallInput
	cluster, account, expires, manager string
	os                                 string // --os, read into in.OS
}

func newInstallCreateCmd(a *app) *cobra.Command {
	r := &installCreate{a: a}
	cmd := &cobra.Command{
		Use:   "create [--cluster N] [--expires 24h] [--os linux|windows] [--group G] [--provider P] [--image]",
		Short: "Create an install command (the key is shown once)",
		Long: `Create an install command: a key that enrols agents into the account and,
with --cluster, straight into that cluster. It prints the line to run, as
root, on each bare Linux host (only curl and sh needed):

  curl -fsSk --pinnedpubkey sha256//K MGR/v1/install.sh | sh -s -- agent --proxy URL[,URL] --key KEY --ca-sha256 H

It fetches the install script from the management host MGR with its server
key K pinned (any other key: nothing runs), which downloads the outpost
binary, checks its SHA-256, installs /usr/local/bin/outpost and runs
'outpost service install agent' (systemd unit outpost-agent.service; the
key goes only to a 0600 file in the agent directory). Then the command for
a host that already has the binary:

  outpost agent run --proxy URL[,URL] --key KEY [--ca-sha256 H]

With --cluster, the URLs are the cluster's address on the first relay's TLS
port first (https://ADDRESS:PORT: the proxy's IP, or a domain, load balancer
or VIP in front of the proxies), then each proxy server's own URLs as
fallbacks (what it advertises: --public, else its https listeners; http ones
only for a relay started with --allow-plain). While the cluster has no proxy
server it is https://ADDRESS:8443. Without --cluster the agents connect
directly to the management host. MGR, and the URL direct agents use, is
--manager, else the running relay's https URL, else https://HOSTNAME:8443.
An expired or revoked key enrols nothing.`,
		Args: nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error { return r.Run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&r.cluster, "cluster", "", "enrol agents into this cluster (default: direct connection)")
	f.StringVar(&r.expires, "expires", "24h", "how long the key stays valid")
	f.StringVar(&r.os, "os", string(wire.OSLinux), "linux or windows")
	f.StringVar(&r.in.Group, "group", "", "default asset group")
	f.StringVar(&r.in.Provider, "provider", "", "service provider label")
	f.BoolVar(&r.in.ImageMode, "image", false, "image mode: for baking into a machine image")
	f.StringVar(&r.manager, "manager", "", "URL of the management host: for direct agents and the one-line installer")
	f.StringVar(&r.account, "account", "", "account (default: the cluster's, or the only account)")
	return cmd
}

// Run creates the install command and prints the lines to run.
func (r *installCreate) Run(cmd *cobra.Command) error {
	a, in := r.a, r.in
	var err error
	if in.TTL, err = parseDuration("expires", r.expires); err != nil {
		return err
	}
	if in.OS, err = wire.ParseOS(r.os); err != nil {
		return usageErrorf("invalid --%s", err) // invalid --os "x": want ...
	}
	db, err := a.store()
	if err != nil {
		return err
	}
	mgr, err := a.managerURL(r.manager)
	if err != nil {
		return err
	}
	urls, err := r.target(cmd, db, &in, mgr)
	if err != nil {
		return err
	}
	pin, err := a.caPin()
	if err != nil {
		return err
	}
	keyPin, err := a.keyPin()
	if err != nil {
		return err
	}
	ic, err := db.CreateInstallCommand(ctx(cmd), in)
	if err != nil {
		return err
	}
	command := ops.AgentCommand(urls, ic.Key, pin)
	install, why := "", "the one-line installer is for Linux hosts"
	if in.OS == wire.OSLinux {
		install, why = ops.AgentInstallLine(mgr, keyPin, urls, ic.Key, pin), ops.InstallLineMissing(mgr, keyPin)
	}
	if a.jsonOut {
		return a.printJSON(struct {
			store.InstallCommand
			Command string `json:"command"`
			Install string `json:"install"`
		}{ic, command, install})
	}
	r.print(ic, command, install, why)
	return nil
}

// target sets the account and cluster of in and returns the URLs the
// agents are given: the cluster's, or the management host's for direct
// agents.
func (r *installCreate) target(cmd *cobra.Command, db *store.DB, in *store.InstallInput, mgr string) ([]string, error) {
	if r.cluster == "" {
		acct, err := r.a.resolveAccount(cmd, r.account)
		if err != nil {
			return nil, err
		}
		in.AccountID = acct.ID
		return []string{mgr}, nil
	}
	c, err := r.a.resolveCluster(cmd, r.account, r.cluster)
	if err != nil {
		return nil, err
	}
	in.AccountID, in.ClusterID = c.AccountID, c.ID
	urls, note, err := ops.InstallURLs(ctx(cmd), db, &c, "")
	if err != nil {
		return nil, err
	}
	if note != "" {
		r.a.notef("note: %s", clean(note))
	}
	return urls, nil
}

func (r *installCreate) print(ic store.InstallCommand, command, install, why string) {
	a := r.a
	target := "direct connection"
	if ic.Cluster != "" {
		target = "cluster " + clean(ic.Cluster)
	}
	head := fmt.Sprintf("install command %d for %s (%s, expires at %s)", ic.ID, target, ic.OS, fmtTime(ic.ExpiresAt))
	if install != "" {
		a.printf("%s; on each host, as root (installs /usr/local/bin/outpost and the outpost-agent systemd service):\n\n  %s\n\n", head, install)
		a.printf("or, where outpost is already installed:\n\n  %s\n\n", command)
	} else {
		a.notef("note: %s", why)
		a.printf("%s; run on each host:\n\n  %s\n\n", head, command)
	}
	a.printf("the key is shown only now; revoke it with: outpost installcmd revoke %d\n", ic.ID)
}

func newInstallListCmd(a *app) *cobra.Command {
	var account string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List install commands, newest first",
		Args:  nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, id, err := a.storeAccount(cmd, account)
			if err != nil {
				return err
			}
			ics, err := db.ListInstallCommands(ctx(cmd), id)
			if err != nil {
				return err
			}
			if done, err := listed(a, ics, "no install command yet: create one with 'outpost installcmd create --cluster N'"); done {
				return err
			}
			var rows [][]string
			for _, ic := range ics {
				cl := ic.Cluster
				if ic.ClusterID == 0 {
					cl = "(direct)"
				}
				rows = append(rows, []string{fmt.Sprint(ic.ID), cl, ic.KeyPrefix + "…", string(ic.OS), orDash(ic.Group), orDash(ic.Provider),
					yesNo(ic.ImageMode), fmt.Sprint(ic.Uses), fmtTime(ic.ExpiresAt), string(ic.State())})
			}
			a.printTable([]string{"ID", "CLUSTER", "KEY", "OS", "GROUP", "PROVIDER", "IMAGE", "USES", "EXPIRES", "STATE"}, rows)
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "only this account's install commands")
	return cmd
}

func newInstallRevokeCmd(a *app) *cobra.Command {
	var account string
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an install command; agents it enrolled keep working",
		Args:  nargs(1, 1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("install command id", args[0])
			if err != nil {
				return err
			}
			db, acct, err := a.storeAccount(cmd, account)
			if err != nil {
				return err
			}
			if err := db.RevokeInstallCommand(ctx(cmd), acct, id); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"revoked": "installcmd", "id": id})
			}
			a.printf("install command %d revoked\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "account of the install command")
	return cmd
}
