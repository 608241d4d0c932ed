-- Leases: which of several servers sharing this database holds a role
-- (the scheduler). token grows by one each time the lease changes holder;
-- the scheduler's writes check it in their own transaction (fencing), so a
-- server that lost the lease cannot write after the next holder took it.
CREATE TABLE leases (
	name       TEXT COLLATE "C" PRIMARY KEY,
	holder     TEXT COLLATE "C" NOT NULL,
	token      BIGINT NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);
