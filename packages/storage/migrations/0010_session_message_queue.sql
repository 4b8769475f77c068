-- Messages sent while a turn runs wait in a queue and start their own turns, in order, when it ends.
-- The queue holds the seqs of their `message.queue` events (the text stays in the event log), oldest
-- first; it changes only under the session row's lock, with the status, so no message jumps the queue.
ALTER TABLE sessions ADD COLUMN queued_seqs bigint[] NOT NULL DEFAULT '{}';
