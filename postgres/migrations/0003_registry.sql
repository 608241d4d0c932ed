-- Model registry, MLflow 3 logged models and the artifact index. Times
-- are BIGINT milliseconds since the epoch, the unit MLflow's API uses.
-- Child tables reference their parent with ON UPDATE CASCADE so that a
-- rename can move a model's versions in one statement, and ON DELETE
-- CASCADE so that deleting a workspace takes its registry with it. Text
-- that is ordered, range-scanned or pattern-matched uses COLLATE "C":
-- byte order, which the artifact prefix scan relies on, and ASCII-only
-- case folding in ILIKE, as in SQLite.

CREATE TABLE registered_models (
	workspace         TEXT COLLATE "C" NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	name              TEXT COLLATE "C" NOT NULL,
	description       TEXT NOT NULL,
	user_id           TEXT NOT NULL,
	creation_time     BIGINT NOT NULL,
	last_updated_time BIGINT NOT NULL,
	-- The highest version number ever assigned. Versions are numbered
	-- from it, so a number is never handed out twice, even after the
	-- newest version is deleted; incrementing it locks the row, which
	-- serialises concurrent registrations.
	last_version      BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (workspace, name)
);

CREATE TABLE registered_model_tags (
	workspace TEXT COLLATE "C" NOT NULL,
	name      TEXT COLLATE "C" NOT NULL,
	key       TEXT COLLATE "C" NOT NULL,
	value     TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (workspace, name, key),
	FOREIGN KEY (workspace, name) REFERENCES registered_models (workspace, name)
		ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE model_versions (
	workspace         TEXT COLLATE "C" NOT NULL,
	name              TEXT COLLATE "C" NOT NULL,
	version           BIGINT NOT NULL,
	source            TEXT COLLATE "C" NOT NULL,
	run_id            TEXT COLLATE "C" NOT NULL,
	run_link          TEXT NOT NULL,
	model_id          TEXT COLLATE "C" NOT NULL,
	description       TEXT NOT NULL,
	user_id           TEXT NOT NULL,
	status            TEXT NOT NULL,
	status_message    TEXT NOT NULL,
	current_stage     TEXT COLLATE "C" NOT NULL DEFAULT 'None',
	creation_time     BIGINT NOT NULL,
	last_updated_time BIGINT NOT NULL,
	type              TEXT NOT NULL DEFAULT 'mlflow_model',
	PRIMARY KEY (workspace, name, version),
	FOREIGN KEY (workspace, name) REFERENCES registered_models (workspace, name)
		ON DELETE CASCADE ON UPDATE CASCADE
);

-- The newest version per stage (latest_versions) is one index probe per
-- stage.
CREATE INDEX model_versions_stage ON model_versions (workspace, name, current_stage, version);
-- search_model_versions("run_id = '...'"), in the search's default
-- order (name, then newest version first), without a sort.
CREATE INDEX model_versions_run_id ON model_versions (workspace, run_id, name, version DESC);

CREATE TABLE model_version_tags (
	workspace TEXT COLLATE "C" NOT NULL,
	name      TEXT COLLATE "C" NOT NULL,
	version   BIGINT NOT NULL,
	key       TEXT COLLATE "C" NOT NULL,
	value     TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (workspace, name, version, key),
	FOREIGN KEY (workspace, name, version) REFERENCES model_versions (workspace, name, version)
		ON DELETE CASCADE ON UPDATE CASCADE
);

-- An alias points at an existing version; deleting the version drops it.
CREATE TABLE registered_model_aliases (
	workspace TEXT COLLATE "C" NOT NULL,
	name      TEXT COLLATE "C" NOT NULL,
	alias     TEXT COLLATE "C" NOT NULL,
	version   BIGINT NOT NULL,
	PRIMARY KEY (workspace, name, alias),
	FOREIGN KEY (workspace, name, version) REFERENCES model_versions (workspace, name, version)
		ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE INDEX registered_model_aliases_version ON registered_model_aliases (workspace, name, version);

-- experiment_id (numeric, as the tracking store numbers experiments) and
-- source_run_id name tracking rows but carry no foreign key: logged models
-- are kept whatever happens to the run.
CREATE TABLE logged_models (
	workspace         TEXT COLLATE "C" NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	model_id          TEXT COLLATE "C" NOT NULL,
	experiment_id     BIGINT NOT NULL,
	name              TEXT COLLATE "C" NOT NULL,
	artifact_uri      TEXT NOT NULL,
	status            TEXT COLLATE "C" NOT NULL DEFAULT 'LOGGED_MODEL_PENDING',
	status_message    TEXT NOT NULL,
	creator_id        TEXT NOT NULL,
	model_type        TEXT COLLATE "C" NOT NULL,
	source_run_id     TEXT COLLATE "C" NOT NULL,
	creation_time     BIGINT NOT NULL,
	last_updated_time BIGINT NOT NULL,
	PRIMARY KEY (workspace, model_id)
);

CREATE INDEX logged_models_experiment ON logged_models (workspace, experiment_id, creation_time);

CREATE TABLE logged_model_tags (
	workspace TEXT COLLATE "C" NOT NULL,
	model_id  TEXT COLLATE "C" NOT NULL,
	key       TEXT COLLATE "C" NOT NULL,
	value     TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (workspace, model_id, key),
	FOREIGN KEY (workspace, model_id) REFERENCES logged_models (workspace, model_id) ON DELETE CASCADE
);

CREATE TABLE logged_model_params (
	workspace TEXT COLLATE "C" NOT NULL,
	model_id  TEXT COLLATE "C" NOT NULL,
	key       TEXT COLLATE "C" NOT NULL,
	value     TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (workspace, model_id, key),
	FOREIGN KEY (workspace, model_id) REFERENCES logged_models (workspace, model_id) ON DELETE CASCADE
);

-- The artifact tree: path to blob digest. Listing a directory is a range
-- scan of the primary key, which byte order (COLLATE "C") makes exact.
CREATE TABLE artifacts (
	workspace  TEXT COLLATE "C" NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	path       TEXT COLLATE "C" NOT NULL,
	digest     TEXT NOT NULL,
	size       BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (workspace, path)
);
