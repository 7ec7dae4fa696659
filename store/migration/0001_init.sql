-- Outpost management store, first schema. Times are Unix milliseconds (UTC).

CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE accounts (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE,
	key_hash   TEXT    NOT NULL UNIQUE, -- sha256 of the verification key
	created_at INTEGER NOT NULL
);

CREATE TABLE clusters (
	id            INTEGER PRIMARY KEY,
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

-- Name and address are fixed at creation (seed 000): enforce it below the
-- application too, so no code path can change them.
CREATE TRIGGER clusters_immutable BEFORE UPDATE OF account_id, name, address ON clusters
WHEN NEW.account_id IS NOT OLD.account_id OR NEW.name IS NOT OLD.name OR NEW.address IS NOT OLD.address
BEGIN
	SELECT RAISE(ABORT, 'cluster name and address cannot be changed after creation');
END;

CREATE TABLE agents (
	id             TEXT    PRIMARY KEY,
	account_id     INTEGER NOT NULL REFERENCES accounts(id),
	secret_hash    TEXT    NOT NULL,
	fingerprint    TEXT    NOT NULL,
	dup_fingerprint TEXT   NOT NULL DEFAULT '',
	dup_at         INTEGER NOT NULL DEFAULT 0,
	hostname       TEXT    NOT NULL,
	ips            TEXT    NOT NULL DEFAULT '',
	os             TEXT    NOT NULL DEFAULT '',
	os_name        TEXT    NOT NULL DEFAULT '',
	arch           TEXT    NOT NULL DEFAULT '',
	provider       TEXT    NOT NULL DEFAULT '',
	region         TEXT    NOT NULL DEFAULT '',
	grp            TEXT    NOT NULL DEFAULT '',
	tags           TEXT    NOT NULL DEFAULT '',
	version        TEXT    NOT NULL DEFAULT '',
	cluster_id     INTEGER REFERENCES clusters(id),
	via_proxy_id   INTEGER REFERENCES proxies(id) ON DELETE SET NULL,
	install_cmd_id INTEGER REFERENCES install_commands(id) ON DELETE SET NULL,
	enrolled_at    INTEGER NOT NULL,
	last_checkin   INTEGER NOT NULL DEFAULT 0,
	last_inventory INTEGER NOT NULL DEFAULT 0,
	processes      INTEGER NOT NULL DEFAULT 0,
	ports          INTEGER NOT NULL DEFAULT 0,
	root_users     INTEGER NOT NULL DEFAULT 0,
	users          INTEGER NOT NULL DEFAULT 0,
	vulns          INTEGER NOT NULL DEFAULT 0,
	baseline_risks INTEGER NOT NULL DEFAULT 0,
	alerts         INTEGER NOT NULL DEFAULT 0,
	cpu            REAL    NOT NULL DEFAULT 0,
	mem            REAL    NOT NULL DEFAULT 0,
	uninstall_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX agents_account_host   ON agents(account_id, hostname);
CREATE INDEX agents_cluster_host   ON agents(cluster_id, hostname);
CREATE INDEX agents_cluster_seen   ON agents(cluster_id, last_checkin);
CREATE INDEX agents_account_seen   ON agents(account_id, last_checkin);
CREATE INDEX agents_hostname       ON agents(hostname);
CREATE INDEX agents_via            ON agents(via_proxy_id);

CREATE TABLE proxies (
	id          INTEGER PRIMARY KEY,
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
CREATE INDEX proxies_cluster ON proxies(cluster_id);

CREATE TABLE install_commands (
	id          INTEGER PRIMARY KEY,
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

CREATE TABLE join_tokens (
	id         INTEGER PRIMARY KEY,
	cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
	token_hash TEXT    NOT NULL UNIQUE,
	deploy     TEXT    NOT NULL CHECK (deploy IN ('quick', 'manual')),
	asset_id   TEXT    REFERENCES agents(id) ON DELETE CASCADE,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL DEFAULT 0,
	proxy_id   INTEGER REFERENCES proxies(id) ON DELETE SET NULL,
	created_at INTEGER NOT NULL
);

-- Pending work for an agent (delivered through check-in) or a proxy
-- (delivered through its heartbeat).
CREATE TABLE commands (
	id           INTEGER PRIMARY KEY,
	target_kind  TEXT    NOT NULL CHECK (target_kind IN ('agent', 'proxy')),
	target_id    TEXT    NOT NULL,
	type         TEXT    NOT NULL,
	payload      TEXT    NOT NULL DEFAULT '{}',
	created_at   INTEGER NOT NULL,
	delivered_at INTEGER NOT NULL DEFAULT 0,
	acked_at     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX commands_pending ON commands(target_kind, target_id, acked_at);

CREATE TABLE bind_batches (
	id         INTEGER PRIMARY KEY,
	cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
	hosts      INTEGER NOT NULL,
	source     TEXT    NOT NULL CHECK (source IN ('bind', 'install')),
	created_at INTEGER NOT NULL
);
CREATE INDEX bind_batches_cluster ON bind_batches(cluster_id, created_at);

CREATE TABLE releases (
	version      TEXT    PRIMARY KEY,
	sha256       TEXT    NOT NULL DEFAULT '',
	notes        TEXT    NOT NULL DEFAULT '',
	published_at INTEGER NOT NULL
);

CREATE TABLE audit (
	id     INTEGER PRIMARY KEY,
	at     INTEGER NOT NULL,
	actor  TEXT    NOT NULL,
	action TEXT    NOT NULL,
	target TEXT    NOT NULL,
	detail TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit(at);
