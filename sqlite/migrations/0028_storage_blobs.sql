-- What the Blob Storage API keeps beside a datastore file's content: its
-- content type and metadata (x-ms-meta-*), and the blocks of a blob sent
-- in parts until a block list commits them.
CREATE TABLE storage_blob_properties (
	workspace    TEXT NOT NULL,
	datastore    TEXT NOT NULL,
	path         TEXT NOT NULL,
	content_type TEXT NOT NULL,
	metadata     TEXT NOT NULL,
	updated_at   INTEGER NOT NULL,
	PRIMARY KEY (workspace, datastore, path),
	FOREIGN KEY (workspace, datastore, path) REFERENCES datastore_files (workspace, datastore, path) ON DELETE CASCADE
) STRICT;

CREATE TABLE storage_blocks (
	workspace  TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	datastore  TEXT NOT NULL,
	path       TEXT NOT NULL,
	block_id   TEXT NOT NULL,
	digest     TEXT NOT NULL,
	size       INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (workspace, datastore, path, block_id)
) STRICT;
