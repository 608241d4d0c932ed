-- Where an object-storage datastore lives and which kind of credential it
-- has; the credential's values are in the workspace's secret store.
ALTER TABLE datastores ADD COLUMN protocol TEXT NOT NULL DEFAULT '';
ALTER TABLE datastores ADD COLUMN bucket TEXT NOT NULL DEFAULT '';
ALTER TABLE datastores ADD COLUMN region TEXT NOT NULL DEFAULT '';
ALTER TABLE datastores ADD COLUMN path_style BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE datastores ADD COLUMN credentials TEXT NOT NULL DEFAULT 'none';
