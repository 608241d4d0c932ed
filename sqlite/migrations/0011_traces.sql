-- MLflow traces: the record of each traced request, its tags and request
-- metadata, and the assessments (feedback, expectations) made of it. The
-- spans themselves are an artifact the client uploads below the trace's
-- mlflow.artifactLocation tag, as with MLflow's own server. Times are
-- INTEGER milliseconds since the epoch.
--
-- Trace ids are chosen by the client, so they are unique per workspace
-- only. Traces belong to an experiment: deleting the workspace cascades
-- through experiments to traces and from traces to everything below them.

CREATE TABLE traces (
	workspace         TEXT NOT NULL,
	trace_id          TEXT NOT NULL,
	experiment_id     INTEGER NOT NULL,
	client_request_id TEXT NOT NULL,
	request_time      INTEGER NOT NULL,
	-- NULL while a trace started with the v2 API has not ended.
	execution_time    INTEGER,
	state             TEXT NOT NULL,
	request_preview   TEXT NOT NULL,
	response_preview  TEXT NOT NULL,
	PRIMARY KEY (workspace, trace_id),
	FOREIGN KEY (workspace, experiment_id)
		REFERENCES experiments (workspace, experiment_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Serves search's default order (request_time DESC, trace_id ASC) within
-- an experiment from the index, and deletion by age (oldest first).
CREATE INDEX traces_experiment_time ON traces (workspace, experiment_id, request_time DESC, trace_id);

CREATE TABLE trace_tags (
	workspace TEXT NOT NULL,
	trace_id  TEXT NOT NULL,
	key       TEXT NOT NULL,
	value     TEXT NOT NULL,
	PRIMARY KEY (workspace, trace_id, key),
	FOREIGN KEY (workspace, trace_id) REFERENCES traces (workspace, trace_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Filters on a tag ("tags.team = 'nlp'") look up the key first.
CREATE INDEX trace_tags_key ON trace_tags (workspace, key, value);

CREATE TABLE trace_metadata (
	workspace TEXT NOT NULL,
	trace_id  TEXT NOT NULL,
	key       TEXT NOT NULL,
	value     TEXT NOT NULL,
	PRIMARY KEY (workspace, trace_id, key),
	FOREIGN KEY (workspace, trace_id) REFERENCES traces (workspace, trace_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- run_id filters are metadata filters on mlflow.sourceRun.
CREATE INDEX trace_metadata_key ON trace_metadata (workspace, key, value);

-- An assessment is kept as the JSON document MLflow's API spells it: its
-- value is any JSON the client chose.
CREATE TABLE trace_assessments (
	workspace        TEXT NOT NULL,
	trace_id         TEXT NOT NULL,
	assessment_id    TEXT NOT NULL,
	name             TEXT NOT NULL,
	create_time      INTEGER NOT NULL,
	last_update_time INTEGER NOT NULL,
	document         TEXT NOT NULL,
	PRIMARY KEY (workspace, trace_id, assessment_id),
	FOREIGN KEY (workspace, trace_id) REFERENCES traces (workspace, trace_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
