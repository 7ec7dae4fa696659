-- Ids are never reused: a deleted proxy server, cluster, install command,
-- join token or account keeps its number, so old audit lines and printed
-- hints ("outpost proxy delete 3") never point at a newer object. SQLite
-- only guarantees that with AUTOINCREMENT, which needs a table rebuild
-- (the commands table is rebuilt by 0005).
--
-- The rebuild is SQLite's documented one (create new, copy, drop old,
-- rename, recreate indexes and triggers). The migration runs with foreign
-- keys off (DB.migrate), so dropping a parent table neither fails nor fires
-- ON DELETE actions on the rows that reference it, and foreign_key_check
-- must find nothing before the migration commits. The agents table is not
-- rebuilt, so its search triggers (0003) stay as they are.
--
-- Ids already deleted before this migration are recovered where the audit
-- log names them (proxy.join "proxy=N", proxy/N, installcmd.create "id=N",
-- installcmd/N), so that they are not handed out again either.

CREATE TABLE accounts_new (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	name       TEXT    NOT NULL UNIQUE,
	key_hash   TEXT    NOT NULL UNIQUE, -- sha256 of the verification key
	created_at INTEGER NOT NULL
);
INSERT INTO accounts_new (id, name, key_hash, created_at) SELECT id, name, key_hash, created_at FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_new RENAME TO accounts;

CREATE TABLE clusters_new (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id    INTEGER NOT NULL REFERENCES accounts(id),
	name          TEXT    NOT NULL,
	address       TEXT    NOT NULL,
	address_kind  TEXT    NOT NULL CHECK (address_kind IN ('ip', 'domain')),
	region        TEXT    NOT NULL DEFAULT '',
	remark        TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	mode          TEXT    NOT NULL DEFAULT 'forward' CHECK (mode IN ('forward', 'cache')),
	bandwidth_bps INTEGER NOT NULL DEFAULT 0 CHECK (bandwidth_bps >= 0),
	frequency_rps INTEGER NOT NULL DEFAULT 0 CHECK (frequency_rps >= 0),
	cache_dir     TEXT    NOT NULL DEFAULT '',
	cache_max     INTEGER NOT NULL DEFAULT 0 CHECK (cache_max >= 0 AND cache_max <= 10000000000),
	link_bps      INTEGER NOT NULL DEFAULT 0 CHECK (link_bps >= 0),
	upstream      TEXT    NOT NULL DEFAULT '',
	UNIQUE (account_id, name)
);
INSERT INTO clusters_new (id, account_id, name, address, address_kind, region, remark, created_at, mode, bandwidth_bps, frequency_rps,
	cache_dir, cache_max, link_bps, upstream)
SELECT id, account_id, name, address, address_kind, region, remark, created_at, mode, bandwidth_bps, frequency_rps,
	cache_dir, cache_max, link_bps, upstream FROM clusters;
DROP TABLE clusters; -- drops the clusters_immutable trigger with it
ALTER TABLE clusters_new RENAME TO clusters;

-- Name and address are fixed at creation (seed 000), as in 0001.
CREATE TRIGGER clusters_immutable BEFORE UPDATE OF account_id, name, address ON clusters
WHEN NEW.account_id IS NOT OLD.account_id OR NEW.name IS NOT OLD.name OR NEW.address IS NOT OLD.address
BEGIN
	SELECT RAISE(ABORT, 'cluster name and address cannot be changed after creation');
END;

CREATE TABLE proxies_new (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	cluster_id  INTEGER NOT NULL REFERENCES clusters(id),
	hostname    TEXT    NOT NULL,
	ip          TEXT    NOT NULL DEFAULT '',
	version     TEXT    NOT NULL DEFAULT '',
	deploy      TEXT    NOT NULL CHECK (deploy IN ('quick', 'manual')),
	asset_id    TEXT    REFERENCES agents(id) ON DELETE SET NULL,
	secret_hash TEXT    NOT NULL,
	urls        TEXT    NOT NULL DEFAULT '', -- comma-separated URLs agents use
	created_at  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL DEFAULT 0,
	agents      INTEGER NOT NULL DEFAULT 0,
	load        REAL    NOT NULL DEFAULT 0
);
INSERT INTO proxies_new (id, cluster_id, hostname, ip, version, deploy, asset_id, secret_hash, urls, created_at, last_seen, agents, load)
SELECT id, cluster_id, hostname, ip, version, deploy, asset_id, secret_hash, urls, created_at, last_seen, agents, load FROM proxies;
DROP TABLE proxies;
ALTER TABLE proxies_new RENAME TO proxies;
CREATE INDEX proxies_cluster ON proxies(cluster_id);

CREATE TABLE install_commands_new (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id  INTEGER NOT NULL REFERENCES accounts(id),
	cluster_id  INTEGER REFERENCES clusters(id) ON DELETE CASCADE,
	key_hash    TEXT    NOT NULL UNIQUE,
	key_prefix  TEXT    NOT NULL,
	expires_at  INTEGER NOT NULL,
	provider    TEXT    NOT NULL DEFAULT '',
	grp         TEXT    NOT NULL DEFAULT '',
	os          TEXT    NOT NULL DEFAULT 'linux' CHECK (os IN ('linux', 'windows')),
	image_mode  INTEGER NOT NULL DEFAULT 0,
	uses        INTEGER NOT NULL DEFAULT 0,
	revoked_at  INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL
);
INSERT INTO install_commands_new (id, account_id, cluster_id, key_hash, key_prefix, expires_at, provider, grp, os, image_mode, uses,
	revoked_at, created_at)
SELECT id, account_id, cluster_id, key_hash, key_prefix, expires_at, provider, grp, os, image_mode, uses, revoked_at, created_at
FROM install_commands;
DROP TABLE install_commands;
ALTER TABLE install_commands_new RENAME TO install_commands;

CREATE TABLE join_tokens_new (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
	token_hash TEXT    NOT NULL UNIQUE,
	deploy     TEXT    NOT NULL CHECK (deploy IN ('quick', 'manual')),
	asset_id   TEXT    REFERENCES agents(id) ON DELETE CASCADE,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL DEFAULT 0,
	proxy_id   INTEGER REFERENCES proxies(id) ON DELETE SET NULL,
	created_at INTEGER NOT NULL
);
INSERT INTO join_tokens_new (id, cluster_id, token_hash, deploy, asset_id, expires_at, used_at, proxy_id, created_at)
SELECT id, cluster_id, token_hash, deploy, asset_id, expires_at, used_at, proxy_id, created_at FROM join_tokens;
DROP TABLE join_tokens;
ALTER TABLE join_tokens_new RENAME TO join_tokens;

-- Recover ids deleted before this migration from the audit log. The copies
-- above set sqlite_sequence to each table's highest surviving id.
INSERT INTO sqlite_sequence (name, seq)
SELECT 'proxies', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'proxies')
UNION ALL
SELECT 'install_commands', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'install_commands');

UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(n), 0) FROM (
	SELECT CAST(substr(detail, 7) AS INTEGER) AS n FROM audit WHERE action = 'proxy.join' AND detail LIKE 'proxy=%'
	UNION ALL
	SELECT CAST(substr(target, 7) AS INTEGER) FROM audit WHERE target LIKE 'proxy/%')))
WHERE name = 'proxies';

UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(n), 0) FROM (
	SELECT CAST(substr(detail, 4) AS INTEGER) AS n FROM audit WHERE action = 'installcmd.create' AND detail LIKE 'id=%'
	UNION ALL
	SELECT CAST(substr(target, 12) AS INTEGER) FROM audit WHERE target LIKE 'installcmd/%')))
WHERE name = 'install_commands';

-- Online and connected-now counts of a cluster test uninstall_at too
-- (an uninstalled agent is neither): keep them index-only.
DROP INDEX agents_cluster_seen;
CREATE INDEX agents_cluster_seen ON agents(cluster_id, last_checkin, account_id, uninstall_at);
