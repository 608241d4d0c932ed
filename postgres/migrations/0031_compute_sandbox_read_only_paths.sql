-- The folders of a Ray-backed cluster's nodes that its sandboxed steps see
-- read-only (a JSON array of absolute paths).
ALTER TABLE computes ADD COLUMN sandbox_read_only_paths TEXT NOT NULL DEFAULT '[]';
