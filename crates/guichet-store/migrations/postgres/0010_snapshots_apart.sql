-- A dossier's sealed snapshot in a table of its own: the projection row
-- queues read and bulk writes rewrite (100,000 of them for a payment
-- batch) stays about a hundred bytes instead of carrying the sealed state.
-- Measured with bench/payments/sqlite_floor.py: rewriting 100,000 rows
-- and committing them takes about half as long.
CREATE TABLE dossier_snapshots (
  id TEXT PRIMARY KEY REFERENCES dossiers(id),
  body BYTEA NOT NULL
);
INSERT INTO dossier_snapshots (id, body) SELECT id, snapshot FROM dossiers;
ALTER TABLE dossiers DROP COLUMN snapshot;
