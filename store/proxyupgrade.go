package store

import (
	"context"
	"encoding/json"
	"strconv"

	"outpost/relay/wire"
)

// UpgradeProxy queues an upgrade to the latest release. Possible only when
// the proxy is online and older than the latest release (seed 000).
func (db *DB) UpgradeProxy(ctx context.Context, id int64) (string, error) {
	return db.upgradeProxy(ctx, id, false)
}

// ForceUpgradeProxy queues an upgrade to the latest release even when the
// proxy already runs it or a newer version (a downgrade, such as back from
// a bad release after deleting it). The command says so, for the relay,
// which otherwise refuses a version not newer than its own; the audit entry
// is proxy.upgrade.force.
func (db *DB) ForceUpgradeProxy(ctx context.Context, id int64) (string, error) {
	return db.upgradeProxy(ctx, id, true)
}

func (db *DB) upgradeProxy(ctx context.Context, id int64, force bool) (string, error) {
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	p, err := getProxy(tx, id)
	if err != nil {
		return "", err
	}
	latest, err := latestVersion(tx)
	if err != nil {
		return "", err
	}
	switch {
	case p.Status != StatusOnline:
		return "", Errorf(EConflict, "proxy server %d (%s) is offline: bring it online before upgrading", p.ID, p.Hostname)
	case latest == "":
		return "", Errorf(EConflict, "no release is published")
	case force:
	case CompareVersions(p.Version, latest) == 0:
		return "", Errorf(EConflict, "proxy server %d (%s) already runs %s, the latest release", p.ID, p.Hostname, p.Version)
	case CompareVersions(p.Version, latest) > 0:
		return "", Errorf(EConflict, "proxy server %d (%s) runs %s, newer than the latest release %s: nothing to upgrade to", p.ID, p.Hostname, p.Version, latest)
	}
	if c, ok, err := openCommand(tx, TargetProxy, strconv.FormatInt(id, 10), wire.CmdUpgrade); err != nil {
		return "", err
	} else if ok {
		return "", Errorf(EConflict, "proxy server %d (%s) has an upgrade under way (command %d, %s): wait for it to end", p.ID, p.Hostname, c.ID, c.Describe())
	}
	args := map[string]any{"version": latest}
	action := "proxy.upgrade"
	if force {
		args["force"] = true
		action = "proxy.upgrade.force"
	}
	payload, _ := json.Marshal(args)
	if err := enqueue(tx, TargetProxy, strconv.FormatInt(id, 10), wire.CmdUpgrade, string(payload)); err != nil {
		return "", err
	}
	target, err := proxyTarget(tx, p.ClusterID, id)
	if err != nil {
		return "", err
	}
	if err := tx.audit(action, target, "from=%s to=%s", p.Version, latest); err != nil {
		return "", err
	}
	return latest, tx.Commit()
}
