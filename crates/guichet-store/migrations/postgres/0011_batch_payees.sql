-- A batch is the record of its payments. Its payees (name, bank details,
-- remittance, a third party's email) are sealed in slices of 1,000, in the
-- files' order, instead of one sealed value per payment row; a payment row
-- is a lean index (reference, batch, number, dossier, amount, state), its
-- `details` left empty.
CREATE TABLE batch_payees (
  batch TEXT NOT NULL REFERENCES payment_batches(id),
  slice BIGINT NOT NULL,
  body BYTEA NOT NULL,
  PRIMARY KEY (batch, slice)
);
-- The dossier version a payment took: the batch's own event (batch_created,
-- chained in `batch:ID`) schedules the payment of each of its dossiers at
-- that version, in place of an event of each dossier. NULL: scheduled by
-- an event of the dossier (before this migration), or a debit.
ALTER TABLE payments ADD COLUMN version BIGINT;
-- The payment queue's lean projection: each dossier's payment line (payee,
-- bank details, amount, whether and why it cannot be paid), sealed, as the
-- service computed it when it wrote the dossier at `version`. The queue
-- reads these instead of opening every dossier; a line whose version is
-- not its dossier's is not used (the queue opens that dossier instead).
CREATE TABLE payment_lines (
  dossier TEXT PRIMARY KEY REFERENCES dossiers(id),
  version BIGINT NOT NULL,
  body BYTEA NOT NULL
);
-- How a bank file is kept: NULL, as written; `deflate`, compressed (zlib)
-- before it is sealed (a 100,000-payment batch's 67 MB of files take a
-- few MB).
ALTER TABLE payment_files ADD COLUMN encoding TEXT;
