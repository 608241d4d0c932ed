-- Federated identity credentials: external OIDC tokens (CI systems) that a
-- service principal trusts in place of a secret.
CREATE TABLE federated_credentials (
	id           TEXT PRIMARY KEY,
	principal_id TEXT NOT NULL REFERENCES service_principals (app_id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	issuer       TEXT NOT NULL,
	subject      TEXT NOT NULL,
	audience     TEXT NOT NULL,
	description  TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	UNIQUE (principal_id, name),
	UNIQUE (principal_id, issuer, subject)
) STRICT;
