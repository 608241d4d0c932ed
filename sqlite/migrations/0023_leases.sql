-- Leases: which server holds a role (the scheduler). One server runs on an
-- SQLite database (the data folder is locked), so it always holds them;
-- the table keeps both engines' schemas and fencing the same.
CREATE TABLE leases (
	name       TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	token      INTEGER NOT NULL,
	expires_at TEXT NOT NULL
);
