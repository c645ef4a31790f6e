-- Payments: batches built by one finance officer and approved by another,
-- one row per payment (the payee's name and bank details sealed), and the
-- delivery log of the outbox (idempotency keys, the dossier it concerns,
-- the claim taken before sending).
CREATE TABLE payment_batches (
  id TEXT PRIMARY KEY,
  direction TEXT NOT NULL,
  state TEXT NOT NULL,
  currency TEXT NOT NULL,
  count BIGINT NOT NULL,
  total BIGINT NOT NULL,
  file_number BIGINT NOT NULL UNIQUE,
  created_local TEXT NOT NULL,
  execution_date TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  approved_by TEXT,
  approved_at BIGINT,
  pain001_sha256 TEXT,
  cpa005_sha256 TEXT,
  exported_at BIGINT
);
CREATE INDEX payment_batches_created ON payment_batches(created_at);
CREATE TABLE payments (
  reference TEXT PRIMARY KEY,
  batch TEXT NOT NULL REFERENCES payment_batches(id),
  seq BIGINT NOT NULL,
  dossier TEXT NOT NULL,
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT,
  details BYTEA NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX payments_batch ON payments(batch, seq);
CREATE INDEX payments_dossier ON payments(dossier);
ALTER TABLE outbox ADD COLUMN idempotency_key TEXT;
ALTER TABLE outbox ADD COLUMN dossier TEXT;
-- Set just before the SMTP transaction: a mail claimed but never marked
-- sent (a crash in between) is not sent again by itself.
ALTER TABLE outbox ADD COLUMN claimed_at BIGINT;
CREATE UNIQUE INDEX outbox_idempotency ON outbox(idempotency_key);
CREATE INDEX outbox_dossier ON outbox(dossier, id);
