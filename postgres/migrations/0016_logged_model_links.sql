-- What links runs and logged models beyond a run's outputs: metrics logged
-- with a model_id, kept per model as MLflow keeps them (its
-- logged_model_metrics: every value, with the run and dataset that logged
-- it, a NaN stored as 0), and logged models a run consumed (log_inputs
-- with models). A logged model's metrics go with the model or the run.
CREATE TABLE logged_model_metrics (
	workspace      TEXT COLLATE "C" NOT NULL,
	model_id       TEXT COLLATE "C" NOT NULL,
	key            TEXT COLLATE "C" NOT NULL,
	timestamp      BIGINT NOT NULL,
	step           BIGINT NOT NULL,
	run_id         TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	value          DOUBLE PRECISION NOT NULL,
	experiment_id  BIGINT NOT NULL,
	dataset_name   TEXT COLLATE "C" NOT NULL,
	dataset_digest TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (workspace, model_id, key, timestamp, step, run_id),
	FOREIGN KEY (workspace, model_id) REFERENCES logged_models (workspace, model_id) ON DELETE CASCADE
);

CREATE INDEX logged_model_metrics_run ON logged_model_metrics (run_id);

CREATE TABLE run_model_inputs (
	run_id   TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
	model_id TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (run_id, model_id)
);

-- Model-version search without an order uses MLflow's: last updated
-- first, then name, then newest version. These serve it for the searches
-- clients run most, by name and by run, without a sort.
CREATE INDEX model_versions_name_updated ON model_versions (workspace, name, last_updated_time DESC, version DESC);
DROP INDEX model_versions_run_id;
CREATE INDEX model_versions_run_id ON model_versions (workspace, run_id, last_updated_time DESC, name, version DESC);
