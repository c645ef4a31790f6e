-- The bank files of a batch, written once when the batch is built (the
-- second officer approves those exact bytes, by the SHA-256 the batch row
-- holds) and kept sealed: what went to the bank stays readable, byte for
-- byte.
CREATE TABLE payment_files (
  batch TEXT NOT NULL REFERENCES payment_batches(id),
  format TEXT NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (batch, format)
);
-- When the "payment sent" notices of an exported batch were queued: a
-- sweep queues the ones still missing (idempotency keys make it safe).
ALTER TABLE payment_batches ADD COLUMN notified_at INTEGER;
UPDATE payment_batches SET notified_at = exported_at WHERE exported_at IS NOT NULL;
