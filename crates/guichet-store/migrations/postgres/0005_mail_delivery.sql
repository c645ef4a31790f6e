-- Delivering the outbox over SMTP: when a mail was sent, how many tries
-- failed, when to try again, and why the last one failed.
ALTER TABLE outbox ADD COLUMN sent_at BIGINT;
ALTER TABLE outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
CREATE INDEX outbox_due ON outbox(sent_at, next_at, id);
