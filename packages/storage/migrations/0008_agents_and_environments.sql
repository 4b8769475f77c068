-- Managed Agents API: agents (each a chain of immutable versions, optimistic on `current_version`)
-- and environments. Times are kept to the millisecond, as the API shows them, so list cursors built
-- from a shown time land exactly.
CREATE TABLE agents (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  current_version integer NOT NULL CHECK (current_version >= 1),
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
  archived_at timestamptz,
  UNIQUE (org_id, id)
);
CREATE INDEX agents_org_created_idx ON agents (org_id, created_at DESC, id DESC);

CREATE TABLE agent_versions (
  org_id text NOT NULL,
  agent_id text NOT NULL,
  version integer NOT NULL CHECK (version >= 1),
  schema_version integer NOT NULL DEFAULT 1,
  definition jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
  PRIMARY KEY (agent_id, version),
  FOREIGN KEY (org_id, agent_id) REFERENCES agents (org_id, id) ON DELETE CASCADE
);

-- A version, once written, never changes: sessions pin (agent, version) and must see what they pinned.
CREATE FUNCTION agent_versions_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'agent versions are immutable';
END;
$$;
CREATE TRIGGER agent_versions_immutable BEFORE UPDATE ON agent_versions
  FOR EACH ROW EXECUTE FUNCTION agent_versions_are_immutable();

CREATE TABLE environments (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  name text NOT NULL,
  description text,
  scope text NOT NULL DEFAULT 'organization' CHECK (scope IN ('organization', 'account')),
  schema_version integer NOT NULL DEFAULT 1,
  config jsonb NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
  updated_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
  archived_at timestamptz,
  UNIQUE (org_id, id)
);
CREATE INDEX environments_org_created_idx ON environments (org_id, created_at DESC, id DESC);
