-- Signatures: the organization's PKI (sealed), employees' certificates,
-- envelopes and who must sign them.
CREATE TABLE pki (
  id BIGINT PRIMARY KEY,
  material BYTEA NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE certificates (
  serial TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  subject TEXT NOT NULL,
  certificate BYTEA NOT NULL,
  private_key BYTEA,
  chain BYTEA,
  token TEXT,
  not_after BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT,
  revocation_reason TEXT,
  renewal_reminded_at BIGINT
);
CREATE INDEX certificates_user ON certificates(user_id, created_at);
CREATE TABLE envelopes (
  id TEXT PRIMARY KEY,
  sender TEXT NOT NULL,
  dossier TEXT,
  state TEXT NOT NULL,
  version BIGINT NOT NULL,
  last_link BYTEA NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  snapshot BYTEA NOT NULL
);
CREATE INDEX envelopes_dossier ON envelopes(dossier);
CREATE INDEX envelopes_sender ON envelopes(sender, created_at);
CREATE TABLE envelope_recipients (
  envelope TEXT NOT NULL,
  idx BIGINT NOT NULL,
  user_id TEXT,
  officer BIGINT NOT NULL,
  turn BIGINT NOT NULL,
  PRIMARY KEY (envelope, idx)
);
CREATE INDEX envelope_recipients_user ON envelope_recipients(user_id, turn);
CREATE INDEX envelope_recipients_officer ON envelope_recipients(officer, turn);
CREATE TABLE signing_links (
  token_hash BYTEA PRIMARY KEY,
  envelope TEXT NOT NULL,
  idx BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  code_hash BYTEA,
  code_expires BIGINT,
  tries BIGINT NOT NULL
);
CREATE INDEX signing_links_envelope ON signing_links(envelope, idx);
CREATE TABLE templates (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  name TEXT NOT NULL,
  definition TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
