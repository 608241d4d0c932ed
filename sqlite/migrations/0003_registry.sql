-- Model registry, MLflow 3 logged models and the artifact index. Times
-- are INTEGER milliseconds since the epoch, the unit MLflow's API uses.
-- Child tables reference their parent with ON UPDATE CASCADE so that a
-- rename can move a model's versions in one statement, and ON DELETE
-- CASCADE so that deleting a workspace takes its registry with it.

CREATE TABLE registered_models (
	workspace         TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	name              TEXT NOT NULL,
	description       TEXT NOT NULL,
	user_id           TEXT NOT NULL,
	creation_time     INTEGER NOT NULL,
	last_updated_time INTEGER NOT NULL,
	-- The highest version number ever assigned. Versions are numbered
	-- from it, so a number is never handed out twice, even after the
	-- newest version is deleted.
	last_version      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (workspace, name)
) STRICT;

CREATE TABLE registered_model_tags (
	workspace TEXT NOT NULL,
	name      TEXT NOT NULL,
	key       TEXT NOT NULL,
	value     TEXT NOT NULL,
	PRIMARY KEY (workspace, name, key),
	FOREIGN KEY (workspace, name) REFERENCES registered_models (workspace, name)
		ON DELETE CASCADE ON UPDATE CASCADE
) STRICT;

CREATE TABLE model_versions (
	workspace         TEXT NOT NULL,
	name              TEXT NOT NULL,
	version           INTEGER NOT NULL,
	source            TEXT NOT NULL,
	run_id            TEXT NOT NULL,
	run_link          TEXT NOT NULL,
	model_id          TEXT NOT NULL,
	description       TEXT NOT NULL,
	user_id           TEXT NOT NULL,
	status            TEXT NOT NULL,
	status_message    TEXT NOT NULL,
	current_stage     TEXT NOT NULL DEFAULT 'None',
	creation_time     INTEGER NOT NULL,
	last_updated_time INTEGER NOT NULL,
	type              TEXT NOT NULL DEFAULT 'mlflow_model',
	PRIMARY KEY (workspace, name, version),
	FOREIGN KEY (workspace, name) REFERENCES registered_models (workspace, name)
		ON DELETE CASCADE ON UPDATE CASCADE
) STRICT;

-- The newest version per stage (latest_versions) is one index probe per
-- stage.
CREATE INDEX model_versions_stage ON model_versions (workspace, name, current_stage, version);
-- search_model_versions("run_id = '...'"), in the search's default
-- order (name, then newest version first), without a sort.
CREATE INDEX model_versions_run_id ON model_versions (workspace, run_id, name, version DESC);

CREATE TABLE model_version_tags (
	workspace TEXT NOT NULL,
	name      TEXT NOT NULL,
	version   INTEGER NOT NULL,
	key       TEXT NOT NULL,
	value     TEXT NOT NULL,
	PRIMARY KEY (workspace, name, version, key),
	FOREIGN KEY (workspace, name, version) REFERENCES model_versions (workspace, name, version)
		ON DELETE CASCADE ON UPDATE CASCADE
) STRICT;

-- An alias points at an existing version; deleting the version drops it.
CREATE TABLE registered_model_aliases (
	workspace TEXT NOT NULL,
	name      TEXT NOT NULL,
	alias     TEXT NOT NULL,
	version   INTEGER NOT NULL,
	PRIMARY KEY (workspace, name, alias),
	FOREIGN KEY (workspace, name, version) REFERENCES model_versions (workspace, name, version)
		ON DELETE CASCADE ON UPDATE CASCADE
) STRICT;

CREATE INDEX registered_model_aliases_version ON registered_model_aliases (workspace, name, version);

-- experiment_id (numeric, as the tracking store numbers experiments) and
-- source_run_id name tracking rows but carry no foreign key: logged models
-- are kept whatever happens to the run.
CREATE TABLE logged_models (
	workspace         TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	model_id          TEXT NOT NULL,
	experiment_id     INTEGER NOT NULL,
	name              TEXT NOT NULL,
	artifact_uri      TEXT NOT NULL,
	status            TEXT NOT NULL DEFAULT 'LOGGED_MODEL_PENDING',
	status_message    TEXT NOT NULL,
	creator_id        TEXT NOT NULL,
	model_type        TEXT NOT NULL,
	source_run_id     TEXT NOT NULL,
	creation_time     INTEGER NOT NULL,
	last_updated_time INTEGER NOT NULL,
	PRIMARY KEY (workspace, model_id)
) STRICT;

CREATE INDEX logged_models_experiment ON logged_models (workspace, experiment_id, creation_time);

CREATE TABLE logged_model_tags (
	workspace TEXT NOT NULL,
	model_id  TEXT NOT NULL,
	key       TEXT NOT NULL,
	value     TEXT NOT NULL,
	PRIMARY KEY (workspace, model_id, key),
	FOREIGN KEY (workspace, model_id) REFERENCES logged_models (workspace, model_id) ON DELETE CASCADE
) STRICT;

CREATE TABLE logged_model_params (
	workspace TEXT NOT NULL,
	model_id  TEXT NOT NULL,
	key       TEXT NOT NULL,
	value     TEXT NOT NULL,
	PRIMARY KEY (workspace, model_id, key),
	FOREIGN KEY (workspace, model_id) REFERENCES logged_models (workspace, model_id) ON DELETE CASCADE
) STRICT;

-- The artifact tree: path to blob digest. Listing a directory is a range
-- scan of the primary key.
CREATE TABLE artifacts (
	workspace  TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	path       TEXT NOT NULL,
	digest     TEXT NOT NULL,
	size       INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (workspace, path)
) STRICT;
