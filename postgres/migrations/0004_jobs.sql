-- Versioned assets that jobs consume, and jobs. Times are Unix
-- milliseconds. An asset's or a job's definition is a JSON document: its
-- shape follows the az ml CLI v2 schemas, which evolve faster than a table
-- should; the columns are the ones queries filter, order or join on.

CREATE TABLE assets (
	workspace   TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	kind        TEXT NOT NULL,
	name        TEXT NOT NULL,
	version     TEXT NOT NULL,
	-- seq orders versions by creation, which is what @latest means.
	seq         BIGINT NOT NULL,
	spec        TEXT NOT NULL,
	digest      TEXT NOT NULL,
	description TEXT NOT NULL,
	tags        TEXT NOT NULL,
	created_by  TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	PRIMARY KEY (workspace, kind, name, version)
);
CREATE INDEX assets_latest ON assets (workspace, kind, name, seq);

-- Asset versions given without a version number count up per name.
CREATE TABLE asset_counters (
	workspace TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	kind      TEXT NOT NULL,
	name      TEXT NOT NULL,
	last      BIGINT NOT NULL,
	PRIMARY KEY (workspace, kind, name)
);

CREATE TABLE jobs (
	workspace  TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	-- parent is the pipeline job of a step, '' for a top-level job.
	parent     TEXT NOT NULL,
	seq        BIGINT NOT NULL,
	status     TEXT NOT NULL,
	-- reuse_key is the hash of everything a step's result depends on; set
	-- once its inputs are known.
	reuse_key  TEXT NOT NULL,
	doc        TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (workspace, name)
);
CREATE INDEX jobs_parent ON jobs (workspace, parent, seq);
CREATE INDEX jobs_status ON jobs (status);
CREATE INDEX jobs_reuse ON jobs (workspace, reuse_key, status);
