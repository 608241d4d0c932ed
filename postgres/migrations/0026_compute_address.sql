-- A Ray-backed cluster's Ray dashboard URL, where its Jobs API answers;
-- empty for clusters that run on the server's machine.
ALTER TABLE computes ADD COLUMN address TEXT NOT NULL DEFAULT '';
