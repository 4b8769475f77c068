-- The Managed Agents API's Files and Skills resources.
-- api_files: metadata of an uploaded (or session-output) file; the bytes live in the server's BlobStore
-- under `files/<org_id>/<id>`. A file made by a session carries it as its scope (`scope_type = 'session'`).
CREATE TABLE api_files (
  id text PRIMARY KEY,
  -- List order (newest first) and the list cursor: timestamps tie, a sequence does not.
  seq bigint GENERATED ALWAYS AS IDENTITY,
  org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  filename text NOT NULL,
  mime_type text NOT NULL,
  size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  is_downloadable boolean NOT NULL,
  scope_type text CHECK (scope_type IN ('session')),
  scope_id text,
  -- For a session output: its path under /mnt/session/outputs/, so an unchanged file is not stored twice.
  scope_path text,
  created_by_user_id text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at timestamptz,
  CHECK ((scope_type IS NULL) = (scope_id IS NULL))
);
CREATE INDEX api_files_by_org ON api_files (org_id, seq);
CREATE INDEX api_files_by_scope ON api_files (org_id, scope_id, seq) WHERE scope_id IS NOT NULL;

-- api_skills: a skill's identity; its files live in the versioned file store (namespace 'skills',
-- `/<name>/…`), where the latest version is what sessions see. `name` is the immutable slug.
CREATE TABLE api_skills (
  id text PRIMARY KEY,
  seq bigint GENERATED ALWAYS AS IDENTITY,
  org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  name text NOT NULL,
  display_name text NOT NULL,
  source text NOT NULL DEFAULT 'custom',
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- One skill per slug per org: the slug is the skill's folder under /skills.
CREATE UNIQUE INDEX api_skills_name ON api_skills (org_id, name);
CREATE INDEX api_skills_by_org ON api_skills (org_id, seq);

-- One row per version: `id` is a Unix epoch timestamp in microseconds (as the API's versions are),
-- `files` the manifest [{path, version, isExecutable}] naming immutable rows of file_versions.
CREATE TABLE api_skill_versions (
  skill_id text NOT NULL REFERENCES api_skills (id) ON DELETE CASCADE,
  id text NOT NULL CHECK (id ~ '^[0-9]{1,20}$'),
  org_id text NOT NULL,
  name text NOT NULL,
  description text NOT NULL,
  files jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (skill_id, id)
);
