-- Payments: batches built by one finance officer and approved by another,
-- one row per payment (the payee's name and bank details sealed), and the
-- delivery log of the outbox (idempotency keys, the dossier it concerns,
-- the claim taken before sending).
CREATE TABLE payment_batches (
  id TEXT PRIMARY KEY,
  direction TEXT NOT NULL,
  state TEXT NOT NULL,
  currency TEXT NOT NULL,
  count INTEGER NOT NULL,
  total INTEGER NOT NULL,
  file_number INTEGER NOT NULL UNIQUE,
  created_local TEXT NOT NULL,
  execution_date TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  approved_by TEXT,
  approved_at INTEGER,
  pain001_sha256 TEXT,
  cpa005_sha256 TEXT,
  exported_at INTEGER
);
CREATE INDEX payment_batches_created ON payment_batches(created_at);
CREATE TABLE payments (
  reference TEXT PRIMARY KEY,
  batch TEXT NOT NULL REFERENCES payment_batches(id),
  seq INTEGER NOT NULL,
  dossier TEXT NOT NULL,
  amount INTEGER NOT NULL,
  currency TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT,
  details BLOB NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX payments_batch ON payments(batch, seq);
CREATE INDEX payments_dossier ON payments(dossier);
ALTER TABLE outbox ADD COLUMN idempotency_key TEXT;
ALTER TABLE outbox ADD COLUMN dossier TEXT;
-- Set just before the SMTP transaction: a mail claimed but never marked
-- sent (a crash in between) is not sent again by itself.
ALTER TABLE outbox ADD COLUMN claimed_at INTEGER;
CREATE UNIQUE INDEX outbox_idempotency ON outbox(idempotency_key);
CREATE INDEX outbox_dossier ON outbox(dossier, id);
