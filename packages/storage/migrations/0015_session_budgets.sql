-- A session's spend ceiling (the Managed Agents API's `budget`: {"type":"limit","max_list_cost":{…}}),
-- NULL when it has none. The list cost it is held against is not stored: a session runs one model for
-- its life, so its cost is that model's list price times the token totals kept beside it.
ALTER TABLE sessions ADD COLUMN budget jsonb;
