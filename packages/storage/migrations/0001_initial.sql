-- Initial schema. Multi-tenant: every tenant-owned row carries org_id, and cross-table references
-- include org_id (composite FKs), so a row can never point into another org.

CREATE TABLE orgs (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('admin', 'member')),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, id)
);
CREATE INDEX users_org_created_idx ON users (org_id, created_at);

CREATE TABLE api_keys (
  id text PRIMARY KEY,
  org_id text NOT NULL,
  user_id text NOT NULL,
  name text NOT NULL,
  prefix text NOT NULL,
  -- sha256 hex of the whole key; the plaintext is never stored.
  hash text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz,
  UNIQUE (org_id, id),
  FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX api_keys_org_user_idx ON api_keys (org_id, user_id);

CREATE TABLE sessions (
  id text PRIMARY KEY,
  org_id text NOT NULL,
  user_id text NOT NULL,
  model text NOT NULL,
  system text,
  status text NOT NULL CHECK (status IN ('idle', 'running', 'error')),
  turns integer NOT NULL DEFAULT 0 CHECK (turns >= 0),
  last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, id),
  FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_org_created_idx ON sessions (org_id, created_at DESC, id DESC);
CREATE INDEX sessions_org_user_idx ON sessions (org_id, user_id);
-- The one cross-org query: which sessions to resume after a restart. Partial, so it stays small.
CREATE INDEX sessions_running_idx ON sessions (created_at, id) WHERE status = 'running';

CREATE TABLE session_events (
  org_id text NOT NULL,
  session_id text NOT NULL,
  seq bigint NOT NULL CHECK (seq >= 1),
  type text NOT NULL,
  payload jsonb NOT NULL,
  at timestamptz NOT NULL,
  PRIMARY KEY (session_id, seq),
  FOREIGN KEY (org_id, session_id) REFERENCES sessions (org_id, id) ON DELETE CASCADE
);
CREATE INDEX session_events_org_session_idx ON session_events (org_id, session_id);
