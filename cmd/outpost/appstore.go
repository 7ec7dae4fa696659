package main

// The data directory and the store, the audit actor, the resolution of
// --account and cluster names, and the values generated commands carry
// (manager URL, CA pin, server key pin; built in store/ops).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"outpost/store"
	"outpost/store/ops"
)

// dataDir resolves the data directory: --data, then $OUTPOST_DATA, then
// /var/lib/outpost when it is (or can be created) writable, then
// $HOME/.outpost, then ./outpost-data.
func (a *app) dataDir() string {
	return pickDir(a.dataFlag, "OUTPOST_DATA", defaultDir, homeDirName, "outpost-data")
}

// pickDir resolves a directory: flag, then $env, then sys when it is (or
// can be created) writable, then $HOME/home, then fallback, relative to
// the working directory (the data and the agent directory).
func pickDir(flag, env, sys, home, fallback string) string {
	if flag != "" {
		return flag
	}
	if v := os.Getenv(env); v != "" {
		return v
	}
	if st, err := os.Stat(sys); err == nil {
		if st.IsDir() && writable(sys) {
			return sys
		}
	} else if errors.Is(err, os.ErrNotExist) && writable(filepath.Dir(sys)) {
		return sys
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, home)
	}
	return fallback
}

// store opens DATA/outpost.db on first use (creating the directory and the
// database if needed).
func (a *app) store() (*store.DB, error) {
	if a.db != nil {
		return a.db, nil
	}
	path := filepath.Join(a.dataDir(), dbFileName)
	db, err := store.Open(path, nil)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	a.db = db
	return db, nil
}

func (a *app) close() {
	if a.db != nil {
		a.db.Close()
		a.db = nil
	}
}

// actor names the operator in the audit log: $SUDO_USER or $USER, "@cli".
func actor() string {
	u := os.Getenv("SUDO_USER")
	if u == "" {
		u = os.Getenv("USER")
	}
	if u == "" {
		u = "operator"
	}
	return u + "@cli"
}

// ctx is the context for store calls: the command's (cancelled by SIGINT or
// SIGTERM) with the audit actor.
func ctx(cmd *cobra.Command) context.Context {
	return store.WithActor(cmd.Context(), actor())
}

// resolveAccount returns the --account account; an empty name picks the
// only account.
func (a *app) resolveAccount(cmd *cobra.Command, name string) (store.Account, error) {
	db, err := a.store()
	if err != nil {
		return store.Account{}, err
	}
	return db.FindAccount(ctx(cmd), name)
}

// accountID is 0 (every account) when name is empty.
func (a *app) accountID(cmd *cobra.Command, name string) (int64, error) {
	if name == "" {
		return 0, nil
	}
	acct, err := a.resolveAccount(cmd, name)
	return acct.ID, err
}

// storeAccount opens the store and resolves --account (0 = every account),
// the opening of most list and show commands.
func (a *app) storeAccount(cmd *cobra.Command, account string) (*store.DB, int64, error) {
	db, err := a.store()
	if err != nil {
		return nil, 0, err
	}
	id, err := a.accountID(cmd, account)
	return db, id, err
}

// storeCluster opens the store and resolves the cluster (resolveCluster),
// the opening of the commands on one cluster.
func (a *app) storeCluster(cmd *cobra.Command, account, name string) (*store.DB, store.Cluster, error) {
	db, err := a.store()
	if err != nil {
		return nil, store.Cluster{}, err
	}
	c, err := a.resolveCluster(cmd, account, name)
	return db, c, err
}

// resolveCluster finds a cluster by name, inside --account when given;
// without it a name that is unique across accounts is enough.
func (a *app) resolveCluster(cmd *cobra.Command, account, name string) (store.Cluster, error) {
	db, err := a.store()
	if err != nil {
		return store.Cluster{}, err
	}
	id, err := a.accountID(cmd, account)
	if err != nil {
		return store.Cluster{}, err
	}
	return db.FindCluster(ctx(cmd), id, name)
}

// managerURL is the URL remote relays and direct agents use to reach the
// management host: --manager, else the first https URL of a running relay
// (DATA/run/relay.json), else https://HOSTNAME:8443.
func (a *app) managerURL(flag string) (string, error) {
	u, err := ops.ManagerURL(a.dataDir(), flag)
	if err != nil {
		return "", usageErrorf("invalid --manager %q: want an https:// URL", flag)
	}
	return u, nil
}

// caPin returns the hex SHA-256 of the first certificate in DATA/tls/ca.pem,
// "" when there is none.
func (a *app) caPin() (string, error) { return ops.CAPin(a.dataDir()) }

// keyPin is the curl --pinnedpubkey value of the server key in
// DATA/tls/server.pem, "" when there is none.
func (a *app) keyPin() (string, error) { return ops.ServerKeyPin(a.dataDir()) }
