-- Schedules: the definition is a JSON document; next_run (Unix
-- milliseconds, 0 when the trigger has no more firings) and enabled are
-- what the scheduler's due query reads.
CREATE TABLE schedules (
	workspace TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	name      TEXT NOT NULL,
	enabled   INTEGER NOT NULL,
	next_run  INTEGER NOT NULL,
	doc       TEXT NOT NULL,
	PRIMARY KEY (workspace, name)
) STRICT;
CREATE INDEX schedules_due ON schedules (enabled, next_run);
