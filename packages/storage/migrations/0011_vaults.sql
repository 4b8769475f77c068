-- Vaults and their credentials (the Managed Agents API's /v1/vaults). A credential's values live in
-- `secrets` (AES-256-GCM, as before): `secret_ref` names the row holding its main value, and an
-- mcp_oauth credential's refresh token and client secret are the rows `<secret_ref>__refresh_token`
-- and `<secret_ref>__client_secret`. The row's user is the vault's owner (NULL for an org vault).

CREATE TABLE vaults (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  -- NULL for an org vault; the owner's id for a user's vault.
  user_id text,
  display_name text NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}',
  archived_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX vaults_list_idx ON vaults (org_id, created_at, id);

CREATE TABLE vault_credentials (
  id text PRIMARY KEY,
  vault_id text NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
  org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  display_name text,
  metadata jsonb NOT NULL DEFAULT '{}',
  -- The credential's `auth` as the API shows it: never a value.
  auth jsonb NOT NULL,
  -- The `secrets` row of its value; NULL once archived (archiving purges the values).
  secret_ref text,
  archived_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vault_credentials_list_idx ON vault_credentials (vault_id, created_at, id);

-- Existing secrets become environment_variable credentials of a default vault per scope (one for the
-- org's secrets, one per user with secrets). Their rows stay where they are (the ciphertext is bound
-- to org, user and name), so the org's egress credential rules keep injecting them as before. They
-- substitute their placeholder nowhere else until the owner widens `networking`.
CREATE TEMPORARY TABLE legacy_vaults ON COMMIT DROP AS
  SELECT org_id, user_id,
    'vlt_' || substr(md5(random()::text || clock_timestamp()::text || org_id || coalesce(user_id, '')), 1, 20) AS id
  FROM (SELECT DISTINCT org_id, user_id FROM secrets) AS scopes;

INSERT INTO vaults (id, org_id, user_id, display_name, metadata)
  SELECT id, org_id, user_id,
    CASE WHEN user_id IS NULL THEN 'Org secrets' ELSE 'My secrets' END,
    '{"outrig_migrated_from": "secrets"}'::jsonb
  FROM legacy_vaults;

INSERT INTO vault_credentials (id, vault_id, org_id, display_name, auth, secret_ref, created_at, updated_at)
  SELECT 'vcrd_' || substr(md5(random()::text || clock_timestamp()::text || s.id), 1, 20), v.id, s.org_id,
    s.name,
    jsonb_build_object(
      'type', 'environment_variable',
      'secret_name', s.name,
      'networking', jsonb_build_object('type', 'limited', 'allowed_hosts', '[]'::jsonb),
      'injection_location', jsonb_build_object('header', true, 'body', false)
    ),
    s.name, s.created_at, s.updated_at
  FROM secrets s
  JOIN legacy_vaults v ON v.org_id = s.org_id AND v.user_id IS NOT DISTINCT FROM s.user_id;
