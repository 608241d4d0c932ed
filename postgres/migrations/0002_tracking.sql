-- MLflow tracking: experiments, runs, and the params, tags, metrics and
-- datasets runs log. Times are BIGINT milliseconds since the epoch, the
-- unit MLflow sends and returns. Experiment ids are numbered within a
-- workspace, so each workspace is its own MLflow namespace; run ids are
-- random and unique across workspaces. Text that runs are filtered or
-- ordered by uses COLLATE "C", so comparisons and order are by code point,
-- as in SQLite.
--
-- Runs reference their experiment by (workspace, experiment_id), so
-- deleting a workspace cascades through experiments to runs and from runs
-- to everything they logged.

CREATE TABLE experiments (
	workspace         TEXT COLLATE "C" NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	experiment_id     BIGINT NOT NULL,
	name              TEXT COLLATE "C" NOT NULL,
	artifact_location TEXT COLLATE "C" NOT NULL,
	lifecycle_stage   TEXT COLLATE "C" NOT NULL,
	creation_time     BIGINT NOT NULL,
	last_update_time  BIGINT NOT NULL,
	PRIMARY KEY (workspace, experiment_id),
	-- A deleted experiment keeps its name, as in MLflow.
	UNIQUE (workspace, name)
);

CREATE TABLE experiment_tags (
	workspace     TEXT COLLATE "C" NOT NULL,
	experiment_id BIGINT NOT NULL,
	key           TEXT COLLATE "C" NOT NULL,
	value         TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (workspace, experiment_id, key),
	FOREIGN KEY (workspace, experiment_id)
		REFERENCES experiments (workspace, experiment_id) ON DELETE CASCADE
);

CREATE TABLE runs (
	run_id          TEXT COLLATE "C" PRIMARY KEY,
	workspace       TEXT COLLATE "C" NOT NULL,
	experiment_id   BIGINT NOT NULL,
	name            TEXT COLLATE "C" NOT NULL,
	user_id         TEXT COLLATE "C" NOT NULL,
	status          TEXT COLLATE "C" NOT NULL,
	start_time      BIGINT NOT NULL,
	end_time        BIGINT,
	artifact_uri    TEXT COLLATE "C" NOT NULL,
	lifecycle_stage TEXT COLLATE "C" NOT NULL,
	FOREIGN KEY (workspace, experiment_id)
		REFERENCES experiments (workspace, experiment_id) ON DELETE CASCADE
);

-- Serves search's default order (start_time DESC, run_id ASC) within an
-- experiment straight from the index, which also covers the lifecycle
-- check, so that only runs that pass it are read.
CREATE INDEX runs_experiment_start ON runs (workspace, experiment_id, start_time DESC, run_id, lifecycle_stage);

-- Params, tags and latest metrics repeat their run's workspace and
-- experiment (neither ever changes), so that the indexes search uses cover
-- one experiment's runs only, however many other experiments log the same
-- keys. Params and tags index a prefix of the value rather than the value
-- itself: values may be up to 8000 characters, more than a PostgreSQL
-- B-tree entry holds (about 2700 bytes). Search matches the prefix through
-- the index and then the whole value.
CREATE TABLE params (
	run_id        TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	workspace     TEXT COLLATE "C" NOT NULL,
	experiment_id BIGINT NOT NULL,
	key           TEXT COLLATE "C" NOT NULL,
	value         TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (run_id, key)
);

CREATE INDEX params_key_value ON params (workspace, experiment_id, key, substr(value, 1, 256));

CREATE TABLE tags (
	run_id        TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	workspace     TEXT COLLATE "C" NOT NULL,
	experiment_id BIGINT NOT NULL,
	key           TEXT COLLATE "C" NOT NULL,
	value         TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (run_id, key)
);

CREATE INDEX tags_key_value ON tags (workspace, experiment_id, key, substr(value, 1, 256));

-- Metric history. NaN is stored as value 0 with is_nan set, the same
-- representation as on SQLite (whose REAL cannot hold NaN), so both engines
-- share their queries; infinities are stored as they are. The key doubles
-- as the history's order and drops exact repeats, as MLflow does.
CREATE TABLE metrics (
	run_id         TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	key            TEXT COLLATE "C" NOT NULL,
	step           BIGINT NOT NULL,
	timestamp      BIGINT NOT NULL,
	value          DOUBLE PRECISION NOT NULL,
	is_nan         BOOLEAN NOT NULL,
	model_id       TEXT NOT NULL,
	dataset_name   TEXT NOT NULL,
	dataset_digest TEXT NOT NULL,
	PRIMARY KEY (run_id, key, step, timestamp, value, is_nan)
);

-- The latest value of each metric of a run, kept up to date by the
-- transaction that logs the metric, so reading and searching runs never
-- scans history.
CREATE TABLE latest_metrics (
	run_id        TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	workspace     TEXT COLLATE "C" NOT NULL,
	experiment_id BIGINT NOT NULL,
	key           TEXT COLLATE "C" NOT NULL,
	value         DOUBLE PRECISION NOT NULL,
	is_nan        BOOLEAN NOT NULL,
	timestamp     BIGINT NOT NULL,
	step          BIGINT NOT NULL,
	PRIMARY KEY (run_id, key)
);

-- is_nan last makes the index cover the NaN check of a search.
CREATE INDEX latest_metrics_key_value ON latest_metrics (workspace, experiment_id, key, value, is_nan);

-- Datasets a run used. context copies the input's mlflow.data.context tag,
-- NULL without one, so that datasets.context is searchable; tags holds all
-- the input's tags as JSON.
CREATE TABLE run_inputs (
	run_id      TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	name        TEXT COLLATE "C" NOT NULL,
	digest      TEXT COLLATE "C" NOT NULL,
	source_type TEXT NOT NULL,
	source      TEXT NOT NULL,
	schema      TEXT NOT NULL,
	profile     TEXT NOT NULL,
	context     TEXT COLLATE "C",
	tags        TEXT NOT NULL,
	PRIMARY KEY (run_id, name, digest)
);

CREATE INDEX run_inputs_name_digest ON run_inputs (name, digest);

CREATE TABLE run_outputs (
	run_id   TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	model_id TEXT COLLATE "C" NOT NULL,
	step     BIGINT NOT NULL,
	PRIMARY KEY (run_id, model_id, step)
);
