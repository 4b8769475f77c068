-- Secrets vault and the hash-chained audit log.
-- Secrets hold only AES-256-GCM ciphertext; the plaintext never reaches Postgres.

CREATE TABLE secrets (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  -- NULL for an org-wide secret; set for a secret of one user.
  user_id text,
  name text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
  ciphertext bytea NOT NULL,
  nonce bytea NOT NULL CHECK (length(nonce) = 12),
  auth_tag bytea NOT NULL CHECK (length(auth_tag) = 16),
  -- Which master key encrypted the row, so keys can be rotated row by row.
  key_id text NOT NULL,
  version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX secrets_org_name_idx ON secrets (org_id, name) WHERE user_id IS NULL;
CREATE UNIQUE INDEX secrets_user_name_idx ON secrets (org_id, user_id, name) WHERE user_id IS NOT NULL;

-- One row per org: the newest entry's seq and hash. Appends lock it, so they serialize per org.
CREATE TABLE audit_heads (
  org_id text PRIMARY KEY REFERENCES orgs (id),
  last_seq bigint NOT NULL CHECK (last_seq >= 0),
  last_hash text NOT NULL CHECK (last_hash ~ '^[0-9a-f]{64}$')
);

CREATE TABLE audit_entries (
  org_id text NOT NULL REFERENCES orgs (id),
  seq bigint NOT NULL CHECK (seq >= 1),
  kind text NOT NULL CHECK (kind IN ('tool_call', 'secret_use', 'egress', 'approval', 'memory_write')),
  at timestamptz NOT NULL,
  session_id text,
  user_id text,
  data jsonb NOT NULL,
  prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  -- sha256 hex of prev_hash || canonical JSON of the entry (see postgres-audit-log.ts).
  hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  PRIMARY KEY (org_id, seq)
);

-- Append-only in the database too: only someone who can disable triggers can rewrite history,
-- and verifyAuditChain still finds what they changed.
CREATE FUNCTION audit_entries_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_entries is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_entries_append_only
  BEFORE UPDATE OR DELETE ON audit_entries
  FOR EACH ROW EXECUTE FUNCTION audit_entries_reject_change();
CREATE TRIGGER audit_entries_no_truncate
  BEFORE TRUNCATE ON audit_entries
  FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_reject_change();
