-- Users: people who sign in with a password. Role assignments name either
-- a service principal (app id) or a user (object id), so their foreign key
-- to service_principals gives way to the store's own checks and deletes.
CREATE TABLE users (
	object_id             TEXT PRIMARY KEY,
	user_principal_name   TEXT NOT NULL UNIQUE,
	display_name          TEXT NOT NULL,
	password_hash         TEXT NOT NULL,
	force_change_password INTEGER NOT NULL,
	password_changed_at   TEXT NOT NULL,
	created_at            TEXT NOT NULL
) STRICT;

-- id_hash is the SHA-256 of the cookie's random id; the id is not stored.
CREATE TABLE user_sessions (
	id_hash      TEXT PRIMARY KEY,
	user_id      TEXT NOT NULL REFERENCES users (object_id) ON DELETE CASCADE,
	created_at   TEXT NOT NULL,
	last_seen_at TEXT NOT NULL
) STRICT;

CREATE INDEX user_sessions_user ON user_sessions (user_id);

CREATE TABLE role_assignments_0019 (
	id             TEXT PRIMARY KEY,
	principal_id   TEXT NOT NULL,
	principal_type TEXT NOT NULL,
	role_name      TEXT NOT NULL,
	scope          TEXT NOT NULL,
	created_at     TEXT NOT NULL,
	UNIQUE (principal_id, role_name, scope)
) STRICT;

INSERT INTO role_assignments_0019 (id, principal_id, principal_type, role_name, scope, created_at)
	SELECT id, principal_id, 'ServicePrincipal', role_name, scope, created_at FROM role_assignments;

DROP TABLE role_assignments;
ALTER TABLE role_assignments_0019 RENAME TO role_assignments;
CREATE INDEX role_assignments_scope ON role_assignments (scope);
