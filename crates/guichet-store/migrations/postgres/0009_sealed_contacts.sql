-- Addresses and names sealed at rest, like the rest of personal data.
-- users.email now holds the keyed digest of the address (hex; UNIQUE as
-- before: one account per address), users.name is empty, and `contact`
-- holds the address and the name, sealed. The outbox's recipient holds
-- the keyed digest of the address, its subject is empty, and `body`
-- holds the address, the subject and the body, sealed (`sealed_head` 1);
-- a delivery error is sealed too. Rows written before this migration are
-- sealed by the store right after it (Store::migrate): `contact` NULL and
-- `sealed_head` 0 mark them, each kind found by a partial index.
ALTER TABLE users ADD COLUMN contact BYTEA;
ALTER TABLE outbox ADD COLUMN sealed_head BIGINT NOT NULL DEFAULT 0;
CREATE INDEX users_in_clear ON users(id) WHERE contact IS NULL;
CREATE INDEX outbox_in_clear ON outbox(id) WHERE sealed_head = 0;
-- Login throttling keys named addresses; they are digests from now on.
-- The counters start again.
DELETE FROM login_failures;
