-- Signed releases: the public half of the operator's ed25519 release
-- signing key (one row at most; the private half never enters the store),
-- and each release's signature over its version and SHA-256.
CREATE TABLE release_key (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	public_key  TEXT    NOT NULL,
	created_at  INTEGER NOT NULL
);
ALTER TABLE releases ADD COLUMN signature TEXT NOT NULL DEFAULT '';
