-- When the dossier was last decided (first decision or review), for
-- processing-time figures.
ALTER TABLE dossiers ADD COLUMN decided_at INTEGER;
