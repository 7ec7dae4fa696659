-- Command states an operator can see (queued, delivered, running, done,
-- failed with a reason) and bounded retries. The table is rebuilt so that
-- its id is AUTOINCREMENT: a relay's command poll cursor (CommandsAfter)
-- must never meet a reused id.
--
-- acked_at stays the time a command ended (done or failed), so "open"
-- commands are still those with acked_at = 0. attempts counts deliveries,
-- error holds the reason of a failure, updated_at the last change of state
-- (the start of "no answer since").
CREATE TABLE commands_new (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	target_kind  TEXT    NOT NULL CHECK (target_kind IN ('agent', 'proxy')),
	target_id    TEXT    NOT NULL,
	type         TEXT    NOT NULL,
	payload      TEXT    NOT NULL DEFAULT '{}',
	created_at   INTEGER NOT NULL,
	delivered_at INTEGER NOT NULL DEFAULT 0,
	acked_at     INTEGER NOT NULL DEFAULT 0,
	state        TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'delivered', 'running', 'done', 'failed')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	error        TEXT    NOT NULL DEFAULT '',
	updated_at   INTEGER NOT NULL DEFAULT 0
);

INSERT INTO commands_new (id, target_kind, target_id, type, payload, created_at, delivered_at, acked_at, state, attempts, updated_at)
SELECT id, target_kind, target_id, type, payload, created_at, delivered_at, acked_at,
	CASE WHEN acked_at > 0 THEN 'done' WHEN delivered_at > 0 THEN 'delivered' ELSE 'queued' END,
	CASE WHEN delivered_at > 0 THEN 1 ELSE 0 END,
	MAX(created_at, delivered_at, acked_at)
FROM commands;

DROP TABLE commands;
ALTER TABLE commands_new RENAME TO commands;

CREATE INDEX commands_pending ON commands(target_kind, target_id, acked_at);
-- Open commands by age, for the sweep that fails those left unanswered.
CREATE INDEX commands_open ON commands(acked_at, updated_at);
