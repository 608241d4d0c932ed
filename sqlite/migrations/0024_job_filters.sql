-- The columns a job list filters on, copied from the job document like
-- status, so that the studio's filters read an index instead of decoding
-- every job; each index ends in seq, the list's order.
ALTER TABLE jobs ADD COLUMN experiment TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN compute TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN submitted_by TEXT NOT NULL DEFAULT '';
UPDATE jobs SET
	experiment = COALESCE(json_extract(doc, '$.experiment_name'), ''),
	compute = COALESCE(json_extract(doc, '$.compute'), ''),
	submitted_by = COALESCE(json_extract(doc, '$.submitted_by'), '');
CREATE INDEX jobs_status_seq ON jobs (workspace, parent, status, seq);
CREATE INDEX jobs_experiment_seq ON jobs (workspace, parent, experiment, seq);
CREATE INDEX jobs_compute_seq ON jobs (workspace, parent, compute, seq);
CREATE INDEX jobs_submitted_by_seq ON jobs (workspace, parent, submitted_by, seq);
