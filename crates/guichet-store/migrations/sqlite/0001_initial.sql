-- guichet schema, version 1 (SQLite). The PostgreSQL file of the same
-- number creates the same tables with the same columns.
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  roles TEXT NOT NULL,
  language TEXT NOT NULL,
  verified INTEGER NOT NULL,
  active INTEGER NOT NULL,
  totp_secret BLOB,
  created_at INTEGER NOT NULL
);
CREATE TABLE sessions (
  token_hash BLOB PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  csrf TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE api_tokens (
  token_hash BLOB PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE one_time_tokens (
  token_hash BLOB PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  purpose TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  used INTEGER NOT NULL
);
CREATE TABLE login_failures (
  key TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  window_start INTEGER NOT NULL
);
CREATE TABLE programs (
  id TEXT NOT NULL,
  version TEXT NOT NULL,
  source TEXT NOT NULL,
  published_by TEXT NOT NULL,
  published_at INTEGER NOT NULL,
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
  version INTEGER NOT NULL,
  last_link BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  submitted_at INTEGER,
  updated_at INTEGER NOT NULL,
  assignee TEXT,
  decided_by TEXT,
  amount INTEGER,
  flags TEXT NOT NULL,
  snapshot BLOB NOT NULL
);
CREATE INDEX dossiers_queue ON dossiers(program, state, submitted_at, id);
CREATE INDEX dossiers_state ON dossiers(state, submitted_at, id);
CREATE INDEX dossiers_applicant ON dossiers(applicant, created_at);
CREATE TABLE dossier_keys (
  dossier TEXT NOT NULL,
  program TEXT NOT NULL,
  kind TEXT NOT NULL,
  digest BLOB NOT NULL,
  PRIMARY KEY (dossier, kind)
);
CREATE INDEX dossier_keys_lookup ON dossier_keys(program, kind, digest);
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  aggregate TEXT NOT NULL,
  idx INTEGER NOT NULL,
  kind TEXT NOT NULL,
  actor TEXT,
  at INTEGER NOT NULL,
  body BLOB NOT NULL,
  link BLOB NOT NULL,
  UNIQUE (aggregate, idx)
);
CREATE TABLE checkpoints (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  root BLOB NOT NULL,
  signature BLOB NOT NULL,
  public_key BLOB NOT NULL,
  at INTEGER NOT NULL
);
CREATE TABLE blobs (
  sha256 TEXT PRIMARY KEY,
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  recipient TEXT NOT NULL,
  subject TEXT NOT NULL,
  body BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
