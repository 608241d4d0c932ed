-- A reuse lookup asks for the newest completed job with a key. Steps with
-- the same definition and inputs (the branches of a fan-out) share one
-- key, so with seq in the index that is one index probe rather than a
-- visit to every earlier job with the key.
DROP INDEX jobs_reuse;
CREATE INDEX jobs_reuse ON jobs (workspace, reuse_key, status, seq);
