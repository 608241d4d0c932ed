-- Schedules: the definition is a JSON document; next_run (Unix
-- milliseconds, 0 when the trigger has no more firings) and enabled are
-- what the scheduler's due query reads.
CREATE TABLE schedules (
	workspace TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	name      TEXT NOT NULL,
	enabled   BOOLEAN NOT NULL,
	next_run  BIGINT NOT NULL,
	doc       TEXT NOT NULL,
	PRIMARY KEY (workspace, name)
);
CREATE INDEX schedules_due ON schedules (enabled, next_run);
