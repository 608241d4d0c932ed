-- Users: people who sign in with a password. Role assignments name either
-- a service principal (app id) or a user (object id), so their foreign key
-- to service_principals gives way to the store's own checks and deletes.
CREATE TABLE users (
	object_id             TEXT COLLATE "C" PRIMARY KEY,
	user_principal_name   TEXT COLLATE "C" NOT NULL UNIQUE,
	display_name          TEXT COLLATE "C" NOT NULL,
	password_hash         TEXT COLLATE "C" NOT NULL,
	force_change_password BOOLEAN NOT NULL,
	password_changed_at   TIMESTAMPTZ NOT NULL,
	created_at            TIMESTAMPTZ NOT NULL
);

-- id_hash is the SHA-256 of the cookie's random id; the id is not stored.
CREATE TABLE user_sessions (
	id_hash      TEXT COLLATE "C" PRIMARY KEY,
	user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (object_id) ON DELETE CASCADE,
	created_at   TIMESTAMPTZ NOT NULL,
	last_seen_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX user_sessions_user ON user_sessions (user_id);

ALTER TABLE role_assignments DROP CONSTRAINT role_assignments_principal_id_fkey;
ALTER TABLE role_assignments ADD COLUMN principal_type TEXT COLLATE "C" NOT NULL DEFAULT 'ServicePrincipal';
