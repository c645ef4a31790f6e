-- guichet schema, version 1 (PostgreSQL). The SQLite file of the same
-- number creates the same tables with the same columns.
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  roles TEXT NOT NULL,
  language TEXT NOT NULL,
  verified BIGINT NOT NULL,
  active BIGINT NOT NULL,
  totp_secret BYTEA,
  created_at BIGINT NOT NULL
);
CREATE TABLE sessions (
  token_hash BYTEA PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  csrf TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE api_tokens (
  token_hash BYTEA PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  name TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE TABLE one_time_tokens (
  token_hash BYTEA PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  purpose TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  used BIGINT NOT NULL
);
CREATE TABLE login_failures (
  key TEXT PRIMARY KEY,
  count BIGINT NOT NULL,
  window_start BIGINT NOT NULL
);
CREATE TABLE programs (
  id TEXT NOT NULL,
  version TEXT NOT NULL,
  source TEXT NOT NULL,
  published_by TEXT NOT NULL,
  published_at BIGINT NOT NULL,
  PRIMARY KEY (id, version)
);
CREATE TABLE current_programs (
  id TEXT PRIMARY KEY,
  version TEXT NOT NULL
);
CREATE TABLE dossiers (
  id TEXT PRIMARY KEY,
  program TEXT NOT NULL,
  program_version TEXT NOT NULL,
  applicant TEXT NOT NULL,
  state TEXT NOT NULL,
  version BIGINT NOT NULL,
  last_link BYTEA NOT NULL,
  created_at BIGINT NOT NULL,
  submitted_at BIGINT,
  updated_at BIGINT NOT NULL,
  assignee TEXT,
  decided_by TEXT,
  amount BIGINT,
  flags TEXT NOT NULL,
  snapshot BYTEA NOT NULL
);
CREATE INDEX dossiers_queue ON dossiers(program, state, submitted_at, id);
CREATE INDEX dossiers_state ON dossiers(state, submitted_at, id);
CREATE INDEX dossiers_applicant ON dossiers(applicant, created_at);
CREATE TABLE dossier_keys (
  dossier TEXT NOT NULL,
  program TEXT NOT NULL,
  kind TEXT NOT NULL,
  digest BYTEA NOT NULL,
  PRIMARY KEY (dossier, kind)
);
CREATE INDEX dossier_keys_lookup ON dossier_keys(program, kind, digest);
CREATE TABLE events (
  seq BIGSERIAL PRIMARY KEY,
  aggregate TEXT NOT NULL,
  idx BIGINT NOT NULL,
  kind TEXT NOT NULL,
  actor TEXT,
  at BIGINT NOT NULL,
  body BYTEA NOT NULL,
  link BYTEA NOT NULL,
  UNIQUE (aggregate, idx)
);
CREATE TABLE checkpoints (
  id BIGSERIAL PRIMARY KEY,
  first_seq BIGINT NOT NULL,
  last_seq BIGINT NOT NULL,
  root BYTEA NOT NULL,
  signature BYTEA NOT NULL,
  public_key BYTEA NOT NULL,
  at BIGINT NOT NULL
);
CREATE TABLE blobs (
  sha256 TEXT PRIMARY KEY,
  media_type TEXT NOT NULL,
  size BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE outbox (
  id BIGSERIAL PRIMARY KEY,
  recipient TEXT NOT NULL,
  subject TEXT NOT NULL,
  body BYTEA NOT NULL,
  created_at BIGINT NOT NULL
);
