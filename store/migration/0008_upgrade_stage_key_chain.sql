-- Upgrades the operator can follow, and release keys that can be rotated.
--
-- commands: a running upgrade reports its stage (downloading, verifying,
-- restarting), and an upgrade whose new version did not come up healthy
-- ends rolled_back (Error says why). The state CHECK cannot be altered in
-- place, so the table is rebuilt as in 0005; its AUTOINCREMENT counter is
-- carried over, because commands deleted with their proxy server may have
-- had the highest ids and a relay's poll cursor must never meet one again.
CREATE TEMP TABLE commands_seq AS SELECT COALESCE(MAX(seq), 0) AS seq FROM sqlite_sequence WHERE name = 'commands';

CREATE TABLE commands_new (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	target_kind  TEXT    NOT NULL CHECK (target_kind IN ('agent', 'proxy')),
	target_id    TEXT    NOT NULL,
	type         TEXT    NOT NULL,
	payload      TEXT    NOT NULL DEFAULT '{}',
	created_at   INTEGER NOT NULL,
	delivered_at INTEGER NOT NULL DEFAULT 0,
	acked_at     INTEGER NOT NULL DEFAULT 0,
	state        TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'delivered', 'running', 'done', 'failed', 'rolled_back')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	error        TEXT    NOT NULL DEFAULT '',
	updated_at   INTEGER NOT NULL DEFAULT 0,
	stage        TEXT    NOT NULL DEFAULT '' -- of a running upgrade
);
INSERT INTO commands_new (id, target_kind, target_id, type, payload, created_at, delivered_at, acked_at, state, attempts, error, updated_at)
SELECT id, target_kind, target_id, type, payload, created_at, delivered_at, acked_at, state, attempts, error, updated_at FROM commands;
DROP TABLE commands;
ALTER TABLE commands_new RENAME TO commands;
CREATE INDEX commands_pending ON commands(target_kind, target_id, acked_at);
CREATE INDEX commands_open ON commands(acked_at, updated_at);

INSERT INTO sqlite_sequence (name, seq) SELECT 'commands', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'commands');
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT seq FROM commands_seq)) WHERE name = 'commands';
DROP TABLE commands_seq;

-- The release key chain, oldest first: each key after the first is signed
-- by the one before it (store.KeyLinkMessage), so a relay or agent that
-- trusts an old key accepts a rotated one only through the chain. The
-- single key of 0007 becomes its root.
CREATE TABLE release_keys (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	public_key TEXT    NOT NULL UNIQUE,
	signature  TEXT    NOT NULL DEFAULT '', -- by the previous key; '' on the root
	created_at INTEGER NOT NULL
);
INSERT INTO release_keys (public_key, signature, created_at) SELECT public_key, '', created_at FROM release_key;
DROP TABLE release_key;
