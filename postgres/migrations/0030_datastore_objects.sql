-- The versions of objects in azure_blob and s3 datastores' own containers
-- and buckets that Wharf has read or written: the service's ETag and the
-- size say which version, digest what content it holds, so an object read
-- again unchanged is not downloaded again, and a changed one is.
CREATE TABLE datastore_objects (
	workspace  TEXT NOT NULL,
	datastore  TEXT NOT NULL,
	path       TEXT NOT NULL,
	etag       TEXT NOT NULL,
	size       BIGINT NOT NULL,
	digest     TEXT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (workspace, datastore, path),
	FOREIGN KEY (workspace, datastore) REFERENCES datastores (workspace, name) ON DELETE CASCADE
);
