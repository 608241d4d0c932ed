-- az ml names a model version by any string ("1.0.0", "v2"), where MLflow
-- numbers versions. A version registered under a string keeps its number
-- for MLflow and the string for az ml (asset_version, '' when the number
-- is its name). content_digest identifies the files a version was
-- registered with ('' when unknown), so registering the same files again
-- can reuse it.
ALTER TABLE model_versions ADD COLUMN asset_version TEXT NOT NULL DEFAULT '';
ALTER TABLE model_versions ADD COLUMN content_digest TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX model_versions_asset_version ON model_versions (workspace, name, asset_version)
	WHERE asset_version <> '';
