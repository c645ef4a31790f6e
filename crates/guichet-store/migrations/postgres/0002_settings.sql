-- Organization settings set from the administration screen (name,
-- languages offered, time zone): key and JSON value.
CREATE TABLE organization_settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
