-- Federated identity credentials: external OIDC tokens (CI systems) that a
-- service principal trusts in place of a secret.
CREATE TABLE federated_credentials (
	id           TEXT COLLATE "C" PRIMARY KEY,
	principal_id TEXT COLLATE "C" NOT NULL REFERENCES service_principals (app_id) ON DELETE CASCADE,
	name         TEXT COLLATE "C" NOT NULL,
	issuer       TEXT COLLATE "C" NOT NULL,
	subject      TEXT COLLATE "C" NOT NULL,
	audience     TEXT COLLATE "C" NOT NULL,
	description  TEXT NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL,
	UNIQUE (principal_id, name),
	UNIQUE (principal_id, issuer, subject)
);
