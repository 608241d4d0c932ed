-- Initial schema. Timestamps are TEXT in the fixed-width form
-- 2006-01-02T15:04:05.000000Z (UTC, microseconds), which sorts
-- chronologically. Tables are STRICT so a value of the wrong type is an
-- error instead of being stored as whatever it happens to be.

CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;

CREATE TABLE workspaces (
	name                 TEXT PRIMARY KEY,
	display_name         TEXT NOT NULL,
	description          TEXT NOT NULL,
	location             TEXT NOT NULL,
	resource_group       TEXT NOT NULL,
	key_vault            TEXT NOT NULL,
	application_insights TEXT NOT NULL,
	storage_account      TEXT NOT NULL,
	tags                 TEXT NOT NULL,
	created_at           TEXT NOT NULL,
	updated_at           TEXT NOT NULL
) STRICT;

CREATE TABLE datastores (
	workspace      TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	name           TEXT NOT NULL,
	type           TEXT NOT NULL,
	is_default     INTEGER NOT NULL,
	account_name   TEXT NOT NULL,
	container_name TEXT NOT NULL,
	endpoint       TEXT NOT NULL,
	description    TEXT NOT NULL,
	tags           TEXT NOT NULL,
	created_at     TEXT NOT NULL,
	updated_at     TEXT NOT NULL,
	PRIMARY KEY (workspace, name)
) STRICT;

-- At most one default datastore per workspace, whatever the writers do.
CREATE UNIQUE INDEX datastores_one_default ON datastores (workspace) WHERE is_default = 1;

CREATE TABLE computes (
	workspace                   TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
	name                        TEXT NOT NULL,
	type                        TEXT NOT NULL,
	size                        TEXT NOT NULL,
	min_instances               INTEGER NOT NULL,
	max_instances               INTEGER NOT NULL,
	tier                        TEXT NOT NULL,
	idle_time_before_scale_down INTEGER NOT NULL,
	location                    TEXT NOT NULL,
	description                 TEXT NOT NULL,
	tags                        TEXT NOT NULL,
	provisioning_state          TEXT NOT NULL,
	created_at                  TEXT NOT NULL,
	updated_at                  TEXT NOT NULL,
	PRIMARY KEY (workspace, name)
) STRICT;

CREATE TABLE service_principals (
	app_id       TEXT PRIMARY KEY,
	object_id    TEXT NOT NULL UNIQUE,
	display_name TEXT NOT NULL UNIQUE,
	created_at   TEXT NOT NULL
) STRICT;

CREATE TABLE password_credentials (
	key_id       TEXT PRIMARY KEY,
	principal_id TEXT NOT NULL REFERENCES service_principals (app_id) ON DELETE CASCADE,
	hint         TEXT NOT NULL,
	secret_hash  TEXT NOT NULL,
	start_date   TEXT NOT NULL,
	end_date     TEXT NOT NULL
) STRICT;

CREATE INDEX password_credentials_principal ON password_credentials (principal_id);

CREATE TABLE role_assignments (
	id           TEXT PRIMARY KEY,
	principal_id TEXT NOT NULL REFERENCES service_principals (app_id) ON DELETE CASCADE,
	role_name    TEXT NOT NULL,
	scope        TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	UNIQUE (principal_id, role_name, scope)
) STRICT;

CREATE INDEX role_assignments_scope ON role_assignments (scope);

-- value holds the sealed bytes; the plaintext is never stored. seq orders
-- versions written within the same microsecond.
CREATE TABLE secrets (
	scope        TEXT NOT NULL,
	name         TEXT NOT NULL,
	version      TEXT NOT NULL,
	seq          INTEGER NOT NULL UNIQUE,
	value        BLOB NOT NULL,
	content_type TEXT NOT NULL,
	enabled      INTEGER NOT NULL,
	created_at   TEXT NOT NULL,
	PRIMARY KEY (scope, name, version)
) STRICT;

CREATE TABLE audit_events (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	time           TEXT NOT NULL,
	principal_id   TEXT NOT NULL,
	principal_name TEXT NOT NULL,
	action         TEXT NOT NULL,
	method         TEXT NOT NULL,
	path           TEXT NOT NULL,
	scope          TEXT NOT NULL,
	status         INTEGER NOT NULL,
	outcome        TEXT NOT NULL,
	request_id     TEXT NOT NULL
) STRICT;

CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_principal_time ON audit_events (principal_id, time);
