-- Roles and session access. A user is an admin, a member or a viewer (read-only). A session belongs to
-- the user who created it (sessions.user_id); its owner can share it with another user of the org as a
-- viewer, an approver or a steerer. Whoever started the running turn is kept, so the turn's tool
-- calls are audited as that person rather than as the owner.

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'member', 'viewer'));

CREATE TABLE session_shares (
  org_id text NOT NULL,
  session_id text NOT NULL,
  user_id text NOT NULL,
  role text NOT NULL CHECK (role IN ('viewer', 'approver', 'steerer')),
  -- Who granted it (the owner or an admin).
  granted_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, user_id),
  FOREIGN KEY (org_id, session_id) REFERENCES sessions (org_id, id) ON DELETE CASCADE,
  FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
-- "Sessions shared with me" for the list route.
CREATE INDEX session_shares_org_user_idx ON session_shares (org_id, user_id);

-- Who started the current turn (NULL: the owner, as every turn before this migration).
ALTER TABLE sessions ADD COLUMN turn_user_id text;

-- Session messages, cancels and shares, and API key changes are audited with the person who did them.
ALTER TABLE audit_entries DROP CONSTRAINT audit_entries_kind_check;
ALTER TABLE audit_entries ADD CONSTRAINT audit_entries_kind_check
  CHECK (kind IN ('tool_call', 'secret_use', 'egress', 'approval', 'memory_write', 'secret_write',
    'policy_change', 'session_message', 'session_cancel', 'session_share', 'api_key'));
