-- Batch endpoints and their deployments, each a JSON document.
CREATE TABLE batch_endpoints (
	workspace TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	name      TEXT NOT NULL,
	doc       TEXT NOT NULL,
	PRIMARY KEY (workspace, name)
) STRICT;

CREATE TABLE batch_deployments (
	workspace TEXT NOT NULL,
	endpoint  TEXT NOT NULL,
	name      TEXT NOT NULL,
	doc       TEXT NOT NULL,
	PRIMARY KEY (workspace, endpoint, name),
	FOREIGN KEY (workspace, endpoint) REFERENCES batch_endpoints (workspace, name) ON DELETE CASCADE
) STRICT;
