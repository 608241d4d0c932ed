-- Which workspaces reference which blobs: a workspace reads a blob through
-- its content routes only with a row here. Rows are added where content
-- enters a workspace (uploads, job outputs and the files of their
-- snapshots, artifacts, assets, datastore paths); what was stored before
-- this table existed is recorded by the server when it starts.
CREATE TABLE blob_refs (
	workspace TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	digest    TEXT NOT NULL,
	PRIMARY KEY (workspace, digest)
);
