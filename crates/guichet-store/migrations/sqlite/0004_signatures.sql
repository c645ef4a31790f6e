-- Signatures: the organization's PKI (sealed), employees' certificates,
-- envelopes and who must sign them.
CREATE TABLE pki (
  id INTEGER PRIMARY KEY,
  material BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE certificates (
  serial TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  subject TEXT NOT NULL,
  certificate BLOB NOT NULL,
  private_key BLOB,
  chain BLOB,
  token TEXT,
  not_after INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER,
  revocation_reason TEXT,
  renewal_reminded_at INTEGER
);
CREATE INDEX certificates_user ON certificates(user_id, created_at);
CREATE TABLE envelopes (
  id TEXT PRIMARY KEY,
  sender TEXT NOT NULL,
  dossier TEXT,
  state TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_link BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  snapshot BLOB NOT NULL
);
CREATE INDEX envelopes_dossier ON envelopes(dossier);
CREATE INDEX envelopes_sender ON envelopes(sender, created_at);
CREATE TABLE envelope_recipients (
  envelope TEXT NOT NULL,
  idx INTEGER NOT NULL,
  user_id TEXT,
  officer INTEGER NOT NULL,
  turn INTEGER NOT NULL,
  PRIMARY KEY (envelope, idx)
);
CREATE INDEX envelope_recipients_user ON envelope_recipients(user_id, turn);
CREATE INDEX envelope_recipients_officer ON envelope_recipients(officer, turn);
CREATE TABLE signing_links (
  token_hash BLOB PRIMARY KEY,
  envelope TEXT NOT NULL,
  idx INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  code_hash BLOB,
  code_expires INTEGER,
  tries INTEGER NOT NULL
);
CREATE INDEX signing_links_envelope ON signing_links(envelope, idx);
CREATE TABLE templates (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  name TEXT NOT NULL,
  definition TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
