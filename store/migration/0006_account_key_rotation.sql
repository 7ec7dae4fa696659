-- When each account's verification key was made, so an operator can see
-- how old it is and rotate it (outpost account rotate-key).
ALTER TABLE accounts ADD COLUMN key_created_at INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET key_created_at = created_at;
