-- Per-org egress policy (host allowlist and credential rules naming secrets) and per-org sandbox
-- policy (limits and idle times); one row per org, no row means the server's defaults.
CREATE TABLE egress_policies (
  org_id text PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
  policy jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sandbox_policies (
  org_id text PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
  policy jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Secret writes (set, delete: names only) and policy changes (tool, egress, sandbox) are audited too.
ALTER TABLE audit_entries DROP CONSTRAINT audit_entries_kind_check;
ALTER TABLE audit_entries ADD CONSTRAINT audit_entries_kind_check
  CHECK (kind IN ('tool_call', 'secret_use', 'egress', 'approval', 'memory_write', 'secret_write', 'policy_change'));
