-- MLflow tracking: experiments, runs, and the params, tags, metrics and
-- datasets runs log. Times are INTEGER milliseconds since the epoch, the
-- unit MLflow sends and returns. Experiment ids are numbered within a
-- workspace, so each workspace is its own MLflow namespace; run ids are
-- random and unique across workspaces.
--
-- Runs reference their experiment by (workspace, experiment_id), so
-- deleting a workspace cascades through experiments to runs and from runs
-- to everything they logged.

CREATE TABLE experiments (
	workspace         TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	experiment_id     INTEGER NOT NULL,
	name              TEXT NOT NULL,
	artifact_location TEXT NOT NULL,
	lifecycle_stage   TEXT NOT NULL,
	creation_time     INTEGER NOT NULL,
	last_update_time  INTEGER NOT NULL,
	PRIMARY KEY (workspace, experiment_id),
	-- A deleted experiment keeps its name, as in MLflow.
	UNIQUE (workspace, name)
) STRICT;

CREATE TABLE experiment_tags (
	workspace     TEXT NOT NULL,
	experiment_id INTEGER NOT NULL,
	key           TEXT NOT NULL,
	value         TEXT NOT NULL,
	PRIMARY KEY (workspace, experiment_id, key),
	FOREIGN KEY (workspace, experiment_id)
		REFERENCES experiments (workspace, experiment_id) ON DELETE CASCADE
) STRICT;

CREATE TABLE runs (
	run_id          TEXT PRIMARY KEY,
	workspace       TEXT NOT NULL,
	experiment_id   INTEGER NOT NULL,
	name            TEXT NOT NULL,
	user_id         TEXT NOT NULL,
	status          TEXT NOT NULL,
	start_time      INTEGER NOT NULL,
	end_time        INTEGER,
	artifact_uri    TEXT NOT NULL,
	lifecycle_stage TEXT NOT NULL,
	FOREIGN KEY (workspace, experiment_id)
		REFERENCES experiments (workspace, experiment_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Serves search's default order (start_time DESC, run_id ASC) within an
-- experiment straight from the index, which also covers the lifecycle
-- check, so that only runs that pass it are read.
CREATE INDEX runs_experiment_start ON runs (workspace, experiment_id, start_time DESC, run_id, lifecycle_stage);

-- Params, tags and latest metrics repeat their run's workspace and
-- experiment (neither ever changes), so that the indexes search uses cover
-- one experiment's runs only, however many other experiments log the same
-- keys. (PostgreSQL indexes a prefix of param and tag values, which can be
-- longer than its index entries; SQLite has no such limit and indexes the
-- values whole, which it scans far faster than an expression.)
CREATE TABLE params (
	run_id        TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	workspace     TEXT NOT NULL,
	experiment_id INTEGER NOT NULL,
	key           TEXT NOT NULL,
	value         TEXT NOT NULL,
	PRIMARY KEY (run_id, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX params_key_value ON params (workspace, experiment_id, key, value);

CREATE TABLE tags (
	run_id        TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	workspace     TEXT NOT NULL,
	experiment_id INTEGER NOT NULL,
	key           TEXT NOT NULL,
	value         TEXT NOT NULL,
	PRIMARY KEY (run_id, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX tags_key_value ON tags (workspace, experiment_id, key, value);

-- Metric history. SQLite turns a NaN REAL into NULL, so NaN is stored as
-- value 0 with is_nan set (MLflow's representation); infinities are stored
-- as they are. The key doubles as the history's order and drops exact
-- repeats, as MLflow does.
CREATE TABLE metrics (
	run_id         TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	key            TEXT NOT NULL,
	step           INTEGER NOT NULL,
	timestamp      INTEGER NOT NULL,
	value          REAL NOT NULL,
	is_nan         INTEGER NOT NULL,
	model_id       TEXT NOT NULL,
	dataset_name   TEXT NOT NULL,
	dataset_digest TEXT NOT NULL,
	PRIMARY KEY (run_id, key, step, timestamp, value, is_nan)
) STRICT, WITHOUT ROWID;

-- The latest value of each metric of a run, kept up to date by the
-- transaction that logs the metric, so reading and searching runs never
-- scans history.
CREATE TABLE latest_metrics (
	run_id        TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	workspace     TEXT NOT NULL,
	experiment_id INTEGER NOT NULL,
	key           TEXT NOT NULL,
	value         REAL NOT NULL,
	is_nan        INTEGER NOT NULL,
	timestamp     INTEGER NOT NULL,
	step          INTEGER NOT NULL,
	PRIMARY KEY (run_id, key)
) STRICT, WITHOUT ROWID;

-- is_nan last makes the index cover the NaN check of a search.
CREATE INDEX latest_metrics_key_value ON latest_metrics (workspace, experiment_id, key, value, is_nan);

-- Datasets a run used. context copies the input's mlflow.data.context tag,
-- NULL without one, so that datasets.context is searchable; tags holds all
-- the input's tags as JSON.
CREATE TABLE run_inputs (
	run_id      TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	name        TEXT NOT NULL,
	digest      TEXT NOT NULL,
	source_type TEXT NOT NULL,
	source      TEXT NOT NULL,
	schema      TEXT NOT NULL,
	profile     TEXT NOT NULL,
	context     TEXT,
	tags        TEXT NOT NULL,
	PRIMARY KEY (run_id, name, digest)
) STRICT;

CREATE INDEX run_inputs_name_digest ON run_inputs (name, digest);

CREATE TABLE run_outputs (
	run_id   TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	model_id TEXT NOT NULL,
	step     INTEGER NOT NULL,
	PRIMARY KEY (run_id, model_id, step)
) STRICT;
