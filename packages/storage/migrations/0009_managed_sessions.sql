-- Sessions of the Managed Agents API: the agent version a session pinned (the API's Agent object and
-- the config the loop runs with), its environment, the fields a client sets, archiving, and usage
-- totals kept up to date by every append (so listing sessions reads no events). Sessions created
-- before the API keep NULL in agent/agent_config/environment_id.

ALTER TABLE sessions
  ADD COLUMN agent jsonb,
  ADD COLUMN agent_config jsonb,
  ADD COLUMN agent_id text GENERATED ALWAYS AS (agent ->> 'id') STORED,
  ADD COLUMN environment_id text,
  ADD COLUMN title text,
  ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  ADD COLUMN vault_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
  ADD COLUMN resources jsonb NOT NULL DEFAULT '[]'::jsonb,
  ADD COLUMN archived_at timestamptz,
  ADD COLUMN input_tokens bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
  ADD COLUMN output_tokens bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0);

CREATE INDEX sessions_org_agent_idx ON sessions (org_id, agent_id, created_at) WHERE agent_id IS NOT NULL;

-- Usage totals of the sessions that exist already, from their model calls.
UPDATE sessions SET input_tokens = totals.input_tokens, output_tokens = totals.output_tokens
FROM (
  SELECT session_id,
    sum((payload -> 'usage' ->> 'inputTokens')::bigint) AS input_tokens,
    sum((payload -> 'usage' ->> 'outputTokens')::bigint) AS output_tokens
  FROM session_events WHERE type = 'message.end' GROUP BY session_id
) AS totals
WHERE totals.session_id = sessions.id;
