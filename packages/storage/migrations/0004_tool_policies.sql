-- Per-org tool policy (allow / deny / ask rules), one row per org; no row means "allow everything".
CREATE TABLE tool_policies (
  org_id text PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
  policy jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Liveness of server workers, for taking over the sessions of a worker that died.
CREATE TABLE workers (
  id text PRIMARY KEY,
  version text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);
