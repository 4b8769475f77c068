-- Database-backed files (skills, memories): one row per file version, plus a head row per path that
-- serializes writers (SELECT ... FOR UPDATE) and answers stat/list without scanning history.
-- `namespace` separates org memories ('memories/org'), a user's private memories ('memories/user/<id>')
-- and org skills ('skills'). Paths are absolute inside their namespace, compared byte-wise (COLLATE "C")
-- so a directory's files form one index range.

CREATE TABLE file_heads (
  org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  namespace text NOT NULL,
  path text COLLATE "C" NOT NULL,
  -- 0 while a first writer holds the row lock and nothing is committed yet.
  version integer NOT NULL CHECK (version >= 0),
  is_deleted boolean NOT NULL,
  size integer NOT NULL CHECK (size >= 0),
  sha256 text,
  -- Strictly increasing per path, so tools' read-before-edit mtime check sees every write.
  mtime_ms bigint NOT NULL,
  PRIMARY KEY (org_id, namespace, path)
);

CREATE TABLE file_versions (
  org_id text NOT NULL,
  namespace text NOT NULL,
  path text COLLATE "C" NOT NULL,
  version integer NOT NULL CHECK (version >= 1),
  is_deleted boolean NOT NULL,
  -- NULL for a tombstone.
  content bytea,
  size integer NOT NULL CHECK (size >= 0),
  sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  author_user_id text,
  session_id text,
  turn integer,
  mtime_ms bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, namespace, path, version),
  FOREIGN KEY (org_id, namespace, path) REFERENCES file_heads (org_id, namespace, path) ON DELETE CASCADE
);
