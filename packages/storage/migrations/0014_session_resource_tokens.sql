-- The authorization_token of a session's github_repository resource: AES-256-GCM like `secrets`
-- (sealed with the same master key ring, bound to org, session and resource), never in the session
-- row, never in the sandbox. Only the egress proxy reads the plaintext, to add it to that session's
-- requests to that repository. Gone with its session or resource.
CREATE TABLE session_resource_tokens (
  org_id text NOT NULL,
  session_id text NOT NULL,
  resource_id text NOT NULL,
  ciphertext bytea NOT NULL,
  nonce bytea NOT NULL CHECK (length(nonce) = 12),
  auth_tag bytea NOT NULL CHECK (length(auth_tag) = 16),
  key_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, resource_id),
  FOREIGN KEY (org_id, session_id) REFERENCES sessions (org_id, id) ON DELETE CASCADE
);
