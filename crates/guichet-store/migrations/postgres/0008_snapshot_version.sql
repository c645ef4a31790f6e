-- The version a dossier's sealed snapshot was taken at, when it is older
-- than the dossier: bulk writes (a payment batch schedules 100,000
-- payments, the bank's returns settle them) append their events and move
-- the projection row without re-sealing every snapshot; reading the
-- dossier replays the few events after it. NULL: the snapshot is current.
ALTER TABLE dossiers ADD COLUMN snapshot_version BIGINT;
