-- What is stored at each datastore path: uploads and job outputs, named
-- by azureml://datastores/<datastore>/paths/<path> URIs.
CREATE TABLE datastore_files (
	workspace  TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	datastore  TEXT NOT NULL,
	path       TEXT NOT NULL,
	digest     TEXT NOT NULL,
	kind       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (workspace, datastore, path)
);
